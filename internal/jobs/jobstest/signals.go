package jobstest

import (
	"context"

	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/testenv/suite"
)

var _ jobs.Signals = (*Signals)(nil)

// Signals records the signals sent to it, for tests that check what the engine or an
// API asked for. It is safe for concurrent senders.
type Signals struct {
	demands suite.Recorded[jobs.Demand]
	retires suite.Recorded[jobs.Retire]
}

// Demand records d.
func (s *Signals) Demand(_ context.Context, d jobs.Demand) error {
	s.demands.Add(d)
	return nil
}

// Prewarm accepts its signal and keeps nothing: no test reads them back.
func (s *Signals) Prewarm(context.Context, jobs.Prewarm) error { return nil }

// Retire records r.
func (s *Signals) Retire(_ context.Context, r jobs.Retire) error {
	s.retires.Add(r)
	return nil
}

// TakeRetires returns the retires recorded since the last call, in the order sent.
func (s *Signals) TakeRetires() []jobs.Retire { return s.retires.Take() }

// Demands returns a copy of the demands recorded so far, in the order sent.
func (s *Signals) Demands() []jobs.Demand { return s.demands.All() }

// Forget drops what was recorded, for a test that sends again.
func (s *Signals) Forget() { s.demands.Take() }
