package deliveries

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io/fs"
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
}

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
	payload := s.payload
	if req.Repository != "" {
		if !repositoryPattern.MatchString(req.Repository) {
			return 0, nil, httpjson.BadRequest("invalid_body", fmt.Sprintf("repository must be owner/name, not %q", httpjson.Clip(req.Repository)))
		}
		var err error
		if payload, err = retarget(payload, req.Repository); err != nil {
			return 0, nil, err
		}
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
	}, nil
}

// retarget points a payload at another repository: repository.full_name, .name and
// .owner.login. Other members keep their raw JSON.
func retarget(payload []byte, repository string) ([]byte, error) {
	owner, name, _ := strings.Cut(repository, "/")
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(payload, &doc); err != nil {
		return nil, fmt.Errorf("sample payload: %w", err)
	}
	repo := map[string]json.RawMessage{}
	if raw, ok := doc["repository"]; ok {
		if err := json.Unmarshal(raw, &repo); err != nil {
			return nil, fmt.Errorf("sample payload repository: %w", err)
		}
	}
	ownerDoc := map[string]json.RawMessage{}
	if raw, ok := repo["owner"]; ok {
		if err := json.Unmarshal(raw, &ownerDoc); err != nil {
			return nil, fmt.Errorf("sample payload repository.owner: %w", err)
		}
	}
	ownerDoc["login"] = quote(owner)
	repo["full_name"], repo["name"], repo["owner"] = quote(repository), quote(name), mustJSON(ownerDoc)
	doc["repository"] = mustJSON(repo)
	return json.Marshal(doc)
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

func quote(s string) json.RawMessage { return mustJSON(s) }

// mustJSON encodes values that always encode: strings and maps of raw JSON.
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
