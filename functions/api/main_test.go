package main

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/runnerhub/webhooks/internal/testenv"
)

// answer is the envelope of every answer.
type answer struct {
	Success bool            `json:"success"`
	Data    json.RawMessage `json:"data"`
	Error   struct {
		Code string `json:"code"`
	} `json:"error"`
}

// apiCase is what the function must answer to one event in events/, in this order: the
// test delivery goes first, so that the listing and the statistics have something to show.
type apiCase struct {
	file   string
	status int
	check  func(t *testing.T, s *state, data json.RawMessage)
	code   string // for refusals
}

// state carries what one answer tells the checks of later ones.
type state struct {
	env        *testenv.AWS
	deliveryID string
}

var apiCases = []apiCase{
	{file: "api-test.json", status: http.StatusAccepted, check: func(t *testing.T, s *state, data json.RawMessage) {
		var got struct{ ID, DeliveryID, Event, Action, Repository string }
		decode(t, data, &got)
		if got.Event != "workflow_job" || got.Action != "queued" || got.Repository != "octo-org/octo-repo" || got.ID != "-:"+got.DeliveryID {
			t.Errorf("test delivery %+v", got)
		}
		s.deliveryID = got.DeliveryID
		// Recorded and queued by the same ingest path as the webhook function's.
		if item := testenv.GetItem(t, s.env.DynamoDB(), s.env.EventsTable, "DELIVERY#-#"+got.DeliveryID, "DELIVERY"); len(item) == 0 {
			t.Fatal("the test delivery is not in the table")
		}
		msgs, err := sqs.NewFromConfig(s.env.Config).ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: &s.env.EventsQueueURL, MaxNumberOfMessages: 10})
		if err != nil || len(msgs.Messages) != 1 || !strings.Contains(aws.ToString(msgs.Messages[0].Body), got.DeliveryID) {
			t.Errorf("queued %+v (%v), want the test delivery", msgs, err)
		}
	}},
	{file: "api-events-list.json", status: http.StatusOK, check: func(t *testing.T, s *state, data json.RawMessage) {
		var got struct {
			Events []struct{ ID, DeliveryID, Event, Repository string }
			Limit  int
		}
		decode(t, data, &got)
		if got.Limit != 10 || len(got.Events) != 1 || got.Events[0].DeliveryID != s.deliveryID || got.Events[0].Repository != "octo-org/octo-repo" {
			t.Errorf("listing %+v, want the test delivery alone", got)
		}
	}},
	{file: "api-statistics.json", status: http.StatusOK, check: func(t *testing.T, _ *state, data json.RawMessage) {
		var got struct {
			TimeWindow string
			Summary    struct{ TotalEvents, PendingEvents int }
			ByEvent    []struct{ Event string }
		}
		decode(t, data, &got)
		if got.TimeWindow != "24 hours" || got.Summary.TotalEvents != 1 || got.Summary.PendingEvents != 1 ||
			len(got.ByEvent) != 1 || got.ByEvent[0].Event != "workflow_job" {
			t.Errorf("statistics %+v, want the one pending workflow_job", got)
		}
	}},
	{file: "api-health.json", status: http.StatusOK, check: func(t *testing.T, _ *state, data json.RawMessage) {
		var got struct {
			Status       string
			Reasons      []string
			RecentEvents int
		}
		decode(t, data, &got)
		if got.Status != "healthy" || len(got.Reasons) != 0 || got.RecentEvents != 1 {
			t.Errorf("health %+v, want healthy with one recent event", got)
		}
		if strings.Contains(string(data), "octo-org") {
			t.Errorf("health names a repository: %s", data)
		}
	}},
	{file: "api-events-unauthorized.json", status: http.StatusUnauthorized, code: "unauthorized"},
}

// TestApiFunction runs the built bootstrap under aws-lambda-rie against moto with every
// API event in events/, as Lambda would behind API Gateway.
func TestApiFunction(t *testing.T) {
	env := testenv.StartAWS(t)
	fn := startAPI(t, env)
	var files []string
	for _, c := range apiCases {
		files = append(files, c.file)
	}
	testenv.RequireEventsCovered(t, "api-*.json", files)

	s := &state{env: env}
	for _, c := range apiCases {
		t.Run(c.file, func(t *testing.T) {
			payload := testenv.ReadEvent(t, c.file)
			resp := fn.InvokeHTTP(t, payload)
			if resp.StatusCode != c.status || resp.Headers["Content-Type"] != "application/json" {
				t.Fatalf("status %d, Content-Type %q; want %d, application/json: %s", resp.StatusCode, resp.Headers["Content-Type"], c.status, resp.Body)
			}
			var a answer
			decode(t, json.RawMessage(resp.Body), &a)
			if c.code != "" {
				if a.Success || a.Error.Code != c.code {
					t.Errorf("answer %s, want error %s", resp.Body, c.code)
				}
				return
			}
			if !a.Success {
				t.Fatalf("answer %s", resp.Body)
			}
			c.check(t, s, a.Data)
		})
	}
}

// TestApiFunctionServesTheDocumentedAPI asks the function for every operation of
// openapi.yaml that API Gateway routes to it (not the webhook, not the local stack's
// WebSocket), without a token: the router must know each one, answering 401 for those
// that need a token and serving the public ones.
func TestApiFunctionServesTheDocumentedAPI(t *testing.T) {
	ops := testenv.OpenAPI(t)
	fn := startAPI(t, testenv.SharedAWS(t))
	for _, op := range ops {
		if op.ServedBy != "" {
			continue
		}
		path := pathParam.ReplaceAllString(op.Path, "1") // refused or served before any parameter is read
		resp := fn.InvokeHTTP(t, apiRequest(t, op.Method, path, "", nil))
		want := http.StatusUnauthorized
		if op.Public {
			want = http.StatusOK
		}
		if resp.StatusCode != want {
			t.Errorf("%s %s without a token: %d, want %d: %.200s", op.Method, op.Path, resp.StatusCode, want, resp.Body)
		}
	}
}

// TestApiFunctionReadToken: through the built bootstrap, a read-only token reads and
// mints a WebSocket ticket, and every write it tries is a 403 with a JSON message.
func TestApiFunctionReadToken(t *testing.T) {
	const readToken = "rh_api-read-token-0123456789"
	fn := startAPI(t, testenv.SharedAWS(t), "RUNNERHUB_API_READ_TOKENS="+readToken)
	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{"GET", "/api/pools", "", http.StatusOK},
		{"GET", "/api/webhooks/statistics", "", http.StatusOK},
		{"POST", "/api/ws/ticket", "", http.StatusOK},
		{"PUT", "/api/pools/linux", `{"labels": ["linux"], "maxRunners": 1}`, http.StatusForbidden},
		{"POST", "/api/runners", `{"name": "r1", "pool": "linux"}`, http.StatusForbidden},
		{"POST", "/api/webhooks/test", "", http.StatusForbidden},
		{"POST", "/api/webhooks/dlq/replay", "", http.StatusForbidden},
		{"DELETE", "/api/runners/r1", "", http.StatusForbidden},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			resp := fn.InvokeHTTP(t, apiRequest(t, tc.method, tc.path, tc.body,
				map[string]string{"authorization": "Bearer " + readToken, "content-type": "application/json"}))
			if resp.StatusCode != tc.status {
				t.Fatalf("%d, want %d: %s", resp.StatusCode, tc.status, resp.Body)
			}
			var a answer
			decode(t, json.RawMessage(resp.Body), &a)
			if tc.status == http.StatusForbidden && (a.Success || a.Error.Code != "forbidden") {
				t.Errorf("answer %s, want error forbidden", resp.Body)
			}
		})
	}
}

// startAPI starts the built ApiFunction on env's resources, with the events' webhook
// secret and API token and the variables in extra.
func startAPI(t *testing.T, env *testenv.AWS, extra ...string) *testenv.Lambda {
	return testenv.StartFunction(t, "ApiFunction", append(env.Env(), append([]string{
		"GITHUB_WEBHOOK_SECRET=" + testenv.EventsSecret,
		"RUNNERHUB_API_TOKENS=" + testenv.EventsAPIToken,
	}, extra...)...))
}

// apiRequest is the API Gateway HTTP API event of a request for method and path, with
// body and, besides the ones every request has, the headers in extra.
func apiRequest(t *testing.T, method, path, body string, extra map[string]string) []byte {
	headers := map[string]string{"accept": "*/*", "host": "abcdef1234.execute-api.us-east-1.amazonaws.com"}
	maps.Copy(headers, extra)
	payload, err := json.Marshal(events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "$default", RawPath: path, Body: body, Headers: headers,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			Stage: "$default",
			HTTP:  events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path, Protocol: "HTTP/1.1", SourceIP: "198.51.100.7"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return payload
}

// pathParam matches the {name} parameters of a documented path.
var pathParam = regexp.MustCompile(`\{[^}]+\}`)

func decode(t *testing.T, data json.RawMessage, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", data, err)
	}
}
