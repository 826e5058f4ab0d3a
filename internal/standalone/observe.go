package standalone

import (
	"context"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
)

// OnProcessed makes the stack call f with every delivery whose processing has committed,
// right after the commit, as one more of the engine's subscribers. Call it before Serve.
// The load command times a delivery's receipt to its committed processing with it.
func (s *Stack) OnProcessed(f func(rec *delivery.Record)) {
	s.processor.Engine.Subscribe(jobs.SubscriberFunc(func(_ context.Context, c *jobs.Commit) {
		if c.Delivery != nil {
			f(c.Delivery)
		}
	}))
}
