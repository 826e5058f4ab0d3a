// Package suite holds what the conformance suites and their fakes share: the runner of a
// suite's table, in order or in parallel, where every case is a subtest of its own on a
// harness made for it alone (so that one adapter's failure names the case), the start of a
// race between concurrent callers, and a record of what concurrent callers handed a fake.
package suite

import (
	"sync"
	"testing"
)

// Cases are the named behaviours of a suite, each checked against a harness h. The
// element type is left unnamed so that a suite lists its cases as {name, test} pairs.
type Cases[H any] = []struct {
	Name string
	Run  func(t *testing.T, h H)
}

// Run runs each case, in order, as a subtest of t, calling newHarness once per subtest
// (inside it, so that the harness's cleanups belong to that subtest).
func Run[H any](t *testing.T, newHarness func(t *testing.T) H, cases Cases[H]) {
	t.Helper()
	run(t, newHarness, cases, false)
}

// RunParallel is Run with every case a parallel subtest: the cases run alongside each
// other, and each makes its harness once released, so that harnesses slow to make (tables
// on moto) are made alongside each other too.
func RunParallel[H any](t *testing.T, newHarness func(t *testing.T) H, cases Cases[H]) {
	t.Helper()
	run(t, newHarness, cases, true)
}

func run[H any](t *testing.T, newHarness func(t *testing.T) H, cases Cases[H], parallel bool) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			if parallel {
				t.Parallel()
			}
			c.Run(t, newHarness(t))
		})
	}
}

// Race calls racer(0) to racer(n-1), each in a goroutine of its own, released together
// once all are launched so that they contend, and returns when every one has returned.
func Race(n int, racer func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			racer(i)
		})
	}
	close(start)
	wg.Wait()
}
