package awsprovision

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/runnerhub/webhooks/internal/checkpoint"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/provisioning"
	"github.com/runnerhub/webhooks/internal/testenv"
)

// fakeProvisioner records what it is asked and fails the demands of the jobs in fail. When
// together is set, each demand waits (up to a second) until that many are in flight.
type fakeProvisioner struct {
	mu       sync.Mutex
	calls    []string
	passes   []time.Time
	fail     map[int64]bool
	together int
	inFlight sync.WaitGroup
}

func (f *fakeProvisioner) record(call string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
}

func (f *fakeProvisioner) Demand(_ context.Context, d jobs.Demand) error {
	f.record("demand " + d.Pool + " " + strconv.FormatInt(d.JobID, 10))
	if f.together > 0 {
		f.inFlight.Done()
		waited := make(chan struct{})
		go func() { f.inFlight.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-time.After(time.Second):
			return errors.New("the other demands of the batch did not come while this one was in flight")
		}
	}
	if f.fail[d.JobID] {
		return errors.New("provider create failed")
	}
	return nil
}

func (f *fakeProvisioner) Prewarm(_ context.Context, p jobs.Prewarm) error {
	f.record("prewarm " + p.Repository + " " + strings.Join(p.Pools, ","))
	return nil
}

func (f *fakeProvisioner) Retire(_ context.Context, r jobs.Retire) error {
	f.record("retire " + r.Pool + " " + r.Runner + " " + r.ProviderID)
	return nil
}

func (f *fakeProvisioner) SaveJITErrors(context.Context, checkpoint.Store) error { return nil }

func (f *fakeProvisioner) Pass(_ context.Context, now time.Time) provisioning.Report {
	f.passes = append(f.passes, now)
	return provisioning.Report{Started: 2, OrphansReaped: 1}
}

// fakeVisibility records the backoffs set.
type fakeVisibility map[string]time.Duration

func (f fakeVisibility) Hide(_ context.Context, receiptHandle string, d time.Duration) error {
	f[receiptHandle] = d
	return nil
}

func record(id, body string, receives int) events.SQSMessage {
	return events.SQSMessage{MessageId: id, ReceiptHandle: "handle-" + id, Body: body,
		Attributes: map[string]string{"ApproximateReceiveCount": strconv.Itoa(receives)}}
}

const (
	demand42 = `{"type":"demand","pool":"linux","jobId":42,"repository":"o/r","labels":["linux"],"priority":0,"at":"2026-12-01T12:00:00Z"}`
	demand43 = `{"type":"demand","pool":"linux","jobId":43,"repository":"o/r","labels":["linux"],"priority":0,"at":"2026-12-01T12:00:00Z"}`
	prewarm  = `{"type":"prewarm","repository":"o/r","pools":["linux","gpu"],"reason":"push","at":"2026-12-01T12:00:00Z"}`
	retire   = `{"type":"retire","pool":"linux","runner":"rh-linux-1a2b3c4d","providerId":"i-0abc","githubId":7,"jobId":42,"reason":"completed","at":"2026-12-01T12:00:00Z"}`
)

func TestHandleSQS(t *testing.T) {
	for _, tc := range []struct {
		name    string
		records []events.SQSMessage
		fail    []int64
		// calls is what the provisioner must be asked, in any order; failed the records
		// reported for a retry, with the backoff each is hidden for.
		calls  []string
		failed map[string]time.Duration
		logged string // in the log when set
	}{
		{"every signal applied", []events.SQSMessage{record("a", demand42, 1), record("b", prewarm, 1), record("c", retire, 1)}, nil,
			[]string{"demand linux 42", "prewarm o/r linux,gpu", "retire linux rh-linux-1a2b3c4d i-0abc"}, map[string]time.Duration{}, ""},
		{"a failing demand is reported alone, backed off", []events.SQSMessage{record("a", demand42, 1), record("b", demand43, 3)}, []int64{43},
			[]string{"demand linux 42", "demand linux 43"}, map[string]time.Duration{"b": 40 * time.Second}, "provider create failed"},
		{"malformed records dropped, the rest applied", []events.SQSMessage{record("a", `{"type":"demand","pool":`, 1),
			record("b", `{"type":"scale-down"}`, 1), record("c", demand42, 1)}, nil,
			[]string{"demand linux 42"}, map[string]time.Duration{}, `unknown signal type \"scale-down\"`},
		{"a record failing for the last time is dropped", []events.SQSMessage{record("a", demand43, MaxAttempts)}, []int64{43},
			[]string{"demand linux 43"}, map[string]time.Duration{}, "failed too often, dropped"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prov := &fakeProvisioner{fail: map[int64]bool{}}
			for _, id := range tc.fail {
				prov.fail[id] = true
			}
			var logs bytes.Buffer
			vis := fakeVisibility{}
			h := &Handler{Provisioner: prov, Visibility: vis, Log: slog.New(slog.NewJSONHandler(&logs, nil)), Now: time.Now}
			resp, err := h.HandleSQS(t.Context(), events.SQSEvent{Records: tc.records})
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(prov.calls)
			if !slices.Equal(prov.calls, slices.Sorted(slices.Values(tc.calls))) {
				t.Errorf("provisioner asked %q, want %q", prov.calls, tc.calls)
			}
			var failed []string
			for _, f := range resp.BatchItemFailures {
				failed = append(failed, f.ItemIdentifier)
				if got, want := vis["handle-"+f.ItemIdentifier], tc.failed[f.ItemIdentifier]; got != want {
					t.Errorf("record %s hidden for %v, want %v", f.ItemIdentifier, got, want)
				}
			}
			if len(failed) != len(tc.failed) {
				t.Errorf("reported %v, want %v", failed, tc.failed)
			}
			if len(vis) != len(tc.failed) {
				t.Errorf("backoffs set %v, want them for %v only", vis, tc.failed)
			}
			if !strings.Contains(logs.String(), tc.logged) {
				t.Errorf("log lacks %s:\n%s", tc.logged, logs.String())
			}
		})
	}
}

// The records of a batch are applied at once: each demand below is answered only once
// all three are in flight.
func TestHandleSQSAppliesABatchAtOnce(t *testing.T) {
	prov := &fakeProvisioner{fail: map[int64]bool{}, together: 3}
	prov.inFlight.Add(3)
	h := &Handler{Provisioner: prov, Visibility: fakeVisibility{}, Log: slog.New(slog.DiscardHandler), Now: time.Now}
	demand44 := strings.Replace(demand42, `"jobId":42`, `"jobId":44`, 1)
	resp, err := h.HandleSQS(t.Context(), events.SQSEvent{Records: []events.SQSMessage{
		record("a", demand42, 1), record("b", demand43, 1), record("c", demand44, 1)}})
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures %v, %v; want none: the demands were applied one after the other", resp.BatchItemFailures, err)
	}
}

func TestBackoff(t *testing.T) {
	for attempt, want := range map[int]time.Duration{
		1: 10 * time.Second, 2: 20 * time.Second, 3: 40 * time.Second, 5: 160 * time.Second, 6: 5 * time.Minute, 9: 5 * time.Minute,
	} {
		if got := Backoff(attempt); got != want {
			t.Errorf("Backoff(%d) = %v, want %v", attempt, got, want)
		}
	}
}

func TestHandle(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	scheduled := `{"version":"0","id":"53dc4d37","detail-type":"Scheduled Event","source":"aws.events","account":"123456789012",` +
		`"time":"2026-12-01T12:00:00Z","region":"us-east-1","resources":[],"detail":{}}`
	for _, tc := range []struct {
		name, event string
		want        string // the JSON answer, or the error's text
		passes      int
		calls       int
	}{
		{"scheduled event runs the pass", scheduled, `{"started":2,"online":0,"bootTimeouts":0,"idleTimeouts":0,"orphansReaped":1,"providerIdsFilled":0}`, 1, 0},
		{"SQS batch", `{"Records":[{"messageId":"a","body":` + strconv.Quote(demand42) + `}]}`, `{"batchItemFailures":null}`, 0, 1},
		{"another rule's event", `{"detail-type":"EC2 Instance State-change Notification","source":"aws.ec2"}`, "neither an SQS batch nor a scheduled event", 0, 0},
		{"not JSON", `<xml/>`, "not a JSON object", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prov := &fakeProvisioner{}
			h := &Handler{Provisioner: prov, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return now }}
			out, err := h.Handle(t.Context(), json.RawMessage(tc.event))
			got := ""
			if err != nil {
				got = err.Error()
			} else {
				b, _ := json.Marshal(out)
				got = string(b)
			}
			if !strings.Contains(got, tc.want) || len(prov.passes) != tc.passes || len(prov.calls) != tc.calls {
				t.Fatalf("answer %s, %d passes, %d calls; want %s, %d, %d", got, len(prov.passes), len(prov.calls), tc.want, tc.passes, tc.calls)
			}
			if tc.passes == 1 && !prov.passes[0].Equal(now) {
				t.Errorf("pass at %v, want %v", prov.passes[0], now)
			}
		})
	}
}

// A hidden message comes back once its backoff is over, not at the queue's visibility
// timeout.
func TestQueueVisibilityHides(t *testing.T) {
	env := testenv.SharedAWS(t)
	c := sqs.NewFromConfig(env.Config)
	url := env.DemandQueueURL
	if _, err := c.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: &url, MessageBody: aws.String(demand42)}); err != nil {
		t.Fatal(err)
	}
	receive := func() *string {
		out, err := c.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: &url, MaxNumberOfMessages: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return nil
		}
		return out.Messages[0].ReceiptHandle
	}
	handle := receive()
	if handle == nil {
		t.Fatal("the message was not received")
	}
	if err := (QueueVisibility{SQS: c, QueueURL: url}).Hide(t.Context(), *handle, time.Second); err != nil {
		t.Fatal(err)
	}
	if receive() != nil {
		t.Fatal("received again at once")
	}
	time.Sleep(1500 * time.Millisecond) // the queue's own visibility timeout is 360 s
	if receive() == nil {
		t.Fatal("not received again after its 1 s backoff")
	}
}

// Without GitHub credentials nothing can start: signals are dropped rather than retried
// for days, and the pass says it is off.
func TestHandleWithoutProvisioner(t *testing.T) {
	var logs bytes.Buffer
	h := &Handler{Log: slog.New(slog.NewJSONHandler(&logs, nil)), Now: time.Now}
	resp, err := h.HandleSQS(t.Context(), events.SQSEvent{Records: []events.SQSMessage{record("a", demand42, 1), record("b", retire, 1)}})
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("batch answered %+v, %v; want every record done", resp, err)
	}
	if strings.Count(logs.String(), "no GitHub credentials, signal dropped") != 2 {
		t.Errorf("log:\n%s", logs.String())
	}
	out, err := h.Handle(t.Context(), json.RawMessage(`{"detail-type":"Scheduled Event","source":"aws.events"}`))
	if b, _ := json.Marshal(out); err != nil || string(b) != `{"disabled":true}` {
		t.Fatalf("pass answered %s, %v; want disabled", b, err)
	}
}
