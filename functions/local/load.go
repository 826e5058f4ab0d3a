package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/runnerhub/webhooks/internal/config"
	"github.com/runnerhub/webhooks/internal/standalone"
)

// load runs the load test: the bare HMAC-only handler and the local stack under the same
// deliveries, or with -rate the local stack alone at a steady pace.
func load(ctx context.Context, cfg config.Config, args []string) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	file := fs.String("file", "testdata/workflow_job.queued.json", "the delivery to send, again and again under new delivery ids")
	opts := standalone.LoadOptions{Out: os.Stdout}
	fs.IntVar(&opts.Connections, "connections", 32, "concurrent keep-alive connections")
	fs.IntVar(&opts.Count, "count", 20000, "deliveries per round and server")
	fs.IntVar(&opts.Rounds, "rounds", 3, "rounds, each the bare handler then the local stack")
	fs.Float64Var(&opts.Rate, "rate", 0, "deliveries per second to the local stack alone (latency mode); 0: as fast as answered")
	fs.DurationVar(&opts.Duration, "duration", 30*time.Second, "how long -rate lasts")
	fs.BoolVar(&opts.DistinctJobs, "distinct-jobs", false, "give each delivery a job of its own (default: all about the file's job)")
	fs.DurationVar(&opts.Timeout, "timeout", 5*time.Minute, "bound on the whole run")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof -top)")
	blockProfile := fs.String("blockprofile", "", "write a blocking profile of the run to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *blockProfile != "" {
		runtime.SetBlockProfileRate(int(time.Microsecond))
		defer writeProfile("block", *blockProfile)
	}
	body, err := os.ReadFile(*file)
	if err != nil {
		return err
	}
	opts.Body, opts.Event = body, standalone.EventFromFile(*file)
	_, err = standalone.Load(ctx, cfg, opts)
	return err
}

// writeProfile writes the named runtime profile to path; a failure is reported, not
// returned, since the run it profiles has its own result.
func writeProfile(name, path string) {
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup(name).WriteTo(f, 0)
		f.Close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "runnerhub: write", name, "profile:", err)
	}
}
