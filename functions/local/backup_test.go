package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/runnerhub/webhooks/internal/config"
	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/ingest"
	"github.com/runnerhub/webhooks/internal/standalone"
	"github.com/runnerhub/webhooks/internal/storage/embedded"
	"github.com/runnerhub/webhooks/internal/testenv"
)

const (
	testSecret = "backup-test-secret"
	testToken  = "backup-test-token-0123456789"
	readToken  = "backup-read-token-0123456789"
)

// runningStack serves a local stack on a loopback port until the test ends and returns its
// configuration and base URL.
func runningStack(t *testing.T) (config.Config, string) {
	t.Helper()
	env := map[string]string{
		"GITHUB_WEBHOOK_SECRET":     testSecret,
		"RUNNERHUB_API_TOKENS":      testToken,
		"RUNNERHUB_API_READ_TOKENS": readToken,
		"RUNNERHUB_DATA_DIR":        t.TempDir(),
	}
	cfg, err := config.FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	stack, err := standalone.Open(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	base, stop := testenv.Serve(t, "127.0.0.1:0", stack.Serve)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
		stack.Close()
	})
	return cfg, base
}

// The backup command copies the database of a stack that is running and taking
// deliveries; the copy opens as a database holding what was acknowledged before it.
func TestBackupWhileRunning(t *testing.T) {
	cfg, base := runningStack(t)
	ctx := t.Context()
	send := func(id string) {
		status, body, err := standalone.Send(ctx, base+ingest.Path, testSecret, "ping", id, []byte(`{"zen":"Keep it logically awesome.","hook_id":1}`))
		if err != nil || status != http.StatusAccepted {
			t.Errorf("send %s: %d %s %v", id, status, body, err)
		}
	}
	for i := range 20 {
		send(fmt.Sprintf("before-%d", i))
	}
	var wg sync.WaitGroup
	stopSending := make(chan struct{})
	wg.Go(func() { // deliveries keep arriving during the backup
		for i := 0; ; i++ {
			select {
			case <-stopSending:
				return
			default:
				send(fmt.Sprintf("during-%d", i))
			}
		}
	})
	target := filepath.Join(t.TempDir(), "copy.db")
	err := backup(ctx, cfg, []string{"-url", base + standalone.BackupPath, target})
	close(stopSending)
	wg.Wait()
	if err != nil {
		t.Fatalf("backup: %v", err)
	}

	restored, err := embedded.Open(target)
	if err != nil {
		t.Fatalf("the backup does not open: %v", err)
	}
	defer restored.Close()
	for i := range 20 {
		key := delivery.Key{HookID: "1", DeliveryID: fmt.Sprintf("before-%d", i)} // Send says hook 1
		if _, err := restored.Store().Get(ctx, key); err != nil {
			t.Errorf("delivery %s, acknowledged before the backup, is not in it: %v", key.DeliveryID, err)
		}
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(target), ".*partial*")); len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

// A refused backup says why and leaves the target as it was.
func TestBackupRefused(t *testing.T) {
	cfg, base := runningStack(t)
	target := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(target, []byte("an older backup"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		says string
	}{
		{"WrongToken", []string{"-url", base + standalone.BackupPath, "-token", "not-the-token-0123456789", target}, "401"},
		// A backup hands out everything: a token that may only read may not take one.
		{"ReadOnlyToken", []string{"-url", base + standalone.BackupPath, "-token", readToken, target}, "403"},
		{"NotRunning", []string{"-url", "http://127.0.0.1:1" + standalone.BackupPath, target}, "is the local stack running?"},
		{"NoFile", []string{"-url", base + standalone.BackupPath}, "usage"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := backup(t.Context(), cfg, c.args)
			if err == nil || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("backup: %v; want an error saying %q", err, c.says)
			}
			if b, _ := os.ReadFile(target); string(b) != "an older backup" {
				t.Fatalf("the target was changed: %q", b)
			}
		})
	}
}
