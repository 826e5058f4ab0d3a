// Package apitest holds what the management API tests share: the stores they run
// against, the count of DynamoDB requests that proves a read is bounded, and the answer
// envelope.
package apitest

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"

	"github.com/runnerhub/webhooks/internal/httpjson"
	"github.com/runnerhub/webhooks/internal/storage/awsstore"
	"github.com/runnerhub/webhooks/internal/testenv"
)

// ForEachStore runs f in parallel subtests on an env built on the embedded store
// ("embedded") and on one built on DynamoDB on moto ("dynamodb"), so that both adapters
// answer alike. The subtests wait on moto, not on the CPU.
func ForEachStore[E any](t *testing.T, onEmbedded, onDynamoDB func(t *testing.T) E, f func(t *testing.T, e E)) {
	t.Run("embedded", func(t *testing.T) {
		t.Parallel()
		f(t, onEmbedded(t))
	})
	t.Run("dynamodb", func(t *testing.T) {
		t.Parallel()
		f(t, onDynamoDB(t))
	})
}

// AWSStore is the store on a's table and bucket, with a counter of its DynamoDB
// requests.
func AWSStore(a *testenv.AWS, retention time.Duration) (*awsstore.Store, *RequestCounter) {
	counter := &RequestCounter{}
	db := a.DynamoDB(testenv.AroundEachAttempt("countRequests", counter.count))
	s3c := a.S3()
	return awsstore.NewStore(db, s3c, a.EventsTable, a.PayloadBucket, retention), counter
}

// RequestCounter counts DynamoDB requests (attempts, retries included) by operation.
type RequestCounter struct {
	mu   sync.Mutex
	byOp map[string]int
}

func (c *RequestCounter) count(ctx context.Context, send func() error) error {
	c.mu.Lock()
	if c.byOp == nil {
		c.byOp = map[string]int{}
	}
	c.byOp[awsmiddleware.GetOperationName(ctx)]++
	c.mu.Unlock()
	return send()
}

// During returns the requests f made, by operation: the difference of the counts
// before and after, so the totals stay whole.
func (c *RequestCounter) During(f func()) map[string]int {
	c.mu.Lock()
	before := make(map[string]int, len(c.byOp))
	for k, v := range c.byOp {
		before[k] = v
	}
	c.mu.Unlock()
	f()
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.byOp {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// Envelope is an answer's JSON envelope as a client decodes it, success or failure; the
// data stays raw for the test to decode into what it expects.
type Envelope struct {
	Success bool               `json:"success"`
	Data    json.RawMessage    `json:"data"`
	Error   httpjson.ErrorBody `json:"error"`
}
