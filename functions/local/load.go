package main

import (
	"context"
	"flag"
	"os"
	"time"

	"github.com/runnerhub/webhooks/internal/config"
	"github.com/runnerhub/webhooks/internal/localstack"
)

// load runs the load test: the bare HMAC-only handler and the local stack under the same
// deliveries, or with -rate the local stack alone at a steady pace.
func load(ctx context.Context, cfg config.Config, args []string) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	file := fs.String("file", "testdata/workflow_job.queued.json", "the delivery to send, again and again under new delivery ids")
	opts := localstack.LoadOptions{Out: os.Stdout}
	fs.IntVar(&opts.Connections, "connections", 32, "concurrent keep-alive connections")
	fs.IntVar(&opts.Count, "count", 20000, "deliveries per round and server")
	fs.IntVar(&opts.Rounds, "rounds", 3, "rounds, each the bare handler then the local stack")
	fs.Float64Var(&opts.Rate, "rate", 0, "deliveries per second to the local stack alone (latency mode); 0: as fast as answered")
	fs.DurationVar(&opts.Duration, "duration", 30*time.Second, "how long -rate lasts")
	fs.DurationVar(&opts.Timeout, "timeout", 5*time.Minute, "bound on the whole run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	body, err := os.ReadFile(*file)
	if err != nil {
		return err
	}
	opts.Body, opts.Event = body, localstack.EventFromFile(*file)
	_, err = localstack.Load(ctx, cfg, opts)
	return err
}
