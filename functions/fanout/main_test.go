package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/live"
	"github.com/runnerhub/webhooks/internal/live/awslive"
	"github.com/runnerhub/webhooks/internal/storage/awsstore"
	"github.com/runnerhub/webhooks/internal/testenv"
)

const batchFile = "fanout-sqs.json"

// gateway stands in for the WebSocket API's management endpoint: it keeps what each
// connection is posted and answers 410 GoneException for the connection named gone, as
// API Gateway does for a closed one (moto never does).
type gateway struct {
	*httptest.Server
	mu    sync.Mutex
	posts map[string][][]byte
}

const goneConnection = "gone"

func newGateway(t *testing.T) *gateway {
	g := &gateway{posts: map[string][][]byte{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /@connections/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		body, _ := io.ReadAll(r.Body)
		g.mu.Lock()
		g.posts[id] = append(g.posts[id], body)
		g.mu.Unlock()
		if id == goneConnection {
			w.Header().Set("x-amzn-ErrorType", "GoneException")
			w.WriteHeader(http.StatusGone)
			_, _ = io.WriteString(w, `{"message":null}`)
		}
	})
	g.Server = httptest.NewServer(mux)
	t.Cleanup(g.Close)
	return g
}

func (g *gateway) postsTo(id string) [][]byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.posts[id]
}

// TestFanoutFunction runs the built bootstrap under aws-lambda-rie against moto with
// events/fanout-sqs.json: connections recorded in the template's table as the
// WebSocketFunction records them, each must get the batch's messages it wants in one
// post, in commit order, with the pool's exact counts as the table holds them (past the
// 100 the index reads once stopped at); the record cut short is dropped, not retried; a
// connection API Gateway calls gone is forgotten.
func TestFanoutFunction(t *testing.T) {
	testenv.RequireEventsCovered(t, "fanout-*.json", []string{batchFile})
	env := testenv.SharedAWS(t)
	gw := newGateway(t)
	fn := testenv.StartFunction(t, "FanoutFunction", append(env.Env(), "RUNNERHUB_WS_ENDPOINT="+gw.URL))

	registry := awslive.NewRegistry(env.DynamoDB(), env.EventsTable)
	ctx := context.Background()
	// The pool's counts, as the commits before this batch (the queued job's among them)
	// left them.
	const pendingJobs, idleRunners = 150, 120
	store := awsstore.NewStore(env.DynamoDB(), env.S3(), env.EventsTable, env.PayloadBucket, 24*time.Hour)
	if err := store.SetPoolCounts(ctx, []jobs.PoolCounts{{Pool: testenv.FanoutPool, Pending: pendingJobs, Idle: idleRunners}}); err != nil {
		t.Fatal(err)
	}
	connected := time.Now().UTC().Add(-time.Minute) // past the grace of a connection being made
	for id, repos := range map[string][]string{
		"room": {"codertocat/hello-world"}, "all": nil, "other": {"octo-org/other"}, "idle": {}, goneConnection: nil,
	} {
		c := live.Connection{ID: id, ConnectedAt: connected, ExpiresAt: connected.Add(live.ConnectionTTL)}
		c.All, c.Repositories = repos == nil, repos
		if len(repos) == 0 {
			c.Repositories = nil
		}
		if err := registry.Put(ctx, c); err != nil {
			t.Fatal(err)
		}
	}

	if failed := fn.InvokeSQS(t, testenv.ReadEvent(t, batchFile)); len(failed) != 0 {
		t.Errorf("batchItemFailures %v, want none: the record cut short is dropped, the others delivered", failed)
	}

	const room = "repo:Codertocat/Hello-World"
	everything := []string{"workflow-job@" + room, "webhook-event@" + room, "pool-status@", "push-event@" + room, "webhook-event@" + room, "pool-status@"}
	for _, tc := range []struct {
		id   string
		want []string // event@room, in one post
	}{
		{"room", everything},
		{"all", everything},
		{"other", []string{"pool-status@", "pool-status@"}},
		{"idle", nil},
	} {
		t.Run(tc.id, func(t *testing.T) {
			posts := gw.postsTo(tc.id)
			if tc.want == nil {
				if len(posts) != 0 {
					t.Fatalf("received %d posts, want none", len(posts))
				}
				return
			}
			if len(posts) != 1 {
				t.Fatalf("received %d posts, want the batch in one", len(posts))
			}
			var msgs []struct {
				Event string `json:"event"`
				Room  string `json:"room"`
				Data  struct {
					Pool    string `json:"pool"`
					Pending *int   `json:"pending"`
					Idle    *int   `json:"idle"`
					Jobs    []struct {
						ID int64 `json:"id"`
					} `json:"jobs"`
				} `json:"data"`
			}
			if err := json.Unmarshal(posts[0], &msgs); err != nil {
				t.Fatalf("post %s is not a JSON array of messages: %v", posts[0], err)
			}
			var got []string
			var counts []string
			for _, m := range msgs {
				got = append(got, m.Event+"@"+m.Room)
				if m.Event == live.EventPoolStatus {
					if m.Data.Pool != testenv.FanoutPool || m.Data.Pending == nil || m.Data.Idle == nil {
						t.Errorf("pool-status %+v, want pool %s with counts", m.Data, testenv.FanoutPool)
						continue
					}
					counts = append(counts, fmt.Sprintf("%d/%d", *m.Data.Pending, *m.Data.Idle))
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("received %v, want %v", got, tc.want)
			}
			// Both pool-status messages of the run carry the counts read when it ran.
			exact := fmt.Sprintf("%d/%d", pendingJobs, idleRunners)
			if !slices.Equal(counts, []string{exact, exact}) {
				t.Errorf("pool-status pending/idle counts %v, want %s twice", counts, exact)
			}
		})
	}
	if posts := gw.postsTo(goneConnection); len(posts) != 1 {
		t.Errorf("the gone connection was posted %d times, want once", len(posts))
	}
	if item := testenv.GetItem(t, env.DynamoDB(), env.EventsTable, "WSCONN#"+goneConnection, "WSCONN"); item != nil {
		t.Errorf("the gone connection is still recorded: %v", item)
	}
}

// When the audience cannot be read, nothing is sent and every announcement is reported
// failed, to come again; the record cut short is still dropped.
func TestFanoutFunctionRetriesWhatItCouldNotSend(t *testing.T) {
	env := testenv.SharedAWS(t)
	gw := newGateway(t)
	fn := testenv.StartFunction(t, "FanoutFunction", append(env.Env(), "RUNNERHUB_WS_ENDPOINT="+gw.URL,
		"RUNNERHUB_EVENTS_TABLE=no-such-table")) // the last value of a variable counts
	payload := testenv.ReadEvent(t, batchFile)
	var batch events.SQSEvent
	if err := json.Unmarshal(payload, &batch); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, r := range batch.Records {
		if json.Valid([]byte(r.Body)) {
			want = append(want, r.MessageId)
		}
	}
	failed := fn.InvokeSQS(t, payload)
	if len(want) != 3 || !slices.Equal(failed, want) {
		t.Errorf("batchItemFailures %v, want the %d announcements %v", failed, len(want), want)
	}
}
