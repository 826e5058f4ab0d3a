package testenv

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The ApiFunction's events in events/: management API requests as API Gateway's HTTP
// API hands them to the function on its "ANY /api/{proxy+}" route.
const (
	apiRouteKey  = "ANY /api/{proxy+}"
	apiClientIP  = "198.51.100.7" // documentation range
	apiUserAgent = "curl/8.5.0"
)

// apiEvent is one request to the ApiFunction.
type apiEvent struct {
	file, method, path, query string
	authorized                bool   // with Authorization: Bearer EventsAPIToken
	body                      string // JSON
}

var apiEvents = []apiEvent{
	{file: "api-test.json", method: "POST", path: "/api/webhooks/test", authorized: true,
		body: `{"eventType":"workflow_job.queued","repository":"octo-org/octo-repo"}`},
	{file: "api-events-list.json", method: "GET", path: "/api/webhooks/events", query: "limit=10", authorized: true},
	{file: "api-statistics.json", method: "GET", path: "/api/webhooks/statistics", query: "hours=24", authorized: true},
	{file: "api-health.json", method: "GET", path: "/api/webhooks/health"},
	{file: "api-events-unauthorized.json", method: "GET", path: "/api/webhooks/events", query: "limit=10"},
}

// apiFirstRequest is when the first API event is received: after the webhook and
// WebSocket events; each next one a second later.
var apiFirstRequest = firstDelivery.Add(3 * time.Hour)

// httpAPIRequest is an API Gateway HTTP API (payload format 2.0) event for a proxy route:
// httpAPIEvent's members plus the parsed query and path parameters API Gateway adds.
type httpAPIRequest struct {
	Version               string            `json:"version"`
	RouteKey              string            `json:"routeKey"`
	RawPath               string            `json:"rawPath"`
	RawQueryString        string            `json:"rawQueryString"`
	Headers               map[string]string `json:"headers"`
	QueryStringParameters map[string]string `json:"queryStringParameters,omitempty"`
	PathParameters        map[string]string `json:"pathParameters"`
	RequestContext        httpAPIContext    `json:"requestContext"`
	Body                  string            `json:"body,omitempty"`
	IsBase64Encoded       bool              `json:"isBase64Encoded"`
}

func generateAPIEvents(t *testing.T) map[string][]byte {
	files := map[string][]byte{}
	for i, e := range apiEvents {
		at := apiFirstRequest.Add(time.Duration(i) * time.Second)
		ev := httpAPIRequest{
			Version:        "2.0",
			RouteKey:       apiRouteKey,
			RawPath:        e.path,
			RawQueryString: e.query,
			Headers: map[string]string{
				"accept":            "application/json",
				"host":              apiDomain,
				"user-agent":        apiUserAgent,
				"x-amzn-trace-id":   traceIDFor(e.file, at),
				"x-forwarded-for":   apiClientIP,
				"x-forwarded-port":  "443",
				"x-forwarded-proto": "https",
			},
			PathParameters: map[string]string{"proxy": strings.TrimPrefix(e.path, "/api/")},
			Body:           e.body,
		}
		if e.authorized {
			ev.Headers["authorization"] = "Bearer " + EventsAPIToken
		}
		if e.body != "" {
			ev.Headers["content-type"] = "application/json"
			ev.Headers["content-length"] = strconv.Itoa(len(e.body))
		}
		if e.query != "" {
			values, err := url.ParseQuery(e.query)
			if err != nil {
				t.Fatal(err)
			}
			ev.QueryStringParameters = map[string]string{}
			for k := range values {
				ev.QueryStringParameters[k] = values.Get(k)
			}
		}
		c := &ev.RequestContext
		c.AccountID, c.APIID, c.DomainName, c.DomainPrefix = accountID, apiID, apiDomain, apiID
		c.HTTP.Method, c.HTTP.Path, c.HTTP.Protocol = e.method, e.path, "HTTP/1.1"
		c.HTTP.SourceIP, c.HTTP.UserAgent = apiClientIP, apiUserAgent
		c.RequestID = requestIDFor(e.file)
		c.RouteKey, c.Stage = apiRouteKey, "$default"
		c.Time, c.TimeEpoch = at.Format(timeLayout), at.UnixMilli()
		files[e.file] = encodeEvent(t, ev)
	}
	return files
}
