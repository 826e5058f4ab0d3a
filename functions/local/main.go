// Command local runs the whole RunnerHub stack in one process (make run), and with its
// subcommands posts signed deliveries to it and plays a demo against it:
//
//	go run ./functions/local
//	go run ./functions/local send testdata/workflow_job.queued.json
//	go run ./functions/local demo
//	go run ./functions/local backup runnerhub-backup.db
//	go run ./functions/local replay-dlq   # AWS: move the events DLQ back to the events queue
//	go run ./functions/local recount-pools # AWS: rebuild the pools' counts (once, after upgrading)
//	go run ./functions/local load         # measure durable ingest against a bare handler (make load)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/runnerhub/webhooks/internal/config"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/logging"
	"github.com/runnerhub/webhooks/internal/standalone"
	"github.com/runnerhub/webhooks/internal/storage/awsstore"
)

func main() {
	cmd := append(os.Args[1:], "")[0]
	switch cmd {
	case "-h", "-help", "--help", "help":
		fmt.Print(standalone.Usage)
		return
	}
	cfg, err := config.FromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch cmd {
	case "send":
		err = standalone.SendCommand(ctx, cfg, os.Args[2:], os.Stdout, os.Stderr)
	case "demo":
		err = standalone.DemoCommand(ctx, cfg, os.Args[2:], os.Stdout, os.Stderr)
	case "replay-dlq":
		err = replayDLQ(ctx, cfg)
	case "recount-pools":
		err = recountPools(ctx, cfg)
	case "load":
		err = standalone.LoadCommand(ctx, cfg, os.Args[2:], os.Stdout, os.Stderr)
	case "backup":
		err = standalone.BackupCommand(ctx, cfg, os.Args[2:], os.Stdout, os.Stderr)
	case "", "run":
		err = serve(ctx, cfg)
	default:
		fmt.Fprint(os.Stderr, standalone.Usage)
		err = fmt.Errorf("unknown command %q", cmd)
	}
	switch {
	case errors.Is(err, flag.ErrHelp): // the usage asked for is printed
	case err != nil:
		fmt.Fprintln(os.Stderr, "runnerhub:", err)
		os.Exit(1)
	}
}

func serve(ctx context.Context, cfg config.Config) error {
	// The port first: a start that cannot listen must not create a data directory, a
	// database or a secret.
	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", cfg.Port))
	if err != nil {
		return fmt.Errorf("cannot listen on port %d (set PORT to use another): %w", cfg.Port, err)
	}
	defer ln.Close()
	log := logging.New(os.Stderr, false, cfg.LogLevel)
	stack, err := standalone.Open(cfg, log)
	if err != nil {
		return err
	}
	defer stack.Close()
	fmt.Print(stack.Banner(cfg, ln.Addr().(*net.TCPAddr).Port))
	return stack.Serve(ctx, ln)
}

// replayDLQ drains the deployed stack's dead-letter queue back into its events queue.
func replayDLQ(ctx context.Context, cfg config.Config) error {
	if err := cfg.RequireAWS("RUNNERHUB_EVENTS_QUEUE_URL", "RUNNERHUB_EVENTS_DLQ_URL"); err != nil {
		return err
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return err
	}
	n, err := awsstore.ReplayDLQ(ctx, sqs.NewFromConfig(awsCfg), cfg.EventsDLQURL, cfg.EventsQueueURL)
	fmt.Printf("replayed %d message(s) from the DLQ\n", n)
	return err
}

// recountPools rebuilds the deployed table's pool counts from its runners and pending
// queues (jobs.Engine.Recount, awsstore.Store.SetPoolCounts): for a table written before
// the counts existed. Run it once, with processing and the API stopped.
func recountPools(ctx context.Context, cfg config.Config) error {
	if err := cfg.RequireAWS("RUNNERHUB_EVENTS_TABLE"); err != nil {
		return err
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return err
	}
	store := awsstore.NewStore(dynamodb.NewFromConfig(awsCfg), nil, cfg.EventsTable, cfg.PayloadBucket, cfg.Retention)
	counts, err := (&jobs.Engine{Store: store, Pools: cfg.Pools}).Recount(ctx)
	if err != nil {
		return err
	}
	if err := store.SetPoolCounts(ctx, counts); err != nil {
		return err
	}
	for _, c := range counts {
		fmt.Printf("%s: idle %d, reserved %d, busy %d, starting %d, pending %d\n", c.Pool, c.Idle, c.Reserved, c.Busy, c.Starting, c.Pending)
	}
	return nil
}
