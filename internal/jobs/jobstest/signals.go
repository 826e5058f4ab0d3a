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
}

// Demand records d.
func (s *Signals) Demand(_ context.Context, d jobs.Demand) error {
	s.demands.Add(d)
	return nil
}

// Prewarm and Retire accept their signal and keep nothing: no test reads them back.
func (s *Signals) Prewarm(context.Context, jobs.Prewarm) error { return nil }

func (s *Signals) Retire(context.Context, jobs.Retire) error { return nil }

// Demands returns a copy of the demands recorded so far, in the order sent.
func (s *Signals) Demands() []jobs.Demand { return s.demands.All() }

// Forget drops what was recorded, for a test that sends again.
func (s *Signals) Forget() { s.demands.Take() }
