package standalone

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/runnerhub/webhooks/internal/config"
	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/ingest"
	"github.com/runnerhub/webhooks/internal/storage/embedded"
)

const (
	backupToken = "backup-test-token-0123456789"
	readToken   = "backup-read-token-0123456789"
)

// backupStack serves a local stack with an admin and a read-only API token until the test
// ends, and returns the backup command's configuration (whose default token is the
// stack's admin one) and the stack's base URL.
func backupStack(t *testing.T) (config.Config, string) {
	t.Helper()
	env := map[string]string{"RUNNERHUB_API_TOKENS": backupToken, "RUNNERHUB_API_READ_TOKENS": readToken}
	_, base := startStack(t, env)
	return testConfig(t, t.TempDir(), env), base
}

// The backup command copies the database of a stack that is running and taking
// deliveries; the copy opens as a database holding what was acknowledged before it.
func TestBackupWhileRunning(t *testing.T) {
	cfg, base := backupStack(t)
	ctx := t.Context()
	send := func(id string) {
		status, body, err := Send(ctx, base+ingest.Path, testSecret, "ping", id, []byte(`{"zen":"Keep it logically awesome.","hook_id":1}`))
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
	var out strings.Builder
	err := BackupCommand(ctx, cfg, []string{"-url", base + BackupPath, target}, &out, io.Discard)
	close(stopSending)
	wg.Wait()
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	if !strings.HasPrefix(out.String(), "backed up ") || !strings.HasSuffix(out.String(), " bytes to "+target+"\n") {
		t.Errorf("output %q does not say what was backed up where", out.String())
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
	cfg, base := backupStack(t)
	target := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(target, []byte("an older backup"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		says string
	}{
		{"WrongToken", []string{"-url", base + BackupPath, "-token", "not-the-token-0123456789", target}, "401"},
		// A backup hands out everything: a token that may only read may not take one.
		{"ReadOnlyToken", []string{"-url", base + BackupPath, "-token", readToken, target}, "403"},
		{"NotRunning", []string{"-url", "http://127.0.0.1:1" + BackupPath, target}, "is the local stack running?"},
		{"NoFile", []string{"-url", base + BackupPath}, "usage"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := BackupCommand(t.Context(), cfg, c.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("backup: %v; want an error saying %q", err, c.says)
			}
			if b, _ := os.ReadFile(target); string(b) != "an older backup" {
				t.Fatalf("the target was changed: %q", b)
			}
		})
	}
}
