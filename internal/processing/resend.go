package processing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/runnerhub/webhooks/internal/jobs"
)

// ResendDemands sends again the demands of the jobs pending for longer than after (see
// jobs.StaleDemands) and returns how many went out. A failed send is logged and the
// others still go: the next resend tries it again.
func (p *Processor) ResendDemands(ctx context.Context, after time.Duration) (int, error) {
	demands, err := p.Engine.StaleDemands(ctx, p.Now().UTC(), after)
	if err != nil {
		return 0, fmt.Errorf("reading waiting jobs: %w", err)
	}
	sent, sender := 0, jobs.SignalSender{Signals: p.Signals, Log: p.Log}
	for _, d := range demands {
		if sender.Demand(ctx, d) {
			sent++
		}
	}
	level := slog.LevelInfo
	if len(demands) == 0 {
		level = slog.LevelDebug // the usual case, every few minutes
	}
	p.Log.Log(ctx, level, "demands resent", "waiting_longer_than", after.String(), "jobs", len(demands), "sent", sent)
	return sent, nil
}

// Task is the other event the ProcessorFunction takes besides SQS batches: template.yaml's
// ResendDemands schedule sends {"task": "resend-demands", "olderThan": "10m"}.
type Task struct {
	Task string `json:"task"`
	// OlderThan is a Go duration, jobs.DefaultResendAfter when empty.
	OlderThan string `json:"olderThan,omitempty"`
}

// TaskResult answers a Task.
type TaskResult struct {
	Task string `json:"task"`
	Sent int    `json:"sent"`
}

// TaskResendDemands is the Task that calls ResendDemands.
const TaskResendDemands = "resend-demands"

// maxResendAfter bounds Task.OlderThan.
const maxResendAfter = 24 * time.Hour

// HandleLambda is the ProcessorFunction's handler: an SQS batch of deliveries (HandleSQS)
// or a scheduled Task. Anything else is an error, so a misrouted event shows up as a
// failed invocation rather than vanishing.
func (p *Processor) HandleLambda(ctx context.Context, event json.RawMessage) (any, error) {
	var probe struct {
		events.SQSEvent
		Task
	}
	if err := json.Unmarshal(event, &probe); err != nil {
		return nil, fmt.Errorf("the event is not a JSON object of either kind: %w", err)
	}
	switch {
	case probe.Records != nil:
		return p.HandleSQS(ctx, probe.SQSEvent)
	case probe.Task.Task == TaskResendDemands:
		after, err := parseResendAfter(probe.OlderThan)
		if err != nil {
			return nil, err
		}
		sent, err := p.ResendDemands(ctx, after)
		return TaskResult{Task: probe.Task.Task, Sent: sent}, err
	case probe.Task.Task != "":
		return nil, fmt.Errorf("unknown task %q (known: %s)", probe.Task.Task, TaskResendDemands)
	}
	return nil, errors.New("the event is neither an SQS batch nor a task")
}

func parseResendAfter(v string) (time.Duration, error) {
	if v == "" {
		return jobs.DefaultResendAfter, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > maxResendAfter {
		return 0, fmt.Errorf("olderThan %q: want a duration from 0s to 24h, such as 10m", v)
	}
	return d, nil
}
