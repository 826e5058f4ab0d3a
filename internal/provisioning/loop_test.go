package provisioning_test

import (
	"context"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/provisioning"
)

func TestLoopRetriesFailedDemandsAndRetires(t *testing.T) {
	f := newFixture(t, linuxPool())
	f.p.Now = time.Now // the loop's passes and retries run on real time
	loop := &provisioning.Loop{Provisioner: f.p, Interval: time.Hour, Workers: 2, RetryBase: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond}
	// The loop is the engine's signals: a failed create's removal sends its Retire to it.
	f.engine.Subscribers = nil
	f.engine.Subscribe(&jobs.SignalSender{Signals: loop, Log: f.p.Log})
	f.machines.failCreate = 2
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { loop.Run(ctx); close(done) }()
	t.Cleanup(func() { stop(); <-done })

	// After the loop's first pass, which would otherwise race the demand for the job.
	waitFor(t, "the first pass", func() (int, bool) { n := f.logged("provisioning pass"); return n, n > 0 })
	d := f.pending(t, 1, "linux", time.Now())
	if err := loop.Demand(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	r := waitFor(t, "a runner created after two failed creates", func() (*jobs.Runner, bool) {
		rs := f.runners(t, "linux")
		return first(rs), len(rs) == 1 && rs[0].ProviderID != ""
	})
	if n := f.machines.created(); n != 3 {
		t.Fatalf("%d creates, want 3 (two failed)", n)
	}
	waitFor(t, "the failed creates' GitHub runners removed", func() ([]string, bool) {
		reg := f.registered()
		return reg, len(reg) == 1 && reg[0] == r.Name
	})
	if _, _, err := f.engine.RemoveRunner(t.Context(), r.Name, time.Now()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the removed runner's machine deleted", func() ([]string, bool) {
		m := f.machines.names()
		return m, len(m) == 0
	})
}

func first(rs []*jobs.Runner) *jobs.Runner {
	if len(rs) == 0 {
		return nil
	}
	return rs[0]
}

// waitFor polls until check holds, for at most 10 seconds.
func waitFor[T any](t *testing.T, what string, check func() (T, bool)) T {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, ok := check()
		if ok {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (last: %+v)", what, v)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
