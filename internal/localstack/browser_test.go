package localstack

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/runnerhub/webhooks/internal/ingest"
	"github.com/runnerhub/webhooks/internal/testenv"
)

const browserToken = "browser-test-token-0123456789"

// TestDashboardInBrowser opens the dashboard in headless Chromium against a running local
// stack, sends one job through queued → in_progress → completed, and checks that the
// page shows each transition within a second without reloading; then it drops the
// socket and checks that the page recovers (polls, reconnects, shows new jobs). The
// screenshot is saved to build/artifacts/dashboard.png.
func TestDashboardInBrowser(t *testing.T) {
	chromium := testenv.RequireTool(t, "chromium", "apt-get install -y chromium")
	_, base := startStack(t, map[string]string{
		"RUNNERHUB_API_TOKENS": browserToken,
		"RUNNERHUB_POOLS":      `[{"name":"k8s","labels":["k8s","linux"],"minIdle":0,"maxRunners":3}]`,
	})
	ctx := context.Background()
	// The runner registers the way whatever starts runners does.
	req, _ := http.NewRequest(http.MethodPost, base+"/api/runners", strings.NewReader(`{"name":"spare","pool":"k8s","labels":["k8s","linux"]}`))
	req.Header.Set("Authorization", "Bearer "+browserToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("register runner: %v %v", resp, err)
	}
	resp.Body.Close()

	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 800))
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	browser, cancelTimeout := context.WithTimeout(browser, 90*time.Second)
	defer cancelTimeout()

	if _, err := chromedp.Run(browser, chromedp.Navigate(base+"/#token="+browserToken)); err != nil {
		t.Fatalf("open dashboard: %v", err)
	}
	waitFor(t, browser, "the socket connects", 10*time.Second, `document.querySelector("#conn").dataset.state === "live"`)
	waitFor(t, browser, "the pool shows its idle runner", 2*time.Second,
		`[...document.querySelectorAll("#pools tbody tr")].some(r => r.cells[0].textContent === "k8s" && r.cells[1].textContent === "1")`)

	send := func(status, runner, conclusion string, jobID int64) {
		t.Helper()
		now := time.Now().UTC()
		body := testenv.JobPayload(t, testenv.Job{ID: jobID, Labels: []string{"self-hosted", "k8s"}, Status: status,
			Runner: runner, Conclusion: conclusion, Repository: "octo/dashboard", Created: now, At: now})
		code, resp, err := Send(ctx, base+ingest.Path, testSecret, "workflow_job", NewDeliveryID(), body)
		if err != nil || code != http.StatusAccepted {
			t.Fatalf("send %s: %d %s %v", status, code, resp, err)
		}
	}
	jobCell := func(jobID int64, want string) string {
		return fmt.Sprintf(`[...document.querySelectorAll("#jobs tbody tr")].some(r => r.cells[0].textContent === "%d" && r.textContent.includes(%q))`, jobID, want)
	}

	send("queued", "", "", 4242)
	waitFor(t, browser, "queued job reserved", time.Second, jobCell(4242, "reserved"))
	send("in_progress", "spare", "", 4242)
	waitFor(t, browser, "job in progress", time.Second, jobCell(4242, "in_progress"))
	send("completed", "spare", "success", 4242)
	waitFor(t, browser, "job completed", time.Second, jobCell(4242, "completed"))
	waitFor(t, browser, "the delivery list shows the deliveries", time.Second,
		`document.querySelectorAll("#events tbody tr").length >= 3`)

	// A dropped socket: the page falls back to polling, reconnects, and keeps up.
	if _, err := chromedp.Run(browser, chromedp.Evaluate[any](`window.runnerhubDropSocket()`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, browser, "the page notices the drop", 2*time.Second, `document.querySelector("#conn").dataset.state !== "live"`)
	send("queued", "", "", 4343)
	waitFor(t, browser, "the page recovers", 10*time.Second,
		`document.querySelector("#conn").dataset.state === "live" && `+jobCell(4343, "queued"))

	screenshot(t, browser, "dashboard.png")

	// On a phone-sized viewport the page reflows to one column without sideways scrolling,
	// and the controls stay reachable from the keyboard.
	if _, err := chromedp.Run(browser, chromedp.EmulateViewport(390, 844)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, browser, "no horizontal overflow at 390 px", time.Second,
		`document.documentElement.scrollWidth <= window.innerWidth`)
	screenshot(t, browser, "dashboard-phone.png")
}

// screenshot saves the page as build/artifacts/<name>, the test's artifact.
func screenshot(t *testing.T, browser context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(browser, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(testenv.RepoRoot(t), "build", "artifacts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls a JavaScript condition in the page until it holds or within runs out.
func waitFor(t *testing.T, ctx context.Context, what string, within time.Duration, condition string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](condition))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
			t.Fatalf("%s: not within %v; page shows:\n%s", what, within, strings.TrimSpace(text))
		}
		time.Sleep(25 * time.Millisecond)
	}
}
