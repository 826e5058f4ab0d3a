package suite_test

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/testenv/suite"
)

// harness records which subtest made it and whether that subtest's cleanups ran.
type harness struct {
	madeIn  string
	cleaned *bool
}

// Every case runs, in order, as a subtest named after it, on a harness of its own made
// inside that subtest: its cleanups run when that subtest ends, before the next case.
func TestRunGivesEachCaseItsOwnHarness(t *testing.T) {
	var ran, made []string
	var previous *bool
	newHarness := func(t *testing.T) harness {
		cleaned := new(bool)
		t.Cleanup(func() { *cleaned = true })
		made = append(made, t.Name())
		return harness{madeIn: t.Name(), cleaned: cleaned}
	}
	check := func(t *testing.T, h harness) {
		ran = append(ran, t.Name())
		if h.madeIn != t.Name() {
			t.Errorf("harness made in %q, used in %q", h.madeIn, t.Name())
		}
		if previous != nil && !*previous {
			t.Error("the previous case's harness was not cleaned up before this case")
		}
		previous = h.cleaned
	}

	suite.Run(t, newHarness, suite.Cases[harness]{
		{"First", check},
		{"Second", check},
		{"Third", check},
	})

	want := []string{t.Name() + "/First", t.Name() + "/Second", t.Name() + "/Third"}
	if !slices.Equal(ran, want) {
		t.Errorf("cases ran as %q, want %q", ran, want)
	}
	if !slices.Equal(made, want) {
		t.Errorf("harnesses made in %q, want one in each of %q", made, want)
	}
}

// RunParallel runs every case as a parallel subtest named after it, on a harness made
// inside that subtest: none has run when RunParallel returns (parallel subtests wait for
// their parent's function to end, which cases run in order never do), and all have run
// once the parent's subtests are done.
func TestRunParallelMakesEveryCaseParallel(t *testing.T) {
	var mu sync.Mutex
	var ran []string
	check := func(t *testing.T, h harness) {
		if h.madeIn != t.Name() {
			t.Errorf("harness made in %q, used in %q", h.madeIn, t.Name())
		}
		mu.Lock()
		defer mu.Unlock()
		ran = append(ran, t.Name())
	}

	t.Run("suite", func(t *testing.T) {
		suite.RunParallel(t, func(t *testing.T) harness { return harness{madeIn: t.Name()} }, suite.Cases[harness]{
			{"First", check},
			{"Second", check},
			{"Third", check},
		})
		mu.Lock()
		defer mu.Unlock()
		if len(ran) != 0 {
			t.Errorf("cases %q ran before RunParallel's caller returned: they are not parallel", ran)
		}
	})

	slices.Sort(ran)
	want := []string{t.Name() + "/suite/First", t.Name() + "/suite/Second", t.Name() + "/suite/Third"}
	if !slices.Equal(ran, want) {
		t.Errorf("cases ran as %q, want %q", ran, want)
	}
}

// Every racer runs once, all at the same time (each waits until all n are running, which
// racers called one after another would never see), and Race returns after the last.
func TestRaceRunsEveryRacerConcurrently(t *testing.T) {
	const n = 8
	var running sync.WaitGroup
	running.Add(n)
	all := make(chan struct{})
	go func() { running.Wait(); close(all) }()
	var calls [n]atomic.Int32
	var returned atomic.Int32
	suite.Race(n, func(i int) {
		calls[i].Add(1)
		running.Done()
		select {
		case <-all:
		case <-time.After(5 * time.Second):
			t.Errorf("racer %d: the other racers did not run alongside it", i)
		}
		returned.Add(1)
	})
	if got := returned.Load(); got != n {
		t.Errorf("Race returned after %d of %d racers", got, n)
	}
	for i := range calls {
		if got := calls[i].Load(); got != 1 {
			t.Errorf("racer %d ran %d times, want once", i, got)
		}
	}
}
