package awsstore

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/runnerhub/webhooks/internal/jobs"
)

// Signal message types: the "type" field of a message body, repeated in its
// TypeAttribute.
const (
	SignalDemand  = "demand"
	SignalPrewarm = "prewarm"
	SignalRetire  = "retire"
)

// TypeAttribute is the SQS message attribute that repeats a signal's type, so that a
// consumer (or an SNS/EventBridge Pipes filter) can route signals without decoding them.
const TypeAttribute = "type"

var _ jobs.Signals = (*Signals)(nil)

// Signals implements jobs.Signals on an SQS standard queue, the demand queue: whatever
// starts runners consumes it. A body is the JSON of the signal with its type added:
//
//	{"type":"demand","pool":"linux","jobId":42,"repository":"o/r","labels":["linux"],"priority":10,"at":"…"}
//	{"type":"prewarm","repository":"o/r","pools":["linux"],"reason":"push","at":"…"}
//	{"type":"retire","pool":"linux","runner":"rh-linux-1a2b3c4d","providerId":"i-0abc","githubId":7,"jobId":42,"reason":"completed","at":"…"}
//
// Delivery is at least once: consumers treat a repeated demand (pool, jobId) as one.
type Signals struct {
	c   *sqs.Client
	url string
}

// NewSignals returns Signals sending to the queue at url.
func NewSignals(c *sqs.Client, url string) *Signals {
	return &Signals{c: c, url: url}
}

// Demand sends a scale-up demand: pool needs a runner for a job.
func (s *Signals) Demand(ctx context.Context, d jobs.Demand) error {
	return s.send(ctx, Signal{Demand: &d}, fmt.Sprintf("for job %d in pool %s", d.JobID, d.Pool))
}

// Prewarm sends a pre-warm signal: a repository's usual pools will probably be wanted soon.
func (s *Signals) Prewarm(ctx context.Context, p jobs.Prewarm) error {
	return s.send(ctx, Signal{Prewarm: &p}, "for "+p.Repository)
}

// Retire sends a retire signal: a provisioned runner was deleted, so its machine and
// its GitHub registration go too.
func (s *Signals) Retire(ctx context.Context, r jobs.Retire) error {
	return s.send(ctx, Signal{Retire: &r}, fmt.Sprintf("for runner %s in pool %s", r.Runner, r.Pool))
}

// send puts one signal on the queue; about says what it was for in errors.
func (s *Signals) send(ctx context.Context, sig Signal, about string) error {
	if err := sendJSON(ctx, s.c, s.url, sig, TypeAttribute, sig.Kind()); err != nil {
		return fmt.Errorf("send %s signal %s: %w", sig.Kind(), about, err)
	}
	return nil
}
