package suite_test

import (
	"slices"
	"testing"

	"github.com/runnerhub/webhooks/internal/testenv/suite"
)

// All reads what was added, in order, without forgetting it or sharing it; Take reads
// it once and forgets it.
func TestRecordedAllAndTake(t *testing.T) {
	var r suite.Recorded[int]
	if got := r.All(); len(got) != 0 {
		t.Fatalf("zero value holds %v", got)
	}
	r.Add(1)
	r.Add(2)
	all := r.All()
	all[0] = 99 // a caller's change must not reach the record
	if got := r.All(); !slices.Equal(got, []int{1, 2}) {
		t.Errorf("All after a caller changed its copy = %v, want [1 2]", got)
	}
	if got := r.Take(); !slices.Equal(got, []int{1, 2}) {
		t.Errorf("Take = %v, want [1 2]", got)
	}
	if got := r.Take(); len(got) != 0 {
		t.Errorf("Take after Take = %v, want nothing", got)
	}
	r.Add(3)
	if got := r.All(); !slices.Equal(got, []int{3}) {
		t.Errorf("All after Take and Add = %v, want [3]", got)
	}
}

// Concurrent adders lose nothing (and, under -race, do not race).
func TestRecordedConcurrentAdds(t *testing.T) {
	const n = 64
	var r suite.Recorded[int]
	suite.Race(n, func(i int) { r.Add(i) })
	got := r.All()
	slices.Sort(got)
	want := make([]int, n)
	for i := range want {
		want[i] = i
	}
	if !slices.Equal(got, want) {
		t.Errorf("recorded %d of %d adds: %v", len(got), n, got)
	}
}
