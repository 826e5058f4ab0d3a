package jobs

import (
	"fmt"
	"strings"
	"testing"
)

// countChange makes each pool's delta from what every written or deleted entity counted
// as read and counts now, and refuses an entity written at a stored version that the plan
// never read (its counts before would be a guess).
func TestCountChange(t *testing.T) {
	read := func(p *planner, v any) {
		switch v := v.(type) {
		case *Job:
			keep(p, p.jobs, v.ID, v)
		case *Runner:
			keep(p, p.runners, v.Name, v)
		}
	}
	cases := []struct {
		name string
		// plan reads entities (read), changes them and puts them in the Change.
		plan    func(p *planner, c *Change)
		want    string
		wantErr string
	}{
		{"a reservation", func(p *planner, c *Change) {
			r := &Runner{Name: "r", Pool: "a", State: RunnerIdle, Version: 2}
			j := &Job{ID: 1, Pool: "a", Allocation: AllocationPending, QueueKey: "k", Version: 1}
			read(p, r)
			read(p, j)
			r.State, j.Allocation = RunnerReserved, AllocationReserved
			c.Runners, c.Jobs = []*Runner{r}, []*Job{j}
		}, "[{a -1 1 0 0 -1}]", ""},
		{"a new runner, a deleted one, a job moved to another pool", func(p *planner, c *Change) {
			gone := &Runner{Name: "g", Pool: "b", State: RunnerBusy, Version: 4}
			j := &Job{ID: 2, Pool: "a", Allocation: AllocationPending, QueueKey: "k", Version: 1}
			read(p, gone)
			read(p, j)
			j.Pool = "b"
			c.Runners = []*Runner{{Name: "n", Pool: "a", State: RunnerStarting}}
			c.DeleteRunners, c.Jobs = []*Runner{gone}, []*Job{j}
		}, "[{a 0 0 0 1 -1} {b 0 0 -1 0 1}]", ""},
		{"a heartbeat changes no count", func(p *planner, c *Change) {
			r := &Runner{Name: "r", Pool: "a", State: RunnerIdle, Version: 2}
			read(p, r)
			c.Runners = []*Runner{r}
		}, "[]", ""},
		{"a stored runner never read", func(p *planner, c *Change) {
			c.Runners = []*Runner{{Name: "r", Pool: "a", State: RunnerBusy, Version: 3}}
		}, "", "runner r at version 3 without having read it"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &planner{jobs: map[int64]*Job{}, runners: map[string]*Runner{}, stored: stored{}, plan: &Plan{}}
			tc.plan(p, &p.plan.Change)
			err := p.countChange()
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			case fmt.Sprint(p.plan.Change.Counts) != tc.want:
				t.Errorf("counts %v, want %s", p.plan.Change.Counts, tc.want)
			}
		})
	}
}
