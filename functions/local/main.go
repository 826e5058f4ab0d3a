// Command local runs the whole RunnerHub stack in one process (make run), and with the
// send subcommand posts a signed test delivery to it:
//
//	go run ./functions/local
//	go run ./functions/local send testdata/workflow_job.queued.json
//	go run ./functions/local replay-dlq   # AWS: move the events DLQ back to the events queue
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/runnerhub/webhooks/internal/config"
	"github.com/runnerhub/webhooks/internal/ingest"
	"github.com/runnerhub/webhooks/internal/localstack"
	"github.com/runnerhub/webhooks/internal/logging"
	"github.com/runnerhub/webhooks/internal/storage/awsstore"
)

func main() {
	cfg, err := config.FromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch cmd := append(os.Args[1:], "")[0]; cmd {
	case "send":
		err = send(ctx, cfg, os.Args[2:])
	case "replay-dlq":
		err = replayDLQ(ctx, cfg)
	case "", "run":
		err = serve(ctx, cfg)
	default:
		err = fmt.Errorf("unknown command %q: want run, send or replay-dlq", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "runnerhub:", err)
		os.Exit(1)
	}
}

func serve(ctx context.Context, cfg config.Config) error {
	log := logging.New(os.Stderr, false, cfg.LogLevel)
	stack, err := localstack.Open(cfg, log)
	if err != nil {
		return err
	}
	defer stack.Close()
	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", cfg.Port))
	if err != nil {
		return err
	}
	base := fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port)
	token, dashboard := "from RUNNERHUB_API_TOKENS", base+"/"
	if stack.GeneratedToken != "" {
		token = stack.GeneratedToken + "  (generated for this run; set RUNNERHUB_API_TOKENS to keep one)"
		dashboard = base + "/#token=" + stack.GeneratedToken
	}
	fmt.Printf(`RunnerHub webhooks is running (data in %s).

  Webhook URL:  %s%s   (content type application/json or form)
  Secret:       %s
  Dashboard:    %s
  API token:    %s
  Metrics:      %s/metrics

Send a signed test delivery:
  go run ./functions/local send testdata/workflow_job.queued.json

Press Ctrl-C to stop.
`, cfg.DataDir, base, ingest.Path, stack.SecretSource, dashboard, token, base)
	return stack.Serve(ctx, ln)
}

func send(ctx context.Context, cfg config.Config, args []string) error {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	url := fs.String("url", fmt.Sprintf("http://localhost:%d%s", cfg.Port, ingest.Path), "webhook URL")
	event := fs.String("event", "", "X-GitHub-Event (default: from the file name)")
	id := fs.String("delivery", "", "X-GitHub-Delivery (default: a new GUID)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("usage: send [-url URL] [-event NAME] [-delivery ID] FILE.json")
	}
	body, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	if *event == "" {
		*event = localstack.EventFromFile(fs.Arg(0))
	}
	if *id == "" {
		*id = localstack.NewDeliveryID()
	}
	status, resp, err := localstack.Send(ctx, *url, localstack.Secret(cfg), *event, *id, body)
	if err != nil {
		return err
	}
	fmt.Printf("%d %s", status, resp)
	if status >= 300 {
		return fmt.Errorf("delivery %s refused with status %d", *id, status)
	}
	return nil
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
