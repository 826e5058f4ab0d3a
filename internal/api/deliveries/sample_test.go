package deliveries_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/ingest"
	"github.com/runnerhub/webhooks/internal/webhook"
)

type sampleResult struct {
	ID, HookID, DeliveryID, Event, Action, Repository, Message string
}

// Every supported event type goes through ingest: signed, recorded with the requested
// repository, queued.
func TestSendSample(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		types := []struct{ eventType, event, action string }{
			{"ping", "ping", ""},
			{"push", "push", ""},
			{"workflow_job", "workflow_job", "queued"},
			{"workflow_job.queued", "workflow_job", "queued"},
			{"workflow_job.waiting", "workflow_job", "waiting"},
			{"workflow_job.in_progress", "workflow_job", "in_progress"},
			{"workflow_job.completed", "workflow_job", "completed"},
			{"workflow_run", "workflow_run", "requested"},
			{"workflow_run.requested", "workflow_run", "requested"},
			{"workflow_run.completed", "workflow_run", "completed"},
			{"pull_request", "pull_request", "opened"},
			{"pull_request.opened", "pull_request", "opened"},
			{"pull_request.reopened", "pull_request", "reopened"},
			{"pull_request.synchronize", "pull_request", "synchronize"},
		}
		for _, c := range types {
			t.Run(c.eventType, func(t *testing.T) {
				a := e.call(t, "POST", "/api/webhooks/test", `{"eventType": "`+c.eventType+`", "repository": "acme-corp/widgets"}`)
				var got sampleResult
				a.ok(t, http.StatusAccepted, &got)
				if got.Event != c.event || got.Action != c.action || got.Repository != "acme-corp/widgets" ||
					got.HookID != "-" || got.ID != "-:"+got.DeliveryID || len(got.DeliveryID) != 36 || got.Message == "" {
					t.Errorf("answer %+v", got)
				}
				if strings.Contains(a.Body, secret) || strings.Contains(a.Body, "sha256=") {
					t.Errorf("the answer shows the secret or a signature: %s", a.Body)
				}
				rec, err := e.store.Get(t.Context(), delivery.Key{HookID: delivery.NoHook, DeliveryID: got.DeliveryID})
				if err != nil {
					t.Fatalf("the test delivery was not recorded: %v", err)
				}
				// What ingest read from the payload agrees with the type asked for.
				if rec.Event != c.event || rec.Action != c.action || rec.Repository != "acme-corp/widgets" {
					t.Errorf("recorded %s/%s for %s", rec.Event, rec.Action, rec.Repository)
				}
				var payload struct {
					Repository struct {
						FullName string `json:"full_name"`
						Name     string `json:"name"`
						Owner    struct {
							Login string `json:"login"`
						} `json:"owner"`
					} `json:"repository"`
				}
				if err := json.Unmarshal(rec.Payload, &payload); err != nil {
					t.Fatal(err)
				}
				if r := payload.Repository; r.FullName != "acme-corp/widgets" || r.Name != "widgets" || r.Owner.Login != "acme-corp" {
					t.Errorf("payload repository %+v", r)
				}
				queued := e.drain(t)
				if len(queued) != 1 || queued[0].DeliveryID != got.DeliveryID || queued[0].Event != c.event {
					t.Errorf("queued %+v", queued)
				}
			})
		}

		t.Run("EmptyBodyIsAPing", func(t *testing.T) {
			var got sampleResult
			e.call(t, "POST", "/api/webhooks/test", "").ok(t, http.StatusAccepted, &got)
			if got.Event != "ping" || got.Repository != "Octocoders/Hello-World" || got.Message != "pong" {
				t.Errorf("answer %+v, want a pong for the payload's own repository", got)
			}
			e.drain(t)
		})

		t.Run("Invalid", func(t *testing.T) {
			cases := []struct {
				name, contentType, body string
				status                  int
				code                    string
				words                   []string
			}{
				{"UnknownType", "application/json", `{"eventType":"deployment"}`, http.StatusBadRequest, "unsupported_event_type",
					[]string{`"deployment"`, "ping", "workflow_job.queued", "pull_request.synchronize"}},
				{"UnknownAction", "application/json", `{"eventType":"workflow_job.exploded"}`, http.StatusBadRequest, "unsupported_event_type", nil},
				{"UnknownField", "application/json", `{"eventType":"ping","secret":"x"}`, http.StatusBadRequest, "invalid_body", []string{`unknown field "secret"`}},
				{"WrongType", "application/json", `{"eventType":42}`, http.StatusBadRequest, "invalid_body", []string{"eventType must be a string"}},
				{"BadRepository", "application/json", `{"repository":"not a repo"}`, http.StatusBadRequest, "invalid_body", []string{"repository must be owner/name"}},
				{"LongRepository", "application/json", `{"repository":"o/` + strings.Repeat("r", 101) + `"}`, http.StatusBadRequest, "invalid_body", []string{"repository"}},
				{"NotJSON", "application/json", `eventType=ping`, http.StatusBadRequest, "invalid_body", []string{"expected a JSON object", "not JSON"}},
				{"Truncated", "application/json", `{"eventType":"ping"`, http.StatusBadRequest, "invalid_body", []string{"ends early"}},
				{"TwoObjects", "application/json", `{}{}`, http.StatusBadRequest, "invalid_body", []string{"one JSON object"}},
				{"Form", "application/x-www-form-urlencoded", `eventType=ping`, http.StatusUnsupportedMediaType, "unsupported_content_type", nil},
				{"TooLarge", "application/json", `{"eventType":"` + strings.Repeat("p", 20<<10) + `"}`, http.StatusRequestEntityTooLarge, "body_too_large", nil},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					req := httptest.NewRequest("POST", "/api/webhooks/test", strings.NewReader(c.body))
					req.Header.Set("Content-Type", c.contentType)
					req.Header.Set("Authorization", "Bearer "+token)
					w := httptest.NewRecorder()
					e.handler.ServeHTTP(w, req)
					a := answer{status: w.Code, Body: w.Body.String()}
					if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
						t.Fatal(err)
					}
					a.failed(t, c.status, c.code, c.words...)
				})
			}
			if got := e.drain(t); len(got) != 0 {
				t.Errorf("refused requests queued %+v", got)
			}
		})

		t.Run("IngestRefuses", func(t *testing.T) {
			cases := []struct {
				name   string
				parser *webhook.Parser
				secret string
				status int
				code   string
			}{
				// The API function was given no webhook secret: ingest fails closed.
				{"NoSecret", &webhook.Parser{Verifier: webhook.NewVerifier()}, "", http.StatusServiceUnavailable, "no_secret"},
				// The API was given another secret than ingest: its own misconfiguration.
				{"OtherSecret", &webhook.Parser{Verifier: webhook.NewVerifier(secret)}, "another-secret", http.StatusInternalServerError, "bad_signature"},
				// A local stack without a secret that accepts unsigned deliveries.
				{"Unsigned", &webhook.Parser{Verifier: webhook.NewVerifier(), AllowUnsigned: true}, "", http.StatusAccepted, ""},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					changed := *e
					changed.deps.Secret = c.secret
					changed.deps.Ingest = &ingest.Handler{Parser: c.parser, Store: e.store, Queue: e.deps.Queue,
						MaxBodyBytes: 1 << 20, Log: slog.New(slog.DiscardHandler), Now: time.Now}
					changed.rebuild(t)
					a := changed.call(t, "POST", "/api/webhooks/test", `{"eventType":"push"}`)
					if c.code == "" {
						a.ok(t, c.status, nil)
					} else {
						a.failed(t, c.status, c.code, "refused the test delivery")
					}
				})
			}
			e.drain(t)
		})

		e.send(t, "POST", "/api/webhooks/test", `{"eventType":"ping"}`, false).failed(t, http.StatusUnauthorized, "unauthorized")
	})
}

// Each test delivery of a job or a run has fresh ids, reported in the answer, so that a
// second call is a new job (in the repository it names), not a late event of the first.
func TestSendSampleFreshIDs(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		for _, c := range []struct {
			eventType string
			job       bool
		}{
			{"workflow_job.queued", true},
			{"workflow_job.completed", true},
			{"workflow_run.requested", false},
		} {
			t.Run(c.eventType, func(t *testing.T) {
				seen := map[int64]bool{}
				for _, repo := range []string{"acme-corp/one", "acme-corp/two"} {
					var got struct {
						DeliveryID   string
						JobID, RunID int64
					}
					e.call(t, "POST", "/api/webhooks/test", `{"eventType": "`+c.eventType+`", "repository": "`+repo+`"}`).ok(t, http.StatusAccepted, &got)
					rec, err := e.store.Get(t.Context(), delivery.Key{HookID: delivery.NoHook, DeliveryID: got.DeliveryID})
					if err != nil {
						t.Fatal(err)
					}
					type ids struct {
						ID    int64 `json:"id"`
						RunID int64 `json:"run_id"`
					}
					var payload struct {
						Job ids `json:"workflow_job"`
						Run ids `json:"workflow_run"`
					}
					if err := json.Unmarshal(rec.Payload, &payload); err != nil {
						t.Fatal(err)
					}
					p := payload.Run
					if c.job {
						p = payload.Job
					}
					wantJob, wantRun := got.JobID, got.RunID
					if !c.job {
						wantJob, wantRun = got.RunID, 0 // a run's id is workflow_run.id
					}
					if got.RunID == 0 || (c.job && got.JobID == 0) || (!c.job && got.JobID != 0) || p.ID != wantJob || p.RunID != wantRun {
						t.Errorf("answer job %d run %d, payload id %d run_id %d", got.JobID, got.RunID, p.ID, p.RunID)
					}
					if seen[got.JobID] || seen[got.RunID] || got.RunID >= 1<<53 {
						t.Errorf("ids %d/%d repeat or exceed 2^53: %v", got.JobID, got.RunID, seen)
					}
					seen[got.JobID], seen[got.RunID] = got.JobID != 0, true
					if rec.Repository != repo {
						t.Errorf("recorded for %s, want %s", rec.Repository, repo)
					}
				}
				e.drain(t)
			})
		}
	})
}
