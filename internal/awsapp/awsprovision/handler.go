// Package awsprovision is the ProvisionerFunction's handler: the demand queue's signals
// (SQS batches with ReportBatchItemFailures) and the schedule's warm-pool and reaping
// pass, handed to the provisioner.
package awsprovision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/runnerhub/webhooks/internal/checkpoint"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/provisioning"
	"github.com/runnerhub/webhooks/internal/storage/awsstore"
)

// Provisioner is what the handler drives: the provisioning package's, on AWS.
type Provisioner interface {
	Demand(ctx context.Context, d jobs.Demand) error
	Prewarm(ctx context.Context, p jobs.Prewarm) error
	Retire(ctx context.Context, r jobs.Retire) error
	Pass(ctx context.Context, now time.Time) provisioning.Report
	SaveJITErrors(ctx context.Context, store checkpoint.Store) error
}

var _ Provisioner = (*provisioning.Provisioner)(nil)

// Visibility hides a received message for a while: how a failed record waits for its
// retry.
type Visibility interface {
	Hide(ctx context.Context, receiptHandle string, d time.Duration) error
}

// Retries of a failed record: hidden for FirstBackoff, doubling up to MaxBackoff, and
// dropped (logged) after MaxAttempts receives. Dropping loses nothing for good: a job
// still waiting has its demand sent again (the processor's ResendDemands), and a machine
// whose retire signal was dropped is reaped as an orphan by the pass.
const (
	FirstBackoff = 10 * time.Second
	MaxBackoff   = 5 * time.Minute
	MaxAttempts  = 10
)

// Handler is the ProvisionerFunction's handler.
type Handler struct {
	// Provisioner is nil without GitHub credentials: nothing can be started, signals are
	// dropped (logged) and the pass answers {"disabled": true}.
	Provisioner Provisioner
	// Visibility sets a failed record's backoff; nil leaves the retry to the queue's
	// visibility timeout.
	Visibility Visibility
	// Checkpoints keep the provisioner's JIT failures after each invocation, for the
	// ApiFunction's health (provisioning.SavedProblems); nil keeps them in memory only.
	Checkpoints checkpoint.Store
	Log         *slog.Logger
	Now         func() time.Time
}

// PassResult answers a scheduled invocation: the pass's report, or {"disabled": true}
// without GitHub credentials.
type PassResult struct {
	*provisioning.Report
	Disabled bool `json:"disabled,omitempty"`
}

// Handle takes an SQS batch of the demand queue (HandleSQS) or the schedule's
// EventBridge event (the pass). Anything else is an error, so that a misrouted event
// shows as a failed invocation rather than vanishing.
func (h *Handler) Handle(ctx context.Context, event json.RawMessage) (any, error) {
	var probe struct {
		events.SQSEvent
		DetailType string `json:"detail-type"`
		Source     string `json:"source"`
	}
	if err := json.Unmarshal(event, &probe); err != nil {
		return nil, fmt.Errorf("the event is not a JSON object: %w", err)
	}
	switch {
	case probe.Records != nil:
		defer h.saveJITErrors(ctx)
		return h.HandleSQS(ctx, probe.SQSEvent)
	case probe.Source == "aws.events" && probe.DetailType == "Scheduled Event":
		if h.Provisioner == nil {
			return PassResult{Disabled: true}, nil
		}
		defer h.saveJITErrors(ctx)
		// A pass that failed in part reports it (and logs it) and still answers: the next
		// one tries again, as a failed invocation's retry would, without doubling up.
		rep := h.Provisioner.Pass(ctx, h.Now())
		return PassResult{Report: &rep}, nil
	}
	return nil, errors.New("the event is neither an SQS batch nor a scheduled event")
}

// saveJITErrors keeps the provisioner's JIT failures for health; a failure to is logged,
// and the next invocation saves them again.
func (h *Handler) saveJITErrors(ctx context.Context) {
	if h.Provisioner == nil || h.Checkpoints == nil {
		return
	}
	if err := h.Provisioner.SaveJITErrors(ctx, h.Checkpoints); err != nil {
		h.Log.LogAttrs(ctx, slog.LevelWarn, "provisioner: the JIT failures health shows could not be saved", slog.String("error", err.Error()))
	}
}

// HandleSQS applies the signals of the batch, all at once, and reports the records that
// failed and may succeed later, each hidden for its backoff. At once, so that a batch's
// demands wait for GitHub and the provider side by side rather than in turn, and those
// of one pool are recorded in one commit (the provisioner's start line). A record that
// is no signal is dropped with an error logged: no retry would mend it.
func (h *Handler) HandleSQS(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	sigs := make([]*awsstore.Signal, len(ev.Records))
	for i, r := range ev.Records {
		sig, err := awsstore.ReadSignal([]byte(r.Body))
		if err != nil {
			h.Log.LogAttrs(ctx, slog.LevelError, "provisioner: dropping a message that is not a signal",
				slog.String("message_id", r.MessageId), slog.String("error", err.Error()))
			continue
		}
		if h.Provisioner == nil {
			h.Log.LogAttrs(ctx, slog.LevelInfo, "provisioner: no GitHub credentials, signal dropped",
				slog.String("message_id", r.MessageId), slog.String("signal", sig.Kind()))
			continue
		}
		sigs[i] = &sig
	}
	errs := make([]error, len(ev.Records))
	var wg sync.WaitGroup
	for i, sig := range sigs {
		if sig != nil {
			wg.Go(func() { errs[i] = h.apply(ctx, *sig) })
		}
	}
	wg.Wait()
	// Retries are set one after the other: the log and the queue hear of them in order.
	var resp events.SQSEventResponse
	for i, err := range errs {
		if err != nil && h.retry(ctx, ev.Records[i], *sigs[i], err) {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: ev.Records[i].MessageId})
		}
	}
	return resp, nil
}

func (h *Handler) apply(ctx context.Context, sig awsstore.Signal) error {
	switch {
	case sig.Demand != nil:
		return h.Provisioner.Demand(ctx, *sig.Demand)
	case sig.Prewarm != nil:
		return h.Provisioner.Prewarm(ctx, *sig.Prewarm)
	case sig.Retire != nil:
		return h.Provisioner.Retire(ctx, *sig.Retire)
	}
	return fmt.Errorf("no handler for %q signals", sig.Kind())
}

// retry logs the failure of record r and says whether to report it for another try,
// setting its backoff when it is.
func (h *Handler) retry(ctx context.Context, r events.SQSMessage, sig awsstore.Signal, err error) bool {
	attempt, _ := strconv.Atoi(r.Attributes["ApproximateReceiveCount"])
	attempt = max(attempt, 1)
	attrs := []slog.Attr{slog.String("message_id", r.MessageId), slog.String("signal", sig.Kind()),
		slog.Int("attempt", attempt), slog.String("error", err.Error())}
	if attempt >= MaxAttempts {
		h.Log.LogAttrs(ctx, slog.LevelError, "provisioner: signal failed too often, dropped", attrs...)
		return false
	}
	wait := Backoff(attempt)
	h.Log.LogAttrs(ctx, slog.LevelError, "provisioner: signal failed, retried later",
		append(attrs, slog.Duration("retry_in", wait))...)
	if h.Visibility != nil {
		if err := h.Visibility.Hide(ctx, r.ReceiptHandle, wait); err != nil {
			h.Log.LogAttrs(ctx, slog.LevelWarn, "provisioner: could not set the retry's backoff; the queue's visibility timeout applies",
				slog.String("message_id", r.MessageId), slog.String("error", err.Error()))
		}
	}
	return true
}

// Backoff is how long a record that failed on its attempt-th receive waits for the next.
func Backoff(attempt int) time.Duration {
	d := FirstBackoff
	for i := 1; i < attempt && d < MaxBackoff; i++ {
		d *= 2
	}
	return min(d, MaxBackoff)
}
