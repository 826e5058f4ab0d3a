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
//
// Each subcommand is a function of internal/standalone; this is their configuration
// and dispatch.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/runnerhub/webhooks/internal/config"
	"github.com/runnerhub/webhooks/internal/standalone"
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
	args, out, errOut := os.Args[min(2, len(os.Args)):], os.Stdout, os.Stderr
	switch cmd {
	case "", "run":
		err = standalone.RunCommand(ctx, cfg, out, errOut)
	case "send":
		err = standalone.SendCommand(ctx, cfg, args, out, errOut)
	case "demo":
		err = standalone.DemoCommand(ctx, cfg, args, out, errOut)
	case "backup":
		err = standalone.BackupCommand(ctx, cfg, args, out, errOut)
	case "load":
		err = standalone.LoadCommand(ctx, cfg, args, out, errOut)
	case "replay-dlq":
		err = standalone.ReplayDLQCommand(ctx, cfg, out)
	case "recount-pools":
		err = standalone.RecountPoolsCommand(ctx, cfg, out)
	default:
		fmt.Fprint(errOut, standalone.Usage)
		err = fmt.Errorf("unknown command %q", cmd)
	}
	switch {
	case errors.Is(err, flag.ErrHelp): // the usage asked for is printed
	case err != nil:
		fmt.Fprintln(errOut, "runnerhub:", err)
		os.Exit(1)
	}
}
