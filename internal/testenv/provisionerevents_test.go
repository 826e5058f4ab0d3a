package testenv

import (
	"encoding/json"
	"time"

	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/storage/awsstore"
)

// The ProvisionerFunction's events in events/: a batch of the demand queue and what its
// schedule sends.
const (
	provisionerSQSEvent       = "provisioner-sqs.json"
	provisionerScheduledEvent = "provisioner-scheduled.json"
	demandQueueARN            = "arn:aws:sqs:us-east-1:" + accountID + ":runnerhub-DemandQueue-EXAMPLE"
	processorSenderID         = "AROAEXAMPLEROLEID:runnerhub-ProcessorFunction-EXAMPLE"
)

// provisionerSignalsAt is when the processor sends the batch's signals: after every
// other event.
var provisionerSignalsAt = firstDelivery.Add(3 * time.Hour)

// provisionerSignals are the batch's signals, in order: a demand of pool "linux", a
// demand of pool "broken" (whose provider fails in the function's test), a pre-warm and
// a retire.
var provisionerSignals = []awsstore.Signal{
	{Demand: &jobs.Demand{Pool: "linux", JobID: 4201, Repository: "octo-org/octo-repo", Labels: []string{"self-hosted", "linux"},
		Priority: 100, At: provisionerSignalsAt}},
	{Demand: &jobs.Demand{Pool: "broken", JobID: 4202, Repository: "octo-org/octo-repo", Labels: []string{"self-hosted", "broken"},
		Priority: 100, At: provisionerSignalsAt}},
	{Prewarm: &jobs.Prewarm{Repository: "octo-org/octo-repo", Pools: []string{"linux"}, Reason: "push", At: provisionerSignalsAt}},
	{Retire: &jobs.Retire{Pool: "linux", Runner: "rh-linux-0badc0de", ProviderID: "i-0123456789abcdef0", GitHubID: 4100,
		JobID: 4100, Reason: jobs.RetireCompleted, At: provisionerSignalsAt}},
}

// provisionerMalformedBody is a signal cut short: the function drops it, logged.
const provisionerMalformedBody = `{"type":"demand","pool":`

func generateProvisionerEvents(t *testing.T) map[string][]byte {
	t.Helper()
	var records []sqsRecord
	for i, sig := range provisionerSignals {
		body, err := json.Marshal(sig)
		if err != nil {
			t.Fatal(err)
		}
		records = append(records, signalRecord(sig.Kind(), string(body), provisionerSignalsAt.Add(time.Duration(i)*time.Second)))
	}
	records = append(records, signalRecord("", provisionerMalformedBody, provisionerSignalsAt.Add(time.Minute)))
	return map[string][]byte{
		provisionerSQSEvent: encodeEvent(t, sqsEvent{Records: records}),
		provisionerScheduledEvent: encodeEvent(t, events.EventBridgeEvent{
			Version: "0", ID: "0b7e3f5c-5d2a-4f3e-9a51-6c0f3b2d8e41", DetailType: "Scheduled Event", Source: "aws.events",
			AccountID: accountID, Time: provisionerSignalsAt, Region: awsRegion,
			Resources: []string{"arn:aws:events:" + awsRegion + ":" + accountID + ":rule/runnerhub-ProvisionerFunctionPass-EXAMPLE"},
			Detail:    json.RawMessage(`{}`),
		}),
	}
}

// signalRecord is the record Lambda's SQS event source hands the provisioner for a
// message awsstore.Signals sent (kind in its type attribute; none for "").
func signalRecord(kind, body string, sent time.Time) sqsRecord {
	attrs := map[string]sqsAttribute{}
	if kind != "" {
		attrs[awsstore.TypeAttribute] = sqsAttribute{StringValue: kind, StringListValues: []string{}, BinaryListValues: []string{}, DataType: "String"}
	}
	seed := "signal " + body
	return queueRecord(demandQueueARN, seed, seed, body, sqsAttributes(sent, processorSenderID), attrs)
}
