package awsstore

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/runnerhub/webhooks/internal/jobs"
)

// Signals land on the template's demand queue as documented: a JSON object with a type
// and the signal's fields, and the type repeated as a message attribute.
func TestSignals(t *testing.T) {
	t.Parallel()
	env, c := sharedSQS(t)
	sent := sampleSignals()
	sendSignals(t, NewSignals(c, env.DemandQueueURL), sent)

	want := map[string]string{
		SignalDemand: `{"type":"demand","pool":"linux-x64","jobId":123456789,"repository":"octo-org/octo-repo",` +
			`"labels":["self-hosted","linux"],"priority":110,"at":"2024-05-01T12:00:00Z"}`,
		SignalPrewarm: `{"type":"prewarm","repository":"octo-org/octo-repo","pools":["linux-x64","gpu"],` +
			`"reason":"push","at":"2024-05-01T12:00:00Z"}`,
		SignalRetire: `{"type":"retire","pool":"linux-x64","runner":"rh-linux-x64-1a2b3c4d","providerId":"i-0abc",` +
			`"githubId":7,"jobId":123456789,"reason":"completed","at":"2024-05-01T12:00:00Z"}`,
	}
	got := receiveSignals(t, c, env.DemandQueueURL, len(want))
	for kind, body := range want {
		if got[kind] != body {
			t.Errorf("%s message:\n got  %s\n want %s", kind, got[kind], body)
		}
	}
	if len(got) != len(want) {
		t.Errorf("messages of types %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}

	// Whatever starts runners reads every field back.
	var back struct {
		Type string `json:"type"`
		jobs.Demand
	}
	if err := json.Unmarshal([]byte(got[SignalDemand]), &back); err != nil {
		t.Fatal(err)
	}
	demand := sent[SignalDemand].Demand
	if back.Type != SignalDemand || back.Pool != demand.Pool || back.JobID != demand.JobID ||
		!slices.Equal(back.Labels, demand.Labels) || !back.At.Equal(demand.At) {
		t.Errorf("demand decoded as %+v, want %+v", back, demand)
	}
}

// What Signals sends through the demand queue, ReadSignal gives back field for field.
func TestReadSignalReadsWhatSignalsSent(t *testing.T) {
	t.Parallel()
	env, c := sharedSQS(t)
	sent := sampleSignals()
	sent[SignalDemand].Demand.Resent = true
	sendSignals(t, NewSignals(c, env.DemandQueueURL), sent)
	bodies := receiveSignals(t, c, env.DemandQueueURL, len(sent))
	for kind, want := range sent {
		got, err := ReadSignal([]byte(bodies[kind]))
		if err != nil {
			t.Errorf("%s: %v", kind, err)
			continue
		}
		if got.Kind() != kind || !reflect.DeepEqual(got, want) {
			t.Errorf("%s read as %+v, want %+v", kind, got, want)
		}
	}
}

// A body that is no signal is refused with the reason, never read as an empty one.
func TestReadSignalRefusesMalformedBodies(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, body, want string }{
		{"cut short", `{"type":"demand","pool":`, "not a signal"},
		{"not an object", `"demand"`, "not a signal"},
		{"no type", `{"pool":"linux","jobId":1}`, "no type"},
		{"unknown type", `{"type":"scale-down","pool":"linux"}`, `unknown signal type "scale-down"`},
		{"demand without a job", `{"type":"demand","pool":"linux"}`, "demand signal without a pool and a job id"},
		{"demand without a pool", `{"type":"demand","jobId":7}`, "demand signal without a pool and a job id"},
		{"demand with a mistyped field", `{"type":"demand","pool":"linux","jobId":"7"}`, "demand signal: json"},
		{"prewarm without pools", `{"type":"prewarm","repository":"o/r"}`, "prewarm signal without pools"},
		{"retire without a runner", `{"type":"retire","pool":"linux","providerId":"i-0abc"}`, "retire signal without a pool and a runner"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadSignal([]byte(tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ReadSignal(%s) = %+v, %v; want an error saying %q", tc.body, got, err, tc.want)
			}
		})
	}
}

// sampleSignals is one signal of each type, by type.
func sampleSignals() map[string]Signal {
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	return map[string]Signal{
		SignalDemand: {Demand: &jobs.Demand{Pool: "linux-x64", JobID: 123456789, Repository: "octo-org/octo-repo",
			Labels: []string{"self-hosted", "linux"}, Priority: 110, At: at}},
		SignalPrewarm: {Prewarm: &jobs.Prewarm{Repository: "octo-org/octo-repo", Pools: []string{"linux-x64", "gpu"}, Reason: "push", At: at}},
		SignalRetire: {Retire: &jobs.Retire{Pool: "linux-x64", Runner: "rh-linux-x64-1a2b3c4d", ProviderID: "i-0abc", GitHubID: 7,
			JobID: 123456789, Reason: jobs.RetireCompleted, At: at}},
	}
}

// sendSignals sends each signal through the method of its type.
func sendSignals(t *testing.T, s *Signals, signals map[string]Signal) {
	t.Helper()
	for kind, sig := range signals {
		var err error
		switch kind {
		case SignalDemand:
			err = s.Demand(t.Context(), *sig.Demand)
		case SignalPrewarm:
			err = s.Prewarm(t.Context(), *sig.Prewarm)
		case SignalRetire:
			err = s.Retire(t.Context(), *sig.Retire)
		default:
			t.Fatalf("no method sends a %q signal", kind)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// receiveSignals receives n messages, deleting them, and returns their bodies by the
// type attribute.
func receiveSignals(t *testing.T, c *sqs.Client, url string, n int) map[string]string {
	t.Helper()
	bodies := map[string]string{}
	for deadline := time.Now().Add(10 * time.Second); len(bodies) < n && time.Now().Before(deadline); {
		out, err := c.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{
			QueueUrl:              &url,
			MaxNumberOfMessages:   10,
			WaitTimeSeconds:       1,
			MessageAttributeNames: []string{TypeAttribute},
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			kind := aws.ToString(m.MessageAttributes[TypeAttribute].StringValue)
			if _, dup := bodies[kind]; dup {
				t.Errorf("a second %q message: %s", kind, aws.ToString(m.Body))
			}
			bodies[kind] = aws.ToString(m.Body)
			if _, err := c.DeleteMessage(t.Context(), &sqs.DeleteMessageInput{QueueUrl: &url, ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return bodies
}

// The demand queue is provisioned from template.yaml as documented there.
func TestDemandQueueAttributes(t *testing.T) {
	t.Parallel()
	env, c := sharedSQS(t)
	out, err := c.GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{
		QueueUrl:       &env.DemandQueueURL,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll},
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"MaximumMessageSize":     "1048576",
		"MessageRetentionPeriod": "345600",
		"SqsManagedSseEnabled":   "true",
	} {
		if got := out.Attributes[name]; got != want {
			t.Errorf("demand queue %s = %q, want %q", name, got, want)
		}
	}
	if _, fifo := out.Attributes["FifoQueue"]; fifo {
		t.Error("the demand queue is FIFO, want standard")
	}
}
