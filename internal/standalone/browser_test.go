package standalone

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

// liveWithin is how soon the page must show a change the socket announces: the issue's
// "within about 1.5 s". The page gathers a commit's messages for 150 ms and reads the
// figures again at most once a second.
const liveWithin = 1500 * time.Millisecond

// The page's tones, as the browser computes them (the --ok, --warn, --bad and --muted
// colours of index.html).
const (
	toneOK    = "rgb(26, 127, 55)"
	toneWarn  = "rgb(154, 103, 0)"
	toneBad   = "rgb(207, 34, 46)"
	toneMuted = "rgb(87, 96, 106)"
)

// TestDashboardInBrowser opens the dashboard in headless Chromium against a running local
// stack and checks what a user sees as jobs go through their lives, without reloading:
// the pool cards and the runners list, each job's reserved runner and coloured
// conclusion, a wait that ticks by itself, coloured delivery outcomes with short ids,
// the three charts with their axes, a pool changed through the API, recovery from a
// dropped socket, the phone layout at 390 px, the signed-out state once the token is no
// longer valid, the page with a read-only token, and a waiting job's diagnosis opened from
// its row (at 390 px too, and read-only). Screenshots go to build/artifacts/.
func TestDashboardInBrowser(t *testing.T) {
	chromium := testenv.RequireTool(t, "chromium", "apt-get install -y chromium")
	pools := `[{"name":"k8s","labels":["k8s","linux"],"minIdle":0,"maxRunners":3}]`
	stack := startRestartable(t, map[string]string{"RUNNERHUB_API_TOKENS": browserToken, "RUNNERHUB_POOLS": pools})
	base := stack.base
	ctx := context.Background()
	adminToken := browserToken // until the restart below
	call := func(method, path, body string) {
		t.Helper()
		if code, answer := apiCall(t, base, adminToken, method, path, body); code/100 != 2 {
			t.Fatalf("%s %s: %d %s", method, path, code, answer)
		}
	}
	// The runner registers the way whatever starts runners does.
	call(http.MethodPost, "/api/runners", `{"name":"spare","pool":"k8s","labels":["k8s","linux"]}`)

	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 800))
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	browser, cancelTimeout := context.WithTimeout(browser, 120*time.Second)
	defer cancelTimeout()
	holds := func(what string, within time.Duration, condition string) {
		t.Helper()
		waitFor(t, browser, what, within, condition)
	}
	eval := func(js string) {
		t.Helper()
		if _, err := chromedp.Run(browser, chromedp.Evaluate[any](js)); err != nil {
			t.Fatalf("%s: %v", js, err)
		}
	}

	if _, err := chromedp.Run(browser, chromedp.Navigate(base+"/#token="+browserToken)); err != nil {
		t.Fatalf("open dashboard: %v", err)
	}
	holds("the socket connects", 10*time.Second, `document.querySelector("#conn").dataset.state === "live"`)
	// The page's own helpers, for the checks below.
	eval(`
		window.t = {
			card: (pool, key) => (document.querySelector('#pools [data-pool="' + pool + '"] dd[data-key="' + key + '"]') || {}).textContent,
			runner: (name) => [...document.querySelectorAll("#runners tbody tr")].find(r => r.cells[0].textContent === name),
			job: (id) => document.querySelector('#jobs tr[data-job="' + id + '"]'),
			queued: (id) => [...document.querySelectorAll("#queue tbody tr")].find(r => r.cells.length > 1 && r.cells[1].textContent.startsWith("#" + id + " ")),
			cell: (tr, label) => tr && [...tr.cells].find(c => c.dataset.label === label),
			color: (el) => el ? getComputedStyle(el).color : "missing",
			badge: (td) => td && td.querySelector(".badge"),
		};`)

	{ // pool cards and runners list
		holds("the k8s card shows its settings and the idle runner", 2*time.Second,
			`t.card("k8s", "idle") === "1" && t.card("k8s", "minIdle") === "0" && t.card("k8s", "maxRunners") === "3" && t.card("k8s", "demand") === "0"`)
		// The pool status counts starting runners (none here: nothing provisions).
		holds("the starting count", 0, `t.card("k8s", "starting") === "0"`)
		holds("the runners list shows the runner", liveWithin, `(() => {
			const r = t.runner("spare"); if (!r) return false;
			const [name, pool, state, job, seen, offline] = [...r.cells].map(c => c.textContent);
			return pool === "k8s" && state === "idle" && job === "—" && / ago$/.test(seen) && offline === "online" &&
				t.color(t.badge(r.cells[5])) === "`+toneOK+`";
		})()`)
	}

	send := func(status, runner, conclusion string, jobID int64, labels ...string) {
		t.Helper()
		if labels == nil {
			labels = []string{"self-hosted", "k8s"}
		}
		now := time.Now().UTC()
		body := testenv.JobPayload(t, testenv.Job{ID: jobID, Labels: labels, Status: status,
			Runner: runner, Conclusion: conclusion, Repository: "octo/dashboard", Created: now, At: now})
		code, resp, err := Send(ctx, base+ingest.Path, testSecret, "workflow_job", NewDeliveryID(), body)
		if err != nil || code != http.StatusAccepted {
			t.Fatalf("send %s: %d %s %v", status, code, resp, err)
		}
	}
	conclusion := func(jobID int64, want, tone string) string {
		return fmt.Sprintf(`(() => { const b = t.badge(t.cell(t.job(%d), "Conclusion")); return !!b && b.textContent === %q && t.color(b) === %q; })()`, jobID, want, tone)
	}

	{ // jobs: reserved runner, link, conclusion colours
		send("queued", "", "", 4242)
		holds("the job shows its reserved runner", liveWithin, `(() => {
			const j = t.job(4242); if (!j) return false;
			return t.cell(j, "Runner").textContent === "spare reserved" && t.cell(j, "Allocation").textContent === "reserved";
		})()`)
		// The link is the job's html_url (the fixture's, which JobPayload keeps).
		holds("the job links to GitHub", 0, `(() => { const a = t.job(4242).querySelector("a");
			return !!a && a.href === "https://github.com/octo-org/octo-repo/runs/1291536064" && a.textContent === "#4242" && a.target === "_blank"; })()`)
		holds("the runners list shows the reservation", liveWithin, `(() => { const r = t.runner("spare"); return !!r && r.cells[2].textContent === "reserved" && r.cells[3].textContent === "#4242"; })()`)
		send("in_progress", "spare", "", 4242)
		holds("job in progress", liveWithin, `t.cell(t.job(4242), "Status").textContent === "in_progress" && t.cell(t.job(4242), "Runner").textContent === "spare"`)
		send("completed", "spare", "success", 4242)
		holds("success is green", liveWithin, conclusion(4242, "success", toneOK))

		// spare takes 4243; 4244 waits in the queue.
		send("queued", "", "", 4243)
		send("queued", "", "", 4244)
		holds("4244 waits in the queue", liveWithin,
			`!!t.queued(4244) && t.card("k8s", "pendingJobs") === "1" && t.card("k8s", "demand") === "1"`)
		send("in_progress", "spare", "", 4243)
		send("completed", "spare", "failure", 4243)
		holds("failure is red", liveWithin, conclusion(4243, "failure", toneBad))
		holds("the freed runner is reserved for 4244", liveWithin, `t.cell(t.job(4244), "Runner").textContent === "spare reserved"`)
		send("completed", "", "cancelled", 4244)
		holds("cancelled is grey", liveWithin, conclusion(4244, "cancelled", toneMuted))
	}

	{ // the wait ticks
		call(http.MethodPost, "/api/runners/spare/heartbeat", "")
		send("queued", "", "", 4250)
		send("queued", "", "", 4251) // behind 4250, which takes spare
		holds("4251 is pending", liveWithin, `!!t.queued(4251)`)
		// The same element, not a re-rendered one, shows a later wait: it ticks by itself.
		eval(`window.waitCell = t.queued(4251).cells[5].firstChild;
			window.waitBefore = parseInt(window.waitCell.textContent, 10);`)
		holds("the wait grows by two seconds", 4*time.Second,
			`window.waitCell.isConnected && parseInt(window.waitCell.textContent, 10) >= window.waitBefore + 2`)
		send("completed", "", "cancelled", 4251)
		send("completed", "", "cancelled", 4250)
	}

	{ // outcome colours
		send("queued", "", "", 4260, "self-hosted", "gpu") // no pool fits
		deliver := func(event, body string) {
			t.Helper()
			code, resp, err := Send(ctx, base+ingest.Path, testSecret, event, NewDeliveryID(), []byte(body))
			if err != nil || code != http.StatusAccepted {
				t.Fatalf("send %s: %d %s %v", event, code, resp, err)
			}
		}
		deliver("issues", `{"action":"opened","repository":{"full_name":"octo/dashboard"}}`)
		deliver("workflow_job", `{"action":"queued","workflow_job":{"id":"not a number"},"repository":{"full_name":"octo/dashboard"}}`)
		for outcome, tone := range map[string]string{"processed": toneOK, "unmatched": toneWarn, "ignored": toneWarn, "error": toneBad} {
			holds(outcome+" deliveries have their colour", liveWithin, fmt.Sprintf(`(() => {
				const rows = [...document.querySelectorAll('#events tbody tr[data-outcome=%q]')];
				return rows.length > 0 && rows.every(r => t.color(r.querySelector(".badge")) === %q);
			})()`, outcome, tone))
		}
	}

	{ // deliveries: short ids, full id on hover and copy, cells on one line
		holds("every delivery id is short with the full id on hover", 0, `[...document.querySelectorAll("#events tbody tr")].every(r => {
			const code = r.cells[3].querySelector("code");
			return code.textContent.length === 8 && code.title === r.dataset.delivery && r.dataset.delivery.length === 36 && r.dataset.delivery.startsWith(code.textContent);
		})`)
		// The clicked button is held on to: a live update may render the row again
		// before the clipboard answers.
		if _, err := chromedp.Run(browser, chromedp.Evaluate[bool](`!!(window.copyProbe = document.querySelector("#events tbody tr:first-child button.copy"))`)); err != nil {
			t.Fatal(err)
		}
		if _, err := chromedp.Run(browser, chromedp.Click(chromedp.CSS("#events tbody tr:first-child button.copy"))); err != nil {
			t.Fatal(err)
		}
		holds("the copy button copies", liveWithin, `window.copyProbe.textContent === "copied" || document.querySelector("#events tbody tr:first-child button.copy").textContent === "copied"`)
		holds("time and event cells stay on one line", 0, `[...document.querySelectorAll("#events tbody td.time, #events tbody td.event")].every(td => {
			const range = document.createRange(); range.selectNodeContents(td);
			return getComputedStyle(td).whiteSpace === "nowrap" && range.getClientRects().length === 1;
		})`)
	}

	{ // charts
		holds("events per hour: 24 hours on an hour axis, a value axis, this hour's bar", liveWithin, `(() => {
			const c = document.querySelector("#events-chart svg"); if (!c) return false;
			const hours = [...c.querySelectorAll(".hour-axis text")].map(e => e.textContent);
			const values = [...c.querySelectorAll(".value-axis text")].map(e => Number(e.textContent));
			return hours.length >= 4 && hours.every(h => /^\d\d:00$/.test(h)) && values.length === 3 && values[0] === 0 && values[2] > 0 &&
				c.querySelectorAll('[data-series="deliveries"] rect').length >= 1;
		})()`)
		holds("queue time per hour: p50 and p90 points for this hour", liveWithin, `(() => {
			const c = document.querySelector("#queue-chart svg"); if (!c) return false;
			return c.querySelectorAll(".hour-axis text").length >= 4 && c.querySelectorAll(".value-axis text").length === 3 &&
				c.querySelectorAll('[data-series="p50"] circle').length === 1 && c.querySelectorAll('[data-series="p90"] circle').length === 1 &&
				/^2 jobs started/.test(document.querySelector("#queue-summary").textContent);
		})()`)
		holds("jobs by conclusion, coloured", liveWithin, `(() => {
			const li = (c) => document.querySelector('#conclusions li[data-conclusion="' + c + '"]');
			const n = (c) => li(c) && li(c).querySelector(".n").textContent;
			return n("success") === "1" && n("failure") === "1" && n("cancelled") === "3" &&
				t.color(li("success")) === "`+toneOK+`" && t.color(li("failure")) === "`+toneBad+`" && t.color(li("cancelled")) === "`+toneMuted+`";
		})()`)
	}

	{ // a pool changed through the API updates the page
		call(http.MethodPut, "/api/pools/k8s", `{"labels":["k8s","linux"],"minIdle":1,"maxRunners":7}`)
		// Within the live path's time: the page polls only every 5 s, and only without a socket.
		holds("the card shows the new settings", liveWithin,
			`document.querySelector("#conn").dataset.state === "live" && t.card("k8s", "minIdle") === "1" && t.card("k8s", "maxRunners") === "7"`)
		// A new pool, with long names for the phone layout to fit.
		call(http.MethodPut, "/api/pools/gpu-large-instances", `{"labels":["gpu"],"maxRunners":2}`)
		holds("the new pool's card appears", liveWithin, `t.card("gpu-large-instances", "maxRunners") === "2"`)
		call(http.MethodPost, "/api/runners", `{"name":"gpu-large-instances-runner-0042","pool":"gpu-large-instances","labels":["gpu"]}`)
		holds("its runner is listed", liveWithin, `!!t.runner("gpu-large-instances-runner-0042")`)
	}

	{ // a dropped socket
		eval(`window.runnerhubDropSocket()`)
		holds("the page notices the drop", 2*time.Second, `document.querySelector("#conn").dataset.state !== "live"`)
		send("queued", "", "", 4343)
		holds("the page recovers", 10*time.Second, `document.querySelector("#conn").dataset.state === "live" && !!t.job(4343)`)
		send("queued", "", "", 4344) // waits behind 4343, for the screenshots
		holds("4344 is pending", liveWithin, `!!t.queued(4344)`)
	}

	screenshot(t, browser, "dashboard.png")

	{ // phone width
		if _, err := chromedp.Run(browser, chromedp.EmulateViewport(390, 844)); err != nil {
			t.Fatal(err)
		}
		// The page, and every box in it, fits the phone's width: nothing scrolls sideways
		// and nothing sticks out. The check names what does not.
		noneOf(t, browser, "elements wider than 390 px", 2*time.Second, wider(390, "main *"))
		// Names are runners', pools', jobs' and repositories' names: each word must sit whole
		// on one line.
		noneOf(t, browser, "names broken or cut mid-word", 0, `(() => {
			const words = [...document.querySelectorAll(".name .word")];
			const broken = words.filter(w => {
				const range = document.createRange(); range.selectNodeContents(w);
				return range.getClientRects().length !== 1 || w.scrollWidth > w.clientWidth;
			}).map(w => w.textContent);
			return words.length < 50 ? ["only " + words.length + " words of names on the page"] : broken;
		})()`)
		screenshot(t, browser, "dashboard-phone.png")
		if _, err := chromedp.Run(browser, chromedp.EmulateViewport(1280, 800)); err != nil {
			t.Fatal(err)
		}
	}

	{ // a waiting job's diagnosis, opened from its row
		if _, err := chromedp.Run(browser, chromedp.Click(chromedp.CSS(`#queue button[data-diagnose="4344"]`))); err != nil {
			t.Fatal(err)
		}
		// 4344 (self-hosted, k8s) waits in k8s behind 4343, which holds spare; the gpu
		// pool lacks the k8s label.
		holds("the diagnosis names the pool that fits and why the other does not", liveWithin, `(() => {
			const d = document.querySelector("#diagnosis"); if (!d.open) return false;
			const pool = (name) => d.querySelector('.fit[data-pool="' + name + '"]');
			const k8s = pool("k8s"), gpu = pool("gpu-large-instances"); if (!k8s || !gpu) return false;
			const spare = [...k8s.querySelectorAll("tbody tr")].find(r => r.cells[0].textContent === "spare");
			const text = (part) => d.querySelector('[data-part="' + part + '"]').innerText;
			return k8s.dataset.fits === "true" && k8s.querySelector(".badge").textContent === "fits" &&
				gpu.dataset.fits === "false" && gpu.querySelector(".badge").textContent === "does not fit" &&
				/Why not: lacks\s*k8s/.test(gpu.innerText) && gpu.querySelector(".label.missing").textContent === "k8s" &&
				!!spare && /job 4343/.test(t.cell(spare, "Why").textContent) && t.cell(spare, "Can take it").textContent === "no" &&
				/queue/.test(d.querySelector(".summary").textContent) && /Sent for pool: k8s at/.test(text("demand")) &&
				d.querySelectorAll('[data-part="deliveries"] tbody tr').length === 1 && /queued/.test(text("deliveries")) &&
				/no GitHub credentials/.test(text("github"));
		})()`)
		screenshot(t, browser, "dashboard-diagnosis.png")
		if _, err := chromedp.Run(browser, chromedp.EmulateViewport(390, 844)); err != nil {
			t.Fatal(err)
		}
		noneOf(t, browser, "diagnosis elements wider than 390 px", 2*time.Second, wider(390, "#diagnosis, #diagnosis *"))
		// What the phone shows, not the whole page behind the dialog: its top, then its end.
		viewScreenshot(t, browser, "dashboard-diagnosis-phone.png")
		eval(`document.querySelector("#diagnosis").scrollTop = 1e6`)
		viewScreenshot(t, browser, "dashboard-diagnosis-phone-end.png")
		if _, err := chromedp.Run(browser, chromedp.EmulateViewport(1280, 800)); err != nil {
			t.Fatal(err)
		}
		// The open diagnosis follows the job: 4343 is cancelled, spare is reserved for 4344.
		send("completed", "", "cancelled", 4343)
		holds("the open diagnosis shows the reservation", liveWithin, `(() => {
			const d = document.querySelector("#diagnosis");
			return d.open && /runner spare is reserved for it/.test(d.querySelector(".summary").textContent) &&
				/^None/.test(d.querySelector('[data-part="demand"] p').textContent) && d.querySelectorAll('[data-part="deliveries"] tbody tr').length === 1;
		})()`)
		if _, err := chromedp.Run(browser, chromedp.Click(chromedp.CSS("#diagnosis-close"))); err != nil {
			t.Fatal(err)
		}
		holds("the diagnosis closes and keeps nothing", liveWithin, `!document.querySelector("#diagnosis").open && document.querySelector("#diagnosis-body").childElementCount === 0`)
	}

	{ // signed out when the token is no longer valid
		const next, readOnly = "browser-test-next-token-0123456789", "browser-test-read-token-0123456789"
		stack.restart(map[string]string{"RUNNERHUB_API_TOKENS": next, "RUNNERHUB_API_READ_TOKENS": readOnly, "RUNNERHUB_POOLS": pools})
		adminToken = next
		holds("the page signs out and clears what it showed", 15*time.Second, `(() => {
			const shown = document.querySelector("main").innerText;
			return document.querySelector("#conn").dataset.state === "unauthorized" && !document.querySelector("#login-section").hidden &&
				document.querySelectorAll("tbody tr, #pools > *, #conclusions > *, .chart svg").length === 0 &&
				[...document.querySelectorAll("main > section:not(#login-section)")].every(s => s.offsetParent === null) &&
				!/spare|4242|octo\/dashboard/.test(shown);
		})()`)
		screenshot(t, browser, "dashboard-signed-out.png")

		// Signing in again with a read-only token (RUNNERHUB_API_READ_TOKENS): the page
		// reads everything, live, and asks for nothing it may not do.
		eval(`window.signInAt = performance.now()`)
		if _, err := chromedp.Run(browser, chromedp.SendKeys(chromedp.CSS("#token-input"), readOnly)); err != nil {
			t.Fatal(err)
		}
		if _, err := chromedp.Run(browser, chromedp.Click(chromedp.CSS(`#login button[type="submit"]`))); err != nil {
			t.Fatal(err)
		}
		holds("signed in with a read-only token, the data is back", 5*time.Second,
			`document.querySelector("#conn").dataset.state === "live" && t.card("k8s", "maxRunners") === "7" && !!t.runner("spare") &&
			!!document.querySelector("#queue-chart svg") && !!t.job(4242)`)
		send("queued", "", "", 4400)
		call(http.MethodPut, "/api/pools/k8s", `{"labels":["k8s","linux"],"minIdle":1,"maxRunners":9}`)
		holds("the read-only page is live: a delivery and a pool change show", liveWithin,
			`!!t.job(4400) && t.card("k8s", "maxRunners") === "9"`)
		if _, err := chromedp.Run(browser, chromedp.Click(chromedp.CSS(`#jobs button[data-diagnose="4400"]`))); err != nil {
			t.Fatal(err)
		}
		holds("the read-only page opens a diagnosis", liveWithin, `!!document.querySelector('#diagnosis[open] .fit[data-pool="k8s"][data-fits="true"]')`)
		if _, err := chromedp.Run(browser, chromedp.Click(chromedp.CSS("#diagnosis-close"))); err != nil {
			t.Fatal(err)
		}
		// Requests made with the old token may still be answering (401): only those made since count.
		noneOf(t, browser, "requests of the read-only page refused", 0, `(() => {
			const made = performance.getEntriesByType("resource").filter(e => e.startTime >= window.signInAt && e.name.includes("/api/"));
			const refused = made.filter(e => e.responseStatus !== 200).map(e => e.name + " " + e.responseStatus);
			const seen = made.some(e => e.name.endsWith("/api/ws/ticket")) && made.some(e => e.name.endsWith("/api/jobs/4400/diagnosis"));
			return seen && made.length >= 8 ? refused : ["only " + made.length + " API requests seen"];
		})()`)
		screenshot(t, browser, "dashboard-read-only.png")
		if _, err := chromedp.Run(browser, chromedp.Click(chromedp.CSS("#sign-out"))); err != nil {
			t.Fatal(err)
		}
		holds("signing out forgets the token and the figures", liveWithin,
			`!sessionStorage.getItem("runnerhub-token") && !document.querySelector("#login-section").hidden && document.querySelectorAll("tbody tr, #pools > *").length === 0`)
	}
}

// wider lists the elements matching selector that scroll sideways or stick out of a
// page width px wide (SVG charts draw their own bounds), and the page itself if it does.
func wider(width int, selector string) string {
	return fmt.Sprintf(`(() => {
		const doc = document.documentElement, out = [];
		if (doc.clientWidth !== %d || doc.scrollWidth > doc.clientWidth) out.push("page " + doc.scrollWidth + " > " + doc.clientWidth);
		for (const e of document.querySelectorAll(%q)) {
			if (e.closest("svg")) continue;
			const what = e.tagName + (e.id ? "#" + e.id : "") + "." + e.className + " " + (e.textContent || "").slice(0, 30);
			if (getComputedStyle(e).display !== "inline" && e.scrollWidth > e.clientWidth + 1) out.push("scrolls: " + what);
			if (e.getBoundingClientRect().right > doc.clientWidth + 0.5) out.push("sticks out: " + what);
		}
		return out;
	})()`, width, selector)
}

// restartable is a local stack served on one loopback address, which a test can restart
// with another configuration on the same data directory, under an open page.
type restartable struct {
	t    *testing.T
	dir  string
	addr string
	base string
	stop func()
}

func startRestartable(t *testing.T, env map[string]string) *restartable {
	r := &restartable{t: t, dir: t.TempDir(), addr: "127.0.0.1:0"}
	r.serve(env)
	t.Cleanup(func() { r.stop() })
	return r
}

func (r *restartable) serve(env map[string]string) {
	s, err := Open(testConfig(r.t, r.dir, env), quietLog())
	if err != nil {
		r.t.Fatal(err)
	}
	base, stop := testenv.Serve(r.t, r.addr, s.Serve)
	r.base, r.addr = base, strings.TrimPrefix(base, "http://")
	r.stop = func() {
		if err := stop(); err != nil {
			r.t.Errorf("serve: %v", err)
		}
		s.Close()
	}
}

// restart stops the stack and serves it again with env, at the same address.
func (r *restartable) restart(env map[string]string) {
	r.stop()
	r.serve(env)
}

// noneOf polls a JavaScript expression that lists problems until it lists none, or
// fails with the last list once within runs out.
func noneOf(t *testing.T, ctx context.Context, what string, within time.Duration, problems string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		found, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](problems))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if len(found) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d found:\n%s", what, len(found), strings.Join(found, "\n"))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// screenshot saves the page as build/artifacts/<name>, the test's artifact.
func screenshot(t *testing.T, browser context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(browser, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	artifact(t, name, png)
}

// viewScreenshot saves what the viewport shows as build/artifacts/<name>.
func viewScreenshot(t *testing.T, browser context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(browser, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	artifact(t, name, png)
}

func artifact(t *testing.T, name string, png []byte) {
	t.Helper()
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
