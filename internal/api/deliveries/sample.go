package deliveries

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io/fs"
	mathrand "math/rand/v2"
	"net/http"
	"slices"
	"strings"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/httpjson"
	"github.com/runnerhub/webhooks/internal/ingest"
	"github.com/runnerhub/webhooks/internal/webhook"
	"github.com/runnerhub/webhooks/testdata"
)

// sample is a real payload of one event type and action.
type sample struct {
	event, action string
	payload       []byte
}

// defaultActions is the action an event type without one stands for: the one that
// starts that event's story.
var defaultActions = map[string]string{
	"workflow_job": "queued",
	"workflow_run": "requested",
	"pull_request": "opened",
}

// samples are the supported eventType values: "<event>.<action>" (or "<event>" for
// events without actions) for each payload in testdata/, and every event of
// defaultActions alone.
var samples, sampleTypes = loadSamples(testdata.Payloads)

func loadSamples(files fs.FS) (map[string]sample, []string) {
	names, err := fs.Glob(files, "*.json")
	if err != nil {
		panic(err) // only a malformed pattern fails
	}
	out := map[string]sample{}
	for _, name := range names {
		parts := strings.Split(strings.TrimSuffix(name, ".json"), ".")
		if len(parts) > 2 {
			continue // event.action.2.json: another example of event.action
		}
		payload, err := fs.ReadFile(files, name)
		if err != nil {
			panic(err) // embedded files are always readable
		}
		s := sample{event: parts[0], payload: payload}
		if len(parts) == 2 {
			s.action = parts[1]
		}
		out[strings.Join(parts, ".")] = s
	}
	for event, action := range defaultActions {
		if s, ok := out[event+"."+action]; ok {
			out[event] = s
		}
	}
	types := make([]string, 0, len(out))
	for t := range out {
		types = append(types, t)
	}
	slices.Sort(types)
	return out, types
}

// sampleRequest is the body of POST /api/webhooks/test. Both fields are optional: a ping
// for the payload's own repository.
type sampleRequest struct {
	EventType  string `json:"eventType"`
	Repository string `json:"repository"`
}

type sampleResult struct {
	ID         string `json:"id"`
	HookID     string `json:"hookId"`
	DeliveryID string `json:"deliveryId"`
	Event      string `json:"event"`
	Action     string `json:"action"`
	Repository string `json:"repository"`
	Message    string `json:"message"`
	// JobID and RunID are the fresh ids of a workflow_job's job and run (a
	// workflow_run's run), absent for other events.
	JobID int64 `json:"jobId,omitempty"`
	RunID int64 `json:"runId,omitempty"`
}

// NewSampleID returns a random id for a sample's job or run: of GitHub's size (above
// any id in testdata/), and below 2^53 so that JavaScript reads it exactly.
func NewSampleID() int64 { return 10_000_000_000 + mathrand.Int64N(1_000_000_000_000) }

// sendSample serves POST /api/webhooks/test: it builds a delivery of the requested type
// from a real payload, signs it with the webhook secret and hands it to the ingest
// handler, so that it is verified, recorded, queued and processed like one from GitHub.
func (h *handlers) sendSample(r *http.Request) (int, any, error) {
	var req sampleRequest
	if err := decodeBody(r, &req); err != nil {
		return 0, nil, err
	}
	if req.EventType == "" {
		req.EventType = "ping"
	}
	s, ok := samples[req.EventType]
	if !ok {
		return 0, nil, httpjson.BadRequest("unsupported_event_type",
			fmt.Sprintf("eventType %q is not supported; supported: %s", httpjson.Clip(req.EventType), strings.Join(sampleTypes, ", ")))
	}
	if req.Repository != "" && !repositoryPattern.MatchString(req.Repository) {
		return 0, nil, httpjson.BadRequest("invalid_body", fmt.Sprintf("repository must be owner/name, not %q", httpjson.Clip(req.Repository)))
	}
	// Fresh job and run ids on every call: a sample replayed with the payload's own ids
	// would be a late event of the first call's job, in the first call's repository.
	edit := PayloadEdit{Repository: req.Repository}
	switch s.event {
	case "workflow_job":
		edit.JobID, edit.RunID = NewSampleID(), NewSampleID()
	case "workflow_run":
		edit.RunID = NewSampleID()
	}
	payload, err := edit.Apply(s.payload)
	if err != nil {
		return 0, nil, fmt.Errorf("sample %s: %w", req.EventType, err)
	}

	deliveryID := newDeliveryID()
	in, err := http.NewRequestWithContext(r.Context(), http.MethodPost, ingest.Path, bytes.NewReader(payload))
	if err != nil {
		return 0, nil, err
	}
	in.Header.Set("Content-Type", "application/json")
	in.Header.Set("User-Agent", "RunnerHub-Test")
	in.Header.Set("X-GitHub-Event", s.event)
	in.Header.Set("X-GitHub-Delivery", deliveryID)
	if h.Secret != "" {
		in.Header.Set("X-Hub-Signature-256", webhook.Sign(h.Secret, payload))
	}
	var rec recorder
	h.Ingest.ServeHTTP(&rec, in)

	var answer struct {
		ingest.Response
		Error httpjson.ErrorBody `json:"error"`
	}
	if err := json.Unmarshal(rec.body.Bytes(), &answer); err != nil {
		return 0, nil, fmt.Errorf("ingest answered %d with a body that is not its JSON: %w", rec.status, err)
	}
	if rec.status >= http.StatusMultipleChoices {
		// Ingest's own 5xx (no secret, store or queue down) say what the caller can wait
		// for; a 4xx means the sample itself was refused, which is this server's fault.
		status := http.StatusInternalServerError
		if rec.status >= http.StatusInternalServerError {
			status = rec.status
		}
		return 0, nil, httpjson.NewProblem(status, answer.Error.Code, "the webhook endpoint refused the test delivery: "+answer.Error.Message)
	}
	repository := req.Repository
	if repository == "" {
		repository, _ = repositoryOf(payload)
	}
	key := delivery.Key{HookID: delivery.NoHook, DeliveryID: deliveryID} // ingest's key: no hook id is sent
	return http.StatusAccepted, sampleResult{
		ID: eventID(key), HookID: key.HookID, DeliveryID: deliveryID,
		Event: s.event, Action: s.action, Repository: repository, Message: answer.Message,
		JobID: edit.JobID, RunID: edit.RunID,
	}, nil
}

// PayloadEdit changes a real payload into the delivery one wants to play: the sample of
// POST /api/webhooks/test, and what the local stack's send command posts. Zero fields
// leave the payload's own values; members not named keep their raw JSON.
type PayloadEdit struct {
	// Repository (owner/name) sets repository.full_name, .name and .owner.login.
	Repository string
	// JobID sets workflow_job.id; RunID workflow_job.run_id, or workflow_run.id.
	JobID, RunID int64
	// Runner sets workflow_job.runner_name, Labels workflow_job.labels.
	Runner string
	Labels []string
}

// Apply returns payload edited. It fails only when payload is not a JSON object or a
// member it edits is not one.
func (e PayloadEdit) Apply(payload []byte) ([]byte, error) {
	doc, err := object(payload, "the payload")
	if err != nil {
		return nil, err
	}
	if e.Repository != "" {
		owner, name, _ := strings.Cut(e.Repository, "/")
		err = edit(doc, "repository", func(repo map[string]json.RawMessage) error {
			repo["full_name"], repo["name"] = mustJSON(e.Repository), mustJSON(name)
			return edit(repo, "owner", func(o map[string]json.RawMessage) error {
				o["login"] = mustJSON(owner)
				return nil
			})
		})
	}
	if _, isJob := doc["workflow_job"]; err == nil && isJob {
		err = edit(doc, "workflow_job", func(job map[string]json.RawMessage) error {
			set(job, "id", e.JobID != 0, e.JobID)
			set(job, "run_id", e.RunID != 0, e.RunID)
			set(job, "runner_name", e.Runner != "", e.Runner)
			set(job, "labels", e.Labels != nil, e.Labels)
			return nil
		})
	}
	if _, isRun := doc["workflow_run"]; err == nil && isRun && e.RunID != 0 {
		err = edit(doc, "workflow_run", func(run map[string]json.RawMessage) error {
			run["id"] = mustJSON(e.RunID)
			return nil
		})
	}
	if err != nil {
		return nil, err
	}
	return json.Marshal(doc)
}

// object decodes a JSON object's members, keeping their raw JSON.
func object(raw []byte, what string) (map[string]json.RawMessage, error) {
	doc := map[string]json.RawMessage{}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%s is not a JSON object: %w", what, err)
	}
	return doc, nil
}

// edit changes doc's member name (an object; created when missing) with f.
func edit(doc map[string]json.RawMessage, name string, f func(map[string]json.RawMessage) error) error {
	member := map[string]json.RawMessage{}
	if raw, ok := doc[name]; ok {
		var err error
		if member, err = object(raw, name); err != nil {
			return err
		}
	}
	if err := f(member); err != nil {
		return err
	}
	doc[name] = mustJSON(member)
	return nil
}

// set sets doc[name] to v when ok.
func set(doc map[string]json.RawMessage, name string, ok bool, v any) {
	if ok {
		doc[name] = mustJSON(v)
	}
}

// repositoryOf reads repository.full_name.
func repositoryOf(payload []byte) (string, error) {
	var doc struct {
		Repository struct {
			FullName string `json:"full_name"`
		} `json:"repository"`
	}
	err := json.Unmarshal(payload, &doc)
	return doc.Repository.FullName, err
}

// mustJSON encodes values that always encode: strings, numbers, string lists and maps
// of raw JSON.
func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// newDeliveryID returns a random (version 4) UUID, the form of GitHub's delivery GUIDs.
func newDeliveryID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// recorder keeps the ingest handler's answer.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header {
	if r.header == nil {
		r.header = http.Header{}
	}
	return r.header
}

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}
