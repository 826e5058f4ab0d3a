package testenv

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// The WebSocketFunction's events in events/: one connection's life as API Gateway's
// WebSocket API hands it to Lambda, plus a connection refused for want of a token.
const (
	wsAPIID      = "wxyz987654"
	wsDomain     = wsAPIID + ".execute-api.us-east-1.amazonaws.com"
	wsStage      = "ws"
	wsClientIP   = "203.0.113.10" // documentation range
	wsUserAgent  = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
	wsOrigin     = "https://runnerhub.example.com"
	wsSubscribe  = `{"action":"subscribe","repositories":["Codertocat/Hello-World"]}`
	wsConnection = "connection"
)

// wsConnectAt is when the connection opens: after every webhook event.
var wsConnectAt = firstDelivery.Add(2 * time.Hour)

// wsEvent is an API Gateway WebSocket proxy event with the members API Gateway sends
// for its route.
type wsEvent struct {
	Headers                         map[string]string   `json:"headers,omitempty"`
	MultiValueHeaders               map[string][]string `json:"multiValueHeaders,omitempty"`
	QueryStringParameters           map[string]string   `json:"queryStringParameters,omitempty"`
	MultiValueQueryStringParameters map[string][]string `json:"multiValueQueryStringParameters,omitempty"`
	RequestContext                  wsContext           `json:"requestContext"`
	Body                            *string             `json:"body,omitempty"`
	IsBase64Encoded                 bool                `json:"isBase64Encoded"`
}

type wsContext struct {
	RouteKey             string     `json:"routeKey"`
	MessageID            string     `json:"messageId,omitempty"`
	DisconnectStatusCode int        `json:"disconnectStatusCode,omitempty"`
	EventType            string     `json:"eventType"`
	ExtendedRequestID    string     `json:"extendedRequestId"`
	RequestTime          string     `json:"requestTime"`
	MessageDirection     string     `json:"messageDirection"`
	DisconnectReason     *string    `json:"disconnectReason,omitempty"`
	Stage                string     `json:"stage"`
	ConnectedAt          int64      `json:"connectedAt"`
	RequestTimeEpoch     int64      `json:"requestTimeEpoch"`
	Identity             wsIdentity `json:"identity"`
	RequestID            string     `json:"requestId"`
	DomainName           string     `json:"domainName"`
	ConnectionID         string     `json:"connectionId"`
	APIID                string     `json:"apiId"`
}

type wsIdentity struct {
	SourceIP  string `json:"sourceIp"`
	UserAgent string `json:"userAgent"`
}

// connectionIDFor returns an id shaped like API Gateway's ("L0SM9cOFvHcCIhw=").
func connectionIDFor(seed string) string {
	id := base64.StdEncoding.EncodeToString(digest("connection " + seed)[:10])
	return strings.NewReplacer("/", "A", "+", "B").Replace(id)
}

// wsBase is the part of every event of connection seed, received at.
func wsBase(seed, file, route, eventType string, at time.Time) wsEvent {
	return wsEvent{RequestContext: wsContext{
		RouteKey: route, EventType: eventType, MessageDirection: "IN", Stage: wsStage,
		ExtendedRequestID: requestIDFor(file), RequestID: requestIDFor(file),
		RequestTime: at.Format(timeLayout), RequestTimeEpoch: at.UnixMilli(),
		ConnectedAt: wsConnectAt.UnixMilli(), DomainName: wsDomain, APIID: wsAPIID,
		ConnectionID: connectionIDFor(seed), Identity: wsIdentity{SourceIP: wsClientIP, UserAgent: wsUserAgent},
	}}
}

// wsHandshake adds the $connect request's headers and query.
func wsHandshake(ev *wsEvent, file string, query map[string]string) {
	ev.Headers = map[string]string{
		"Host":                     wsDomain,
		"Origin":                   wsOrigin,
		"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits",
		"Sec-WebSocket-Key":        base64.StdEncoding.EncodeToString(digest("key " + file)[:16]),
		"Sec-WebSocket-Version":    "13",
		"User-Agent":               wsUserAgent,
		"X-Amzn-Trace-Id":          traceIDFor(file, time.UnixMilli(ev.RequestContext.RequestTimeEpoch)),
		"X-Forwarded-For":          wsClientIP,
		"X-Forwarded-Port":         "443",
		"X-Forwarded-Proto":        "https",
	}
	ev.MultiValueHeaders = map[string][]string{}
	for k, v := range ev.Headers {
		ev.MultiValueHeaders[k] = []string{v}
	}
	if len(query) > 0 {
		ev.QueryStringParameters, ev.MultiValueQueryStringParameters = query, map[string][]string{}
		for k, v := range query {
			ev.MultiValueQueryStringParameters[k] = []string{v}
		}
	}
}

func generateWebSocketEvents(t *testing.T) map[string][]byte {
	connect := wsBase(wsConnection, "ws-connect.json", "$connect", "CONNECT", wsConnectAt)
	wsHandshake(&connect, "ws-connect.json", map[string]string{"token": EventsAPIToken})

	refused := wsBase("refused", "ws-connect-unauthorized.json", "$connect", "CONNECT", wsConnectAt)
	wsHandshake(&refused, "ws-connect-unauthorized.json", nil)

	subscribe := wsBase(wsConnection, "ws-subscribe.json", "$default", "MESSAGE", wsConnectAt.Add(time.Second))
	subscribe.RequestContext.MessageID = requestIDFor("message ws-subscribe.json")
	body := wsSubscribe
	subscribe.Body = &body

	disconnectAt := wsConnectAt.Add(10 * time.Minute)
	disconnect := wsBase(wsConnection, "ws-disconnect.json", "$disconnect", "DISCONNECT", disconnectAt)
	disconnect.Headers = map[string]string{"Host": wsDomain, "x-api-key": "", "X-Forwarded-For": "", "x-restapi": ""}
	disconnect.MultiValueHeaders = map[string][]string{"Host": {wsDomain}, "x-api-key": {""}, "X-Forwarded-For": {""}, "x-restapi": {""}}
	disconnect.RequestContext.DisconnectStatusCode = 1000 // the client closed normally
	reason := ""
	disconnect.RequestContext.DisconnectReason = &reason

	return map[string][]byte{
		"ws-connect.json":              encodeEvent(t, connect),
		"ws-connect-unauthorized.json": encodeEvent(t, refused),
		"ws-subscribe.json":            encodeEvent(t, subscribe),
		"ws-disconnect.json":           encodeEvent(t, disconnect),
	}
}
