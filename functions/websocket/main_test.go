package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/runnerhub/webhooks/internal/live"
	"github.com/runnerhub/webhooks/internal/testenv"
)

// TestWebSocketFunction runs the built bootstrap under aws-lambda-rie against moto with
// the WebSocket events in events/, in a connection's order: a refused $connect, then
// $connect, subscribe and $disconnect of one connection, checking its record in the
// table after each. Replies are posted to moto's apigatewaymanagementapi (at moto's
// root, as RUNNERHUB_WS_ENDPOINT says); what they say is the conformance suite's
// business (internal/live/awslive).
func TestWebSocketFunction(t *testing.T) {
	env := testenv.StartAWS(t)
	fn := startWebSocket(t, env)
	db := dynamodb.NewFromConfig(env.Config)

	steps := []struct {
		file   string
		status int
		// check looks at the connection's record afterwards (nil: none may exist).
		check func(t *testing.T, item map[string]ddbtypes.AttributeValue)
		// room is whether the subscription's item in the codertocat/hello-world room exists.
		room bool
	}{
		{"ws-connect-unauthorized.json", http.StatusUnauthorized, nil, false},
		{"ws-connect.json", http.StatusOK, func(t *testing.T, item map[string]ddbtypes.AttributeValue) {
			expires, _ := strconv.ParseInt(testenv.NumberAttr(item, "expiresAt"), 10, 64)
			connected, err := time.Parse(time.RFC3339, testenv.StringAttr(item, "connectedAt"))
			// expiresAt is in whole seconds (a TTL attribute), connectedAt in milliseconds.
			if ttl := time.Unix(expires, 0).Sub(connected); err != nil || ttl > live.ConnectionTTL || ttl <= live.ConnectionTTL-time.Second {
				t.Errorf("connectedAt %q, expiresAt %d: want the expiry %v after the connection", testenv.StringAttr(item, "connectedAt"), expires, live.ConnectionTTL)
			}
			if testenv.StringAttr(item, "role") != "admin" {
				t.Errorf("role %q, want admin (RUNNERHUB_API_TOKENS)", testenv.StringAttr(item, "role"))
			}
			if testenv.StringAttr(item, "gsi1pk") != "WSCONNS" || item["repos"] != nil {
				t.Errorf("item %v: want it in the WSCONNS partition, subscribed to nothing", item)
			}
		}, false},
		{"ws-subscribe.json", http.StatusOK, func(t *testing.T, item map[string]ddbtypes.AttributeValue) {
			repos, _ := item["repos"].(*ddbtypes.AttributeValueMemberSS)
			if repos == nil || !slices.Equal(repos.Value, []string{"codertocat/hello-world"}) {
				t.Errorf("repos %v, want [codertocat/hello-world]", item["repos"])
			}
		}, true},
		{"ws-disconnect.json", http.StatusOK, nil, false},
	}
	for _, s := range steps {
		t.Run(s.file, func(t *testing.T) {
			payload := testenv.ReadEvent(t, s.file)
			var ev events.APIGatewayWebsocketProxyRequest
			if err := json.Unmarshal(payload, &ev); err != nil {
				t.Fatal(err)
			}
			var resp events.APIGatewayProxyResponse
			if err := json.Unmarshal(fn.Invoke(t, payload), &resp); err != nil {
				t.Fatalf("the response is not an API Gateway proxy response: %v", err)
			}
			if resp.StatusCode != s.status {
				t.Errorf("status %d, want %d", resp.StatusCode, s.status)
			}
			item := connectionItem(t, db, env.EventsTable, ev.RequestContext.ConnectionID)
			switch {
			case s.check == nil && item != nil:
				t.Errorf("connection %s is recorded: %v", ev.RequestContext.ConnectionID, item)
			case s.check != nil && item == nil:
				t.Fatalf("connection %s is not recorded", ev.RequestContext.ConnectionID)
			case s.check != nil:
				s.check(t, item)
			}
			// The fan-out finds the room's subscribers in its byTime partition.
			room := testenv.GetItem(t, db, env.EventsTable, "WSCONN#"+ev.RequestContext.ConnectionID, "ROOM#codertocat/hello-world")
			if got := testenv.StringAttr(room, "gsi1pk") == "WSROOM#codertocat/hello-world"; got != s.room {
				t.Errorf("subscription item %v; want it in the room's partition: %v", room, s.room)
			}
		})
	}
}

// TestWebSocketFunctionReadRole connects through the built bootstrap with a read-only
// token and with a ticket minted for it: both are let in, and recorded with the read
// role.
func TestWebSocketFunctionReadRole(t *testing.T) {
	const readToken = "rh_websocket-read-token-0123456789"
	env := testenv.SharedAWS(t)
	fn := startWebSocket(t, env, "RUNNERHUB_API_READ_TOKENS="+readToken)
	// The function derives the same ticket keys from the same configuration.
	ticket, _, err := live.NewTickets(testenv.EventsAPIToken, readToken).Issue(readToken, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	payload := testenv.ReadEvent(t, "ws-connect.json")
	db := dynamodb.NewFromConfig(env.Config)
	for _, tc := range []struct {
		name  string
		query map[string]string
	}{
		{"read token", map[string]string{"token": readToken}},
		{"ticket of a read token", map[string]string{"ticket": ticket}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ev events.APIGatewayWebsocketProxyRequest
			if err := json.Unmarshal(payload, &ev); err != nil {
				t.Fatal(err)
			}
			ev.RequestContext.ConnectionID = "read-" + strconv.Itoa(len(tc.query["ticket"]))
			ev.QueryStringParameters, ev.MultiValueQueryStringParameters = tc.query, nil
			b, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			var resp events.APIGatewayProxyResponse
			if err := json.Unmarshal(fn.Invoke(t, b), &resp); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("$connect: %+v %v, want 200", resp, err)
			}
			if item := connectionItem(t, db, env.EventsTable, ev.RequestContext.ConnectionID); testenv.StringAttr(item, "role") != "read" {
				t.Errorf("record %v, want role read", item)
			}
		})
	}
}

func connectionItem(t *testing.T, db *dynamodb.Client, table, id string) map[string]ddbtypes.AttributeValue {
	t.Helper()
	return testenv.GetItem(t, db, table, "WSCONN#"+id, "WSCONN")
}

// startWebSocket starts the built WebSocketFunction on env's resources, with the events'
// API token, posting to moto's root, and the variables in extra.
func startWebSocket(t *testing.T, env *testenv.AWS, extra ...string) *testenv.Lambda {
	return testenv.StartFunction(t, "WebSocketFunction", append(env.Env(), append([]string{
		"RUNNERHUB_API_TOKENS=" + testenv.EventsAPIToken,
		"RUNNERHUB_WS_ENDPOINT=" + env.Endpoint,
	}, extra...)...))
}
