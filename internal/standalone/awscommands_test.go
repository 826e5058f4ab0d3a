package standalone

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/storage/awsstore"
	"github.com/runnerhub/webhooks/internal/testenv"
)

// The AWS subcommands act on the deployed resources the configuration names, through the
// AWS SDK's default configuration (here AWS_ENDPOINT_URL pointing at moto), and print
// what they did.
func TestAWSCommands(t *testing.T) {
	a := testenv.StartAWS(t)
	env := map[string]string{"RUNNERHUB_POOLS": `[{"name": "linux", "labels": ["linux"], "maxRunners": 2}]`}
	for _, kv := range a.Env() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
		t.Setenv(k, v)
	}
	cfg := testConfig(t, t.TempDir(), env)
	queues := sqs.NewFromConfig(a.Config)
	store := awsstore.NewStore(a.DynamoDB(), a.S3(), a.EventsTable, a.PayloadBucket, cfg.Retention)
	for _, tc := range []struct {
		name    string
		seed    func(context.Context) error
		command func(context.Context, *strings.Builder) error
		out     string
		check   func(context.Context) error
	}{{
		name: "replay-dlq",
		seed: func(ctx context.Context) error {
			for _, id := range []string{"dead-1", "dead-2"} {
				if err := awsstore.NewQueue(queues, a.EventsDLQURL).Enqueue(ctx, delivery.Message{Key: delivery.Key{HookID: "1", DeliveryID: id}, Event: "ping"}); err != nil {
					return err
				}
			}
			return nil
		},
		command: func(ctx context.Context, out *strings.Builder) error { return ReplayDLQCommand(ctx, cfg, out) },
		out:     "replayed 2 message(s) from the DLQ\n",
		check: func(context.Context) error {
			if got := testenv.ReceiveAll(t, queues, a.EventsQueueURL); len(got) != 2 {
				return fmt.Errorf("the events queue holds %d messages, want the 2 replayed", len(got))
			}
			return nil
		},
	}, {
		name: "recount-pools",
		// A table from before the counts: a runner, no count.
		seed: func(ctx context.Context) error {
			return store.Commit(ctx, &jobs.Change{Runners: []*jobs.Runner{{Name: "l-1", Pool: "linux", State: jobs.RunnerIdle, LastSeen: time.Now()}}})
		},
		command: func(ctx context.Context, out *strings.Builder) error { return RecountPoolsCommand(ctx, cfg, out) },
		out:     "linux: idle 1, reserved 0, busy 0, starting 0, pending 0\n",
		check: func(ctx context.Context) error {
			counts, err := store.PoolCounts(ctx, []string{"linux"})
			if err != nil || fmt.Sprint(counts) != fmt.Sprint([]jobs.PoolCounts{{Pool: "linux", Idle: 1}}) {
				return fmt.Errorf("stored counts %+v, %v; want linux idle 1", counts, err)
			}
			return nil
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			if err := tc.seed(ctx); err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			if err := tc.command(ctx, &out); err != nil {
				t.Fatalf("%s: %v\n%s", tc.name, err, &out)
			}
			if out.String() != tc.out {
				t.Errorf("output %q, want %q", out.String(), tc.out)
			}
			if err := tc.check(ctx); err != nil {
				t.Error(err)
			}
		})
	}
}
