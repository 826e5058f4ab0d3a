package awsstore

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/testenv"
)

// Signals land on the template's demand queue as documented: a JSON object with a type
// and the signal's fields, and the type repeated as a message attribute.
func TestSignals(t *testing.T) {
	t.Parallel()
	env := testenv.SharedAWS(t)
	c := sqs.NewFromConfig(env.Config)
	signals := NewSignals(c, env.DemandQueueURL)
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

	demand := jobs.Demand{Pool: "linux-x64", JobID: 123456789, Repository: "octo-org/octo-repo",
		Labels: []string{"self-hosted", "linux"}, Priority: 110, At: at}
	if err := signals.Demand(t.Context(), demand); err != nil {
		t.Fatal(err)
	}
	prewarm := jobs.Prewarm{Repository: "octo-org/octo-repo", Pools: []string{"linux-x64", "gpu"}, Reason: "push", At: at}
	if err := signals.Prewarm(t.Context(), prewarm); err != nil {
		t.Fatal(err)
	}
	retire := jobs.Retire{Pool: "linux-x64", Runner: "rh-linux-x64-1a2b3c4d", ProviderID: "i-0abc", GitHubID: 7,
		JobID: 123456789, Reason: jobs.RetireCompleted, At: at}
	if err := signals.Retire(t.Context(), retire); err != nil {
		t.Fatal(err)
	}

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
	if back.Type != SignalDemand || back.Pool != demand.Pool || back.JobID != demand.JobID ||
		!slices.Equal(back.Labels, demand.Labels) || !back.At.Equal(demand.At) {
		t.Errorf("demand decoded as %+v, want %+v", back, demand)
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
	env := testenv.SharedAWS(t)
	out, err := sqs.NewFromConfig(env.Config).GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{
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
