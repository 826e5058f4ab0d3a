package awslive

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/aws/aws-lambda-go/events"

	"github.com/runnerhub/webhooks/internal/auth"
	"github.com/runnerhub/webhooks/internal/live"
)

// Handler is the WebSocketFunction: API Gateway invokes it for $connect (authorise and
// record the connection), $disconnect (forget it) and $default (every client message).
type Handler struct {
	Hub *live.Hub
	Log *slog.Logger
}

// Handle serves one WebSocket API event. Only $connect's status code reaches the
// client (as the handshake's answer); the others' replies are posted to the connection.
func (h *Handler) Handle(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	rc := ev.RequestContext
	log := h.Log.With("connection_id", rc.ConnectionID, "route", rc.RouteKey)
	switch rc.EventType {
	case "CONNECT":
		role := h.Hub.Role(query(ev))
		if role == auth.RoleNone {
			log.InfoContext(ctx, "WebSocket connection refused: no valid token or ticket")
			return answer(http.StatusUnauthorized), nil
		}
		// The expiry runs from now, not from the event's connectedAt: they are the same
		// moment in API Gateway, and a replayed event (sam local invoke, make invoke)
		// still makes a usable record.
		if err := h.Hub.Connect(ctx, live.Connection{ID: rc.ConnectionID, Role: role}); err != nil {
			log.ErrorContext(ctx, "recording a WebSocket connection failed", "error", err)
			return answer(http.StatusInternalServerError), nil
		}
	case "DISCONNECT":
		// Not guaranteed to run: records expire on their own, and a 410 forgets them.
		if err := h.Hub.Disconnect(ctx, rc.ConnectionID); err != nil {
			log.ErrorContext(ctx, "forgetting a WebSocket connection failed", "error", err)
		}
	case "MESSAGE":
		if err := h.Hub.HandleMessage(ctx, rc.ConnectionID, []byte(ev.Body)); err != nil && !errors.Is(err, live.ErrGone) {
			log.ErrorContext(ctx, "answering a WebSocket message failed", "error", err)
		}
	default:
		log.WarnContext(ctx, "unexpected WebSocket event", "event_type", rc.EventType)
		return answer(http.StatusBadRequest), nil
	}
	return answer(http.StatusOK), nil
}

func answer(status int) events.APIGatewayProxyResponse {
	return events.APIGatewayProxyResponse{StatusCode: status}
}

// query returns the $connect request's query parameters.
func query(ev events.APIGatewayWebsocketProxyRequest) url.Values {
	q := url.Values{}
	for k, vs := range ev.MultiValueQueryStringParameters {
		q[k] = vs
	}
	for k, v := range ev.QueryStringParameters {
		if _, ok := q[k]; !ok {
			q.Set(k, v)
		}
	}
	return q
}
