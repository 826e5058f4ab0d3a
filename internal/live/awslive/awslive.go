// Package awslive runs RunnerHub's live updates on AWS: connection records in the
// events table (Registry), messages through API Gateway's management API
// (apigatewaymanagementapi PostToConnection, Sender), and the WebSocketFunction's
// handler for the WebSocket API's $connect, $disconnect and $default routes. The
// protocol and the fan-out are live.Hub's, exactly as in the local stack.
//
// Fan-out runs in the FanoutFunction (FanoutHandler), behind the post-commit event: the
// processor and the ApiFunction only send each commit's announcement to FanoutQueue
// (Outbox), and the FanoutFunction delivers each SQS batch in one run of the Hub's
// fan-out, one post per connection, finding the connections by room (Registry.Audience).
// A commit therefore costs one SendMessage whatever the number of dashboards, and the
// posts no longer share the processor's time (see the README's "Live updates").
package awslive

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/runnerhub/webhooks/internal/live"
)

// New returns h with the DynamoDB Registry on table and the management API Sender on
// endpoint (https://{apiId}.execute-api.{region}.amazonaws.com/{stage}; an emulator's
// URL such as moto's has no stage).
func New(cfg aws.Config, table, endpoint string, h live.Hub) (*live.Hub, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("RUNNERHUB_WS_ENDPOINT=%q: want the WebSocket API's https://{apiId}.execute-api.{region}.amazonaws.com/{stage}", endpoint)
	}
	h.Registry = NewRegistry(dynamodb.NewFromConfig(cfg), table)
	h.Sender = NewSender(apigatewaymanagementapi.NewFromConfig(cfg, func(o *apigatewaymanagementapi.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		// A fan-out run serves a whole batch within the function's timeout: one retry at most.
		o.RetryMaxAttempts = 2
	}))
	return &h, nil
}

// Sender posts messages with PostToConnection.
type Sender struct {
	client *apigatewaymanagementapi.Client
}

var _ live.Sender = (*Sender)(nil)

// NewSender returns a Sender using client, whose endpoint is the WebSocket API stage's.
func NewSender(client *apigatewaymanagementapi.Client) *Sender { return &Sender{client: client} }

// Send implements live.Sender. API Gateway answers 410 GoneException for a connection
// that has closed (whether or not $disconnect ran); any 410 counts as gone.
func (s *Sender) Send(ctx context.Context, id string, data []byte) error {
	_, err := s.client.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: &id, Data: data})
	if err == nil {
		return nil
	}
	var gone *types.GoneException
	var resp *awshttp.ResponseError
	if errors.As(err, &gone) || (errors.As(err, &resp) && resp.HTTPStatusCode() == http.StatusGone) {
		return fmt.Errorf("%w: %v", live.ErrGone, err)
	}
	return err
}
