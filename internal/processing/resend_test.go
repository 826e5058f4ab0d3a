package processing_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/jobs/jobstest"
)

// failingSignals refuses the demand of one job.
type failingSignals struct {
	jobstest.Signals
	refuse int64
}

func (f *failingSignals) Demand(ctx context.Context, d jobs.Demand) error {
	if d.JobID == f.refuse {
		return errors.New("queue unavailable")
	}
	return f.Signals.Demand(ctx, d)
}

// HandleLambda takes the ProcessorFunction's two kinds of event: SQS batches, and the
// scheduled task that sends the demands of jobs still waiting again.
func TestHandleLambda(t *testing.T) {
	s := embeddedStores(t)
	p, _ := newProcessor(t, s)
	sig := &failingSignals{refuse: 3}
	p.Signals = sig
	now := time.Now().UTC()
	p.Now = func() time.Time { return now }
	ctx := context.Background()
	for id, age := range map[int64]time.Duration{1: time.Hour, 2: time.Minute, 3: time.Hour} {
		at := now.Add(-age)
		err := s.Jobs.Commit(ctx, &jobs.Change{Jobs: []*jobs.Job{{ID: id, Repository: "octo/repo", Labels: []string{"linux", "x64"},
			Status: jobs.StatusQueued, Pool: "linux", Allocation: jobs.AllocationPending, QueuedAt: at,
			QueueKey: jobs.RankKey(jobs.Rank(at, 0, time.Minute), id)}}})
		if err != nil {
			t.Fatal(err)
		}
	}

	cases := []struct {
		name, event string
		want        string // the JSON answer, or
		wantErr     string // a part of the error
		wantSent    []int64
	}{
		{name: "SQS batch", event: `{"Records":[{"messageId":"m1","body":"not a delivery"}]}`,
			want: `{"batchItemFailures":[{"itemIdentifier":"m1"}]}`},
		{name: "resend, default age", event: `{"task":"resend-demands"}`,
			want: `{"task":"resend-demands","sent":1}`, wantSent: []int64{1}},
		{name: "resend, every waiting job", event: `{"task":"resend-demands","olderThan":"0s"}`,
			want: `{"task":"resend-demands","sent":2}`, wantSent: []int64{1, 2}},
		{name: "bad age", event: `{"task":"resend-demands","olderThan":"ten minutes"}`, wantErr: "olderThan"},
		{name: "negative age", event: `{"task":"resend-demands","olderThan":"-1m"}`, wantErr: "olderThan"},
		{name: "unknown task", event: `{"task":"vacuum"}`, wantErr: `unknown task "vacuum"`},
		{name: "neither", event: `{"detail-type":"Scheduled Event"}`, wantErr: "neither an SQS batch nor a task"},
		{name: "not an object", event: `[1]`, wantErr: "not a JSON object"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sig.Forget()
			got, err := p.HandleLambda(ctx, json.RawMessage(c.event))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if answer, _ := json.Marshal(got); string(answer) != c.want {
				t.Errorf("answer %s, want %s", answer, c.want)
			}
			var sent []int64
			for _, d := range sig.Demands() {
				sent = append(sent, d.JobID)
				if !d.Resent || !d.At.Equal(now) {
					t.Errorf("demand %+v: want resent at %v", d, now)
				}
			}
			if !slices.Equal(sent, c.wantSent) {
				t.Errorf("demands sent for %v, want %v (job 3's is refused)", sent, c.wantSent)
			}
		})
	}
}
