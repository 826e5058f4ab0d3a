package standalone

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/ingest"
	"github.com/runnerhub/webhooks/internal/loadgen"
	"github.com/runnerhub/webhooks/internal/storage/embedded"
)

// crashChildEnv names the data directory of the child process TestServeUntilKilled runs.
const crashChildEnv = "RUNNERHUB_TEST_CRASH_CHILD_DIR"

// TestServeUntilKilled is the child process of TestAcknowledgedDeliveriesSurviveKill: it
// serves a local stack on a loopback port, prints the address and waits to be killed.
func TestServeUntilKilled(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("the child process of TestAcknowledgedDeliveriesSurviveKill")
	}
	s, err := Open(testConfig(t, dir, nil), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("listening " + ln.Addr().String() + "\n")
	t.Fatal(s.Serve(context.Background(), ln)) // returns only if serving fails
}

// Every delivery answered 2xx is in the store after the process is killed with SIGKILL
// in the middle of a load, and a restarted stack processes every one of them.
func TestAcknowledgedDeliveriesSurviveKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills a child process under load")
	}
	dir := t.TempDir()
	child := exec.Command(os.Args[0], "-test.run=^TestServeUntilKilled$")
	child.Env = append(os.Environ(), crashChildEnv+"="+dir)
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if err != nil || !ok {
		t.Fatalf("child said %q (%v)", line, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		time.Sleep(700 * time.Millisecond)
		_ = child.Process.Kill() // SIGKILL: nothing is flushed or closed
		time.Sleep(100 * time.Millisecond)
		cancel()
	}()
	res, err := loadgen.Run(ctx, loadgen.Options{
		URL: "http://" + addr + ingest.Path, Secret: testSecret, Event: "workflow_job",
		Body: fixture(t, "workflow_job.queued.json"), Connections: 16, Count: 1_000_000, IDPrefix: "crash-",
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	if len(res.Accepted) == 0 || res.Failed() == 0 {
		t.Fatalf("the kill did not land in the middle of the load: %d accepted, statuses %v", len(res.Accepted), res.Statuses)
	}

	db, err := embedded.Open(filepath.Join(dir, dbFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range res.Accepted {
		if _, err := db.Store().Get(context.Background(), delivery.Key{HookID: "1", DeliveryID: id}); err != nil {
			t.Fatalf("delivery %s was answered 2xx before the kill but is gone: %v", id, err)
		}
	}
	db.Close()

	s, err := Open(testConfig(t, dir, nil), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	serve(t, s)
	wait, stop := context.WithTimeout(context.Background(), time.Minute)
	defer stop()
	if err := waitProcessed(wait, s); err != nil {
		t.Fatal(err)
	}
	for _, id := range res.Accepted {
		rec, err := s.db.Store().Get(wait, delivery.Key{HookID: "1", DeliveryID: id})
		if err != nil || !rec.State.Done() {
			t.Fatalf("delivery %s after the restart: %+v %v, want processed", id, rec, err)
		}
	}
	t.Logf("%d deliveries acknowledged before the kill, all stored and then processed", len(res.Accepted))
}
