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
	line := e.newLine()
	line.set("event", or(event, "unknown"))
	line.set("status", outcome)
	line.directive([]string{"event", "status"},
		line.count("webhook_events_total"), line.seconds("webhook_ingest_duration_seconds", elapsed.Seconds()))
	if reason != "" {
		line.set("reason", reason)
	}
	e.write(line)
}

// emfLine builds one EMF line: its properties (dimension values, metric values, and
// anything else worth finding in the logs) and the directives that make metrics of them.
type emfLine struct {
	namespace string
	fields    map[string]any
	meta      emfMeta
}

func (e *EMF) newLine() *emfLine {
	return &emfLine{namespace: e.Namespace, fields: map[string]any{}, meta: emfMeta{Timestamp: e.now().UnixMilli()}}
}

func (l *emfLine) set(name string, v any) { l.fields[name] = v }

// count sets the metric name to 1 and returns its declaration.
func (l *emfLine) count(name string) emfMetric {
	l.fields[name] = 1
	return emfMetric{Name: name, Unit: "Count"}
}

// seconds sets the metric name to v and returns its declaration.
func (l *emfLine) seconds(name string, v float64) emfMetric {
	l.fields[name] = v
	return emfMetric{Name: name, Unit: "Seconds"}
}

// directive publishes metrics with the dimensions dims (properties of the line).
func (l *emfLine) directive(dims []string, metrics ...emfMetric) {
	if len(metrics) == 0 {
		return
	}
	l.meta.CloudWatchMetrics = append(l.meta.CloudWatchMetrics,
		emfDirective{Namespace: l.namespace, Dimensions: [][]string{dims}, Metrics: metrics})
}

// write prints the line. Lines are written whole, one at a time.
func (e *EMF) write(l *emfLine) {
	l.fields["_aws"] = l.meta
	b, err := json.Marshal(l.fields)
	if err != nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	_, _ = e.w.Write(append(b, '\n'))
}
