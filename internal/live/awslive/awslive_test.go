package awslive_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"

	"github.com/runnerhub/webhooks/internal/auth"
	"github.com/runnerhub/webhooks/internal/live"
	"github.com/runnerhub/webhooks/internal/live/awslive"
	"github.com/runnerhub/webhooks/internal/live/livetest"
	"github.com/runnerhub/webhooks/internal/testenv"
)

// testReadToken is the read-only token of the tests.
const testReadToken = "rh_awslive-read-token-0123456789"

const testToken = "rh_awslive-test-token-0123456789"

// TestConformance runs the suite against the AWS host as API Gateway drives it: each
// client is a connection whose $connect, $default and $disconnect events go to the
// WebSocketFunction's handler, connection records are in the template's table on moto,
// and messages are posted with apigatewaymanagementapi to an API Gateway stand-in that
// keeps what each connection received, answers 410 GoneException for connections made
// gone, and passes every other request on to moto's apigatewaymanagementapi (which
// accepts any connection and never answers 410).
func TestConformance(t *testing.T) {
	livetest.Run(t, func(t *testing.T) *livetest.Harness {
		env := testenv.SharedAWS(t)
		gw := newGateway(t, env.Endpoint)
		tokens, err := auth.ParseRoles(testToken, testReadToken)
		if err != nil {
			t.Fatal(err)
		}
		hub, err := awslive.New(env.Config, env.EventsTable, gw.URL, live.Hub{
			Access: live.Access{Tokens: tokens, Tickets: live.NewTickets(testToken, testReadToken)},
			Log:    quietLog(),
		})
		if err != nil {
			t.Fatal(err)
		}
		fn := &awslive.Handler{Hub: hub, Log: quietLog()}
		return &livetest.Harness{
			Hub:   hub,
			Token: testToken, ReadToken: testReadToken,
			Dial: func(t testing.TB, query url.Values) (livetest.Client, int) {
				c := &apiClient{fn: fn, gw: gw, id: newConnectionID()}
				resp := c.event(t, "CONNECT", "$connect", query, "")
				if resp.StatusCode != http.StatusOK {
					return nil, resp.StatusCode
				}
				return c, http.StatusSwitchingProtocols
			},
			Gone: func(t testing.TB, _ livetest.Client, id string) { gw.gone(id) },
		}
	})
}

// TestSender checks PostToConnection's round trip on moto and the 410 mapping on a
// server that answers as API Gateway does for a closed connection.
func TestSender(t *testing.T) {
	env := testenv.SharedAWS(t)
	gone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeGone(w)
	}))
	defer gone.Close()
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-amzn-ErrorType", "ForbiddenException")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, `{"message":"Forbidden"}`)
	}))
	defer broken.Close()
	tests := []struct {
		name     string
		endpoint string
		wantGone bool
		wantErr  bool
	}{
		{"moto accepts the post", env.Endpoint, false, false},
		{"410 GoneException", gone.URL + "/ws", true, true},
		{"other errors are errors", broken.URL + "/ws", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := awslive.NewSender(apigatewaymanagementapi.NewFromConfig(env.Config, func(o *apigatewaymanagementapi.Options) {
				o.BaseEndpoint = aws.String(tc.endpoint)
			}))
			err := s.Send(context.Background(), newConnectionID(), []byte(`{"event":"pong"}`))
			if (err != nil) != tc.wantErr || errors.Is(err, live.ErrGone) != tc.wantGone {
				t.Errorf("Send: %v; want error %v, gone %v", err, tc.wantErr, tc.wantGone)
			}
		})
	}
}

func TestNewRefusesBadEndpoints(t *testing.T) {
	for _, endpoint := range []string{"", "wss://abc.execute-api.us-east-1.amazonaws.com/ws", "abc.execute-api.us-east-1.amazonaws.com", "https://"} {
		if _, err := awslive.New(aws.Config{}, "table", endpoint, live.Hub{}); err == nil {
			t.Errorf("New accepted endpoint %q", endpoint)
		}
	}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newConnectionID makes an id shaped like API Gateway's ("L0SM9cOFvHcCIhw="), without
// '/' and '+': moto's route decodes an escaped '/' in the path and would not find it.
func newConnectionID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return strings.NewReplacer("/", "x", "+", "y").Replace(base64.StdEncoding.EncodeToString(b))
}

// writeGone answers as API Gateway does when posting to a closed connection.
func writeGone(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("x-amzn-ErrorType", "GoneException")
	w.WriteHeader(http.StatusGone)
	_, _ = io.WriteString(w, `{"message":null}`)
}

// gateway stands in for API Gateway's management endpoint (see TestConformance).
type gateway struct {
	*httptest.Server
	moto string

	mu       sync.Mutex
	received map[string]chan []byte
	isGone   map[string]bool
}

func newGateway(t *testing.T, moto string) *gateway {
	g := &gateway{moto: moto, received: map[string]chan []byte{}, isGone: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /@connections/{id}", g.post)
	g.Server = httptest.NewServer(mux)
	t.Cleanup(g.Close)
	return g
}

func (g *gateway) inbox(id string) chan []byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	ch, ok := g.received[id]
	if !ok {
		ch = make(chan []byte, 1024)
		g.received[id] = ch
	}
	return ch
}

func (g *gateway) gone(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.isGone[id] = true
}

func (g *gateway) post(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	g.mu.Lock()
	gone := g.isGone[id]
	g.mu.Unlock()
	if gone {
		writeGone(w)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// The request as signed, to moto: its answer is the answer.
	req, err := http.NewRequestWithContext(r.Context(), r.Method, g.moto+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	req.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		g.inbox(id) <- body
	}
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(answer)
}

// apiClient is one connection as API Gateway presents it to the function.
type apiClient struct {
	fn *awslive.Handler
	gw *gateway
	id string
}

func (c *apiClient) event(t testing.TB, eventType, route string, query url.Values, body string) events.APIGatewayProxyResponse {
	t.Helper()
	ev := events.APIGatewayWebsocketProxyRequest{
		Body: body,
		RequestContext: events.APIGatewayWebsocketProxyRequestContext{
			RouteKey: route, EventType: eventType, ConnectionID: c.id, Stage: "ws",
			ConnectedAt: time.Now().UnixMilli(), MessageDirection: "IN",
		},
	}
	if len(query) > 0 {
		ev.QueryStringParameters, ev.MultiValueQueryStringParameters = map[string]string{}, map[string][]string{}
		for k, vs := range query {
			ev.QueryStringParameters[k] = vs[len(vs)-1]
			ev.MultiValueQueryStringParameters[k] = vs
		}
	}
	resp, err := c.fn.Handle(context.Background(), ev)
	if err != nil {
		t.Fatalf("%s: %v", route, err)
	}
	return resp
}

func (c *apiClient) Send(t testing.TB, text string) {
	t.Helper()
	if resp := c.event(t, "MESSAGE", "$default", nil, text); resp.StatusCode != http.StatusOK {
		t.Fatalf("$default answered %d", resp.StatusCode)
	}
}

func (c *apiClient) Next(t testing.TB) []byte {
	t.Helper()
	select {
	case b := <-c.gw.inbox(c.id):
		return b
	case <-time.After(5 * time.Second):
		t.Fatalf("connection %s received nothing", c.id)
		return nil
	}
}

func (c *apiClient) Close(t testing.TB) { c.event(t, "DISCONNECT", "$disconnect", nil, "") }
