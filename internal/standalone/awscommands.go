package standalone

import (
	"context"
	"fmt"
	"io"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/runnerhub/webhooks/internal/config"
	"github.com/runnerhub/webhooks/internal/storage/awsstore"
)

// The local command's AWS subcommands: they act on the deployed stack that cfg names
// (RUNNERHUB_EVENTS_*), with the AWS SDK's default configuration, not on the local one.

// ReplayDLQCommand is `replay-dlq`: it drains the deployed stack's dead-letter queue
// back into its events queue and says how many messages it moved.
func ReplayDLQCommand(ctx context.Context, cfg config.Config, out io.Writer) error {
	if err := cfg.RequireAWS("RUNNERHUB_EVENTS_QUEUE_URL", "RUNNERHUB_EVENTS_DLQ_URL"); err != nil {
		return err
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return err
	}
	n, err := awsstore.ReplayDLQ(ctx, sqs.NewFromConfig(awsCfg), cfg.EventsDLQURL, cfg.EventsQueueURL)
	fmt.Fprintf(out, "replayed %d message(s) from the DLQ\n", n)
	return err
}

// RecountPoolsCommand is `recount-pools`: it rebuilds the deployed table's pool counts
// from its runners and pending queues (jobs.Engine.Recount, awsstore.Store.SetPoolCounts),
// for a table written before the counts existed, and prints them. Run it once, with
// processing and the API stopped.
func RecountPoolsCommand(ctx context.Context, cfg config.Config, out io.Writer) error {
	if err := cfg.RequireAWS("RUNNERHUB_EVENTS_TABLE"); err != nil {
		return err
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return err
	}
	store := awsstore.NewStore(dynamodb.NewFromConfig(awsCfg), nil, cfg.EventsTable, cfg.PayloadBucket, cfg.Retention)
	counts, err := cfg.Engine(store, nil).Recount(ctx) // a recount reads no delivery
	if err != nil {
		return err
	}
	if err := store.SetPoolCounts(ctx, counts); err != nil {
		return err
	}
	for _, c := range counts {
		fmt.Fprintf(out, "%s: idle %d, reserved %d, busy %d, starting %d, pending %d\n", c.Pool, c.Idle, c.Reserved, c.Busy, c.Starting, c.Pending)
	}
	return nil
}
