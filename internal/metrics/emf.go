package metrics

import (
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/runnerhub/webhooks/internal/ingest"
)

// EMF writes the same figures as CloudWatch Embedded Metric Format log lines: in Lambda a
// Prometheus registry lives only as long as one execution environment, while EMF lines
// become CloudWatch metrics without any API call.
type EMF struct {
	Namespace string
	mu        sync.Mutex
	w         io.Writer
	now       func() time.Time
}

var _ ingest.Metrics = (*EMF)(nil)

// NewEMF writes EMF lines to w (os.Stdout in Lambda).
func NewEMF(w io.Writer, namespace string) *EMF {
	return &EMF{Namespace: namespace, w: w, now: time.Now}
}

type emfMetric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

type emfDirective struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []emfMetric `json:"Metrics"`
}

type emfMeta struct {
	Timestamp         int64          `json:"Timestamp"`
	CloudWatchMetrics []emfDirective `json:"CloudWatchMetrics"`
}

// Observe implements ingest.Metrics with one EMF line per request.
func (e *EMF) Observe(event, outcome, reason string, elapsed time.Duration) {
	if event == "" {
		event = "unknown"
	}
	line := map[string]any{
		"_aws": emfMeta{
			Timestamp: e.now().UnixMilli(),
			CloudWatchMetrics: []emfDirective{{
				Namespace:  e.Namespace,
				Dimensions: [][]string{{"event", "status"}},
				Metrics: []emfMetric{
					{Name: "webhook_events_total", Unit: "Count"},
					{Name: "webhook_ingest_duration_seconds", Unit: "Seconds"},
				},
			}},
		},
		"event":                           event,
		"status":                          outcome,
		"webhook_events_total":            1,
		"webhook_ingest_duration_seconds": elapsed.Seconds(),
	}
	if reason != "" {
		line["reason"] = reason
	}
	b, err := json.Marshal(line)
	if err != nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	_, _ = e.w.Write(append(b, '\n'))
}
