package metrics

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestPrometheusCountsOutcomesAndRejections(t *testing.T) {
	m := New()
	m.Observe("workflow_job", "accepted", "", 3*time.Millisecond)
	m.Observe("workflow_job", "accepted", "", 5*time.Millisecond)
	m.Observe("", "rejected", "bad_signature", time.Millisecond)
	if got := testutil.ToFloat64(m.events.WithLabelValues("workflow_job", "accepted")); got != 2 {
		t.Fatalf("accepted = %v", got)
	}
	if got := testutil.ToFloat64(m.events.WithLabelValues("unknown", "rejected")); got != 1 {
		t.Fatalf("rejected = %v", got)
	}
	if got := testutil.ToFloat64(m.rejections.WithLabelValues("bad_signature")); got != 1 {
		t.Fatalf("bad_signature = %v", got)
	}
	if n := testutil.CollectAndCount(m.ingestTime); n != 1 {
		t.Fatalf("histogram series = %d", n)
	}
}

func TestEMFLineIsCloudWatchShaped(t *testing.T) {
	var buf bytes.Buffer
	e := NewEMF(&buf, "RunnerHub")
	e.Observe("push", "rejected", "bad_signature", 2*time.Millisecond)
	var line map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &line); err != nil {
		t.Fatal(err)
	}
	aws := line["_aws"].(map[string]any)
	directive := aws["CloudWatchMetrics"].([]any)[0].(map[string]any)
	if directive["Namespace"] != "RunnerHub" || line["event"] != "push" || line["status"] != "rejected" ||
		line["webhook_events_total"] != 1.0 || line["reason"] != "bad_signature" {
		t.Fatalf("line %s", buf.String())
	}
	if !strings.HasSuffix(buf.String(), "\n") {
		t.Fatal("EMF lines must end with a newline")
	}
}

func TestProvisionerCountsOnBothAdapters(t *testing.T) {
	m := New()
	p := m.Provisioner()
	p.RunnerCreated("linux")
	p.RunnerCreated("linux")
	p.OrphanReaped("linux", "github")
	if got := testutil.ToFloat64(collector(t, m, runnersCreated).WithLabelValues("linux")); got != 2 {
		t.Fatalf("%s = %v, want 2", runnersCreated, got)
	}
	if got := testutil.ToFloat64(collector(t, m, orphansReaped).WithLabelValues("linux", "github")); got != 1 {
		t.Fatalf("%s = %v, want 1", orphansReaped, got)
	}

	var buf bytes.Buffer
	NewEMF(&buf, "RunnerHub").Provisioner().JITFailed("linux", "forbidden")
	var line map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &line); err != nil {
		t.Fatal(err)
	}
	dims := line["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)["Dimensions"].([]any)[0].([]any)
	if line[jitFailures] != 1.0 || line["pool"] != "linux" || line["cause"] != "forbidden" || len(dims) != 2 {
		t.Fatalf("line %s", buf.String())
	}
}

// collector finds a registered counter vector by name by counting through it: the
// registry hands out descriptions, not collectors.
func collector(t *testing.T, m *Metrics, name string) *prometheus.CounterVec {
	t.Helper()
	for _, c := range provisionerCounters {
		if c.name == name {
			v := counterVec(c.name, c.help, c.labels...)
			if err := m.Registry.Register(v); err != nil {
				var are prometheus.AlreadyRegisteredError
				if errors.As(err, &are) {
					return are.ExistingCollector.(*prometheus.CounterVec)
				}
				t.Fatal(err)
			}
			t.Fatalf("%s was not registered", name)
		}
	}
	t.Fatalf("no counter %s", name)
	return nil
}
