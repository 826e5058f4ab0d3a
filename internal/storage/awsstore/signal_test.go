package awsstore

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/testenv"
)

// What Signals sends through the demand queue, ReadSignal gives back field for field.
func TestReadSignalReadsWhatSignalsSent(t *testing.T) {
	t.Parallel()
	env := testenv.SharedAWS(t)
	c := sqs.NewFromConfig(env.Config)
	signals := NewSignals(c, env.DemandQueueURL)
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	sent := map[string]Signal{
		SignalDemand: {Demand: &jobs.Demand{Pool: "linux-x64", JobID: 123456789, Repository: "octo-org/octo-repo",
			Labels: []string{"self-hosted", "linux"}, Priority: 110, At: at, Resent: true}},
		SignalPrewarm: {Prewarm: &jobs.Prewarm{Repository: "octo-org/octo-repo", Pools: []string{"linux-x64", "gpu"}, Reason: "push", At: at}},
		SignalRetire: {Retire: &jobs.Retire{Pool: "linux-x64", Runner: "rh-linux-x64-1a2b3c4d", ProviderID: "i-0abc", GitHubID: 7,
			JobID: 123456789, Reason: jobs.RetireCompleted, At: at}},
	}
	if err := signals.Demand(t.Context(), *sent[SignalDemand].Demand); err != nil {
		t.Fatal(err)
	}
	if err := signals.Prewarm(t.Context(), *sent[SignalPrewarm].Prewarm); err != nil {
		t.Fatal(err)
	}
	if err := signals.Retire(t.Context(), *sent[SignalRetire].Retire); err != nil {
		t.Fatal(err)
	}
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
