package jobs

import (
	"sort"
	"testing"
	"time"
)

// The description's priority table, row by row, and the rules behind it.
func TestPriorityTable(t *testing.T) {
	cases := []struct {
		labels []string
		want   int
	}{
		{[]string{"production", "deploy"}, 100},
		{[]string{"critical", "ubuntu-latest"}, 60},
		{[]string{"ubuntu-latest"}, 10},
		{[]string{"large"}, -10},
		{[]string{"test", "small"}, 10},
		{[]string{"deploy", "urgent", "small", "xl"}, 150},
		{[]string{"self-hosted", "linux"}, 0},
		{nil, 0},
		{[]string{"Production"}, 0}, // exact match, as labels.includes in the description
	}
	for _, c := range cases {
		if got := Priority(c.labels); got != c.want {
			t.Errorf("Priority(%v) = %d, want %d", c.labels, got, c.want)
		}
	}
}

func TestFits(t *testing.T) {
	pool := []string{"linux", "X64", "gpu"}
	cases := []struct {
		job  []string
		want bool
	}{
		{[]string{"self-hosted", "linux"}, true},
		{[]string{"Self-Hosted", "LINUX", "x64"}, true},
		{[]string{"linux", "arm64"}, false},
		{nil, true},
		{[]string{"ubuntu-latest"}, false},
	}
	for _, c := range cases {
		if got := Fits(c.job, pool); got != c.want {
			t.Errorf("Fits(%v) = %v, want %v", c.job, got, c.want)
		}
	}
}

func TestRankOrder(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	type job struct {
		id       int64
		name     string
		queued   time.Time
		priority int
	}
	jobs := []job{
		{1, "old standard", t0, 10},
		{2, "deploy 30m later", t0.Add(30 * time.Minute), 100},
		{3, "deploy 2h later", t0.Add(2 * time.Hour), 100},
		{4, "large", t0.Add(-5 * time.Minute), -10},
	}
	order := func(step time.Duration) []string {
		js := append([]job(nil), jobs...)
		sort.Slice(js, func(i, j int) bool {
			return RankKey(Rank(js[i].queued, js[i].priority, step), js[i].id) < RankKey(Rank(js[j].queued, js[j].priority, step), js[j].id)
		})
		var names []string
		for _, j := range js {
			names = append(names, j.name)
		}
		return names
	}
	check := func(step time.Duration, want ...string) {
		t.Helper()
		got := order(step)
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("step %v: order %v, want %v", step, got, want)
			}
		}
	}
	// One minute per point: the deploy queued 30 minutes later overtakes (90 points ahead),
	// the one queued two hours later does not.
	check(time.Minute, "deploy 30m later", "old standard", "large", "deploy 2h later")
	// A huge step is the description's strict priority order (ties: first queued first).
	check(1000*time.Hour, "deploy 30m later", "deploy 2h later", "old standard", "large")
	// Zero step is first come, first served.
	check(0, "large", "old standard", "deploy 30m later", "deploy 2h later")
}

func TestRankKeyNegativeTimes(t *testing.T) {
	early := RankKey(time.Unix(-100, 0), 1)
	late := RankKey(time.Unix(100, 0), 1)
	if !(early < late) {
		t.Fatalf("%s !< %s", early, late)
	}
	if RankKey(time.Unix(0, 0), 2) <= RankKey(time.Unix(0, 0), 1) {
		t.Fatal("job id does not break ties")
	}
}
