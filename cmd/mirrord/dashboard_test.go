package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"mirrord/consensus/state"
	"mirrord/resolver"
)

// chromiumPath is Debian's chromium (.ci/run installs it).
const chromiumPath = "/usr/bin/chromium"

// browser drives one headless chromium tab for a test.
type browser struct {
	t        *testing.T
	ctx      context.Context
	mu       sync.Mutex
	problems []string // uncaught exceptions and console errors (CSP included)
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		// CI (.ci/run) installs chromium and sets MIRRORD_REQUIRE_BROWSER,
		// so there a missing browser fails instead of skipping.
		if os.Getenv("MIRRORD_REQUIRE_BROWSER") != "" {
			t.Fatalf("no browser at %s: %v", chromiumPath, err)
		}
		t.Skipf("no browser at %s (apt-get install chromium): %v", chromiumPath, err)
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("password-store", "basic"),
	)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(func(string, ...any) {}))
	t.Cleanup(func() { cancel(); acancel() })
	b := &browser{t: t, ctx: ctx}
	// The first action starts the browser; it must run without a
	// deadline, which would stop the whole browser.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			// HTTP errors (the 401 and 403 the test provokes) are logged
			// by the network source; anything else is the page's fault.
			if m.IsException() || (m.Type == chromedp.ConsoleError && m.Source != "network") {
				b.mu.Lock()
				b.problems = append(b.problems, m.String())
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// fail reports what the page shows and the console problems.
func (b *browser) fail(format string, args ...any) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 3*time.Second)
	defer cancel()
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	b.mu.Lock()
	defer b.mu.Unlock()
	b.t.Fatalf("%s\n--- page text:\n%s\n--- console problems: %q", fmt.Sprintf(format, args...), text, b.problems)
}

// do runs steps with a deadline.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.fail("%s: %v", what, err)
	}
}

// waitJS waits until the JavaScript expression is truthy.
func (b *browser) waitJS(what, expr string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second)))
	if err != nil {
		b.fail("waiting for %s: %v", what, err)
	}
}

// text returns the text content of the first element matching a CSS
// selector ("" if none).
func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector(`+jsString(sel)+`) || {}).textContent || ""`))
	if err != nil {
		b.fail("read %s: %v", sel, err)
	}
	return s
}

func (b *browser) signIn(token, access string) {
	b.t.Helper()
	b.do("sign in",
		chromedp.WaitVisible(chromedp.ID("token-input")),
		chromedp.SendKeys(chromedp.ID("token-input"), token),
		chromedp.Click(chromedp.ID("login-button")))
	b.waitJS("signed in as "+access, `document.getElementById("access-badge").textContent === `+jsString(access)+
		` && !document.getElementById("who").hidden`)
}

func (b *browser) tab(name string) {
	b.t.Helper()
	b.do("open tab "+name, chromedp.Click(chromedp.CSS(`#tabs a[data-tab="`+name+`"]`)), chromedp.WaitVisible(chromedp.ID("view-"+name)))
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestDashboard drives the dashboard in chromium on a two-node cluster
// with a 10% rollout: the cluster view lists both nodes; the rollout
// chart draws the installs and failures devices report while the page is
// open, and per-node bars; the device lookup explains a cohort decision;
// a read-only token views but its pause is refused with a visible error;
// the admin token pauses the rollout after a confirm step. With
// MIRRORD_SCREENSHOT=1 it saves docs/dashboard.png.
func TestDashboard(t *testing.T) {
	started := time.Now()
	vec := vectors(t)
	b := newBrowser(t)
	a := startNodeWith(t, "", fastStats)
	tok := strings.Fields(a.cli(t, "cluster", "token"))[0]
	n2 := joinNode(t, a.url, tok, fastStats)

	const app = "com.example.dash"
	a.cli(t, "app", "create", app)
	a.cli(t, "publish", "--app", app, "--version", "1.0.1", "--channel", "production", filepath.Join(vec, "src-1.0.1"))
	a.cli(t, "publish", "--app", app, "--version", "1.0.2", filepath.Join(vec, "src-1.0.2"))
	a.cli(t, "rollout", "start", app, "production", "--version", "1.0.2", "--percent", "10")
	waitRecording(t, []*testNode{a, n2}, app)
	// A read-only token made on the other node works on this one.
	ro := strings.TrimSpace(strings.SplitN(n2.cli(t, "token", "create", "--read-only"), "\n", 2)[0])
	rid := rolloutAt(t, a, app, "production").Rollout.ID
	var ids []string
	for _, n := range a.status(t).Nodes {
		ids = append(ids, n.ID)
	}
	if len(ids) != 2 {
		t.Fatalf("status lists %d nodes", len(ids))
	}

	// Devices check on both nodes; some of them report, each to the node
	// that answered it the rollout release (a node counts only those).
	fc := newFleetClient(t, app)
	inCohort := map[string][]string{} // node URL -> devices it answered 1.0.2
	checks := 0
	for i := 0; len(inCohort[a.url]) < 8 || len(inCohort[n2.url]) < 8; i++ {
		checks++
		url := []string{a.url, n2.url}[i%2]
		if resolver.CohortSlot(deviceID(i), rid) < 1000 {
			inCohort[url] = append(inCohort[url], deviceID(i))
		}
		if v := fc.check(url, deviceID(i), "builtin"); v != "1.0.1" && v != "1.0.2" {
			t.Fatalf("device %d got %q", i, v)
		}
	}
	installs, failures := 0, 0
	used := map[string]int{}
	next := func(url string) string {
		devs := inCohort[url]
		used[url]++
		return devs[(used[url]-1)%len(devs)]
	}
	report := func(url string, set, fail int) {
		for range set {
			fc.stat(url, next(url), "set", "1.0.2")
			installs++
		}
		for range fail {
			fc.stat(url, next(url), "update_fail", "1.0.2")
			failures++
		}
	}
	report(a.url, 2, 0)
	report(n2.url, 1, 1)

	// Admin: the cluster view lists both nodes.
	b.do("open the dashboard", chromedp.Navigate(a.url+"/?poll=300"))
	b.waitJS("the redirect to /ui/", `location.pathname === "/ui/"`)
	b.signIn(a.token, "admin")
	b.waitJS("both nodes and a leader in the cluster view", `(() => {
		const t = document.getElementById("nodes-table").textContent;
		return t.includes(`+jsString(ids[0])+`) && t.includes(`+jsString(ids[1])+`) && t.includes("Leader");
	})()`)
	if got := b.text("#cluster-cards"); !strings.Contains(got, "Nodes2") {
		t.Errorf("cluster cards: %q", got)
	}

	// Rollouts: the chart follows what devices report while the page is
	// open, one wave at a time.
	b.tab("rollouts")
	card := `.rollout[data-app="` + app + `"][data-channel="production"]`
	chart := func() string {
		return `document.querySelector('` + card + ` svg.chart-timeline[data-version="1.0.2"]')`
	}
	waitChart := func() {
		t.Helper()
		b.waitJS(fmt.Sprintf("the chart at %d installs and %d failures", installs, failures), `(() => {
			const s = `+chart()+`;
			return s && s.dataset.installs === "`+fmt.Sprint(installs)+`" && s.dataset.failures === "`+fmt.Sprint(failures)+`" &&
				s.querySelectorAll("circle.pt-installs").length >= 1;
		})()`)
	}
	waitChart()
	report(a.url, 2, 1)
	report(n2.url, 2, 0)
	waitChart()
	report(a.url, 1, 1)
	report(n2.url, 1, 0)
	waitChart()
	b.waitJS("a line per series and per-node bars for both nodes", `(() => {
		const s = `+chart()+`;
		const n = document.querySelector('`+card+` svg.chart-nodes[data-version="1.0.2"]');
		return Number(s.dataset.points) >= 3 && s.querySelector("polyline.line-installs") && s.querySelector("polyline.line-failures") &&
			n && n.dataset.nodes === "2" && n.querySelectorAll("rect.bar-installs").length === 2;
	})()`)
	if got := b.text(card); !strings.Contains(got, "10.00%") || !strings.Contains(got, "active") || !strings.Contains(got, rid) {
		t.Errorf("rollout card: %q", got)
	}
	if os.Getenv("MIRRORD_SCREENSHOT") == "1" {
		// A short viewport, so the image is the page without the empty
		// space below it.
		ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
		err := chromedp.Do(ctx, chromedp.EmulateViewport(1400, 400))
		var png []byte
		if err == nil {
			png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
		}
		if err == nil {
			err = chromedp.Do(ctx, chromedp.EmulateReset())
		}
		cancel()
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "dashboard.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote docs/dashboard.png (%d bytes)", len(png))
	}

	// Apps: the hourly history of the last day, then of the week, per
	// version: the installs, failures and update checks of this test.
	b.tab("apps")
	history := func(metric, total string) string {
		return `(() => {
			const s = document.querySelector('#history svg.chart-history[data-metric="` + metric + `"]');
			return s && s.dataset.total === "` + total + `" ? s : null;
		})()`
	}
	b.waitJS("the history of the last day", history("installs", fmt.Sprint(installs))+` && `+history("failures", fmt.Sprint(failures))+
		` && `+history("offered", fmt.Sprint(checks))+` && `+history("installs", fmt.Sprint(installs))+`.dataset.hours === "25"`)
	b.waitJS("a line per version", `(() => {
		const s = `+history("installs", fmt.Sprint(installs))+`;
		const v = s.querySelector('g.hist-series[data-version="1.0.2"]');
		return !!(v && v.dataset.total === "`+fmt.Sprint(installs)+`" && v.querySelector("polyline.hist-line") &&
			document.querySelector('#history .legend [data-version="1.0.2"]'));
	})()`)
	b.do("show the week", chromedp.Click(chromedp.CSS(`#history button[data-range="7d"]`)))
	b.waitJS("the history of the last week", history("installs", fmt.Sprint(installs))+`.dataset.hours === "169" && `+
		`document.getElementById("history-title").textContent.includes("last week")`)
	b.do("back to the day", chromedp.Click(chromedp.CSS(`#history button[data-range="24h"]`)))
	b.waitJS("the day again", history("installs", fmt.Sprint(installs))+`.dataset.hours === "25"`)

	// Device lookup: a device in the cohort, and why.
	b.tab("lookup")
	dev := inCohort[a.url][0]
	b.waitJS("the app in the lookup form", `document.getElementById("lookup-app").value === `+jsString(app))
	b.do("look a device up",
		chromedp.SendKeys(chromedp.ID("lookup-device"), dev),
		chromedp.Click(chromedp.ID("lookup-button")),
		chromedp.WaitVisible(chromedp.ID("lookup-result")))
	want := fmt.Sprintf("in the 10.00%% cohort of rollout %s (slot %04d < 1000)", rid, resolver.CohortSlot(dev, rid))
	b.waitJS("the lookup explanation", `document.getElementById("lookup-explanation").textContent.includes(`+jsString(want)+`)`)
	if got := b.text("#lookup-headline"); got != "\u2192 1.0.2" {
		t.Errorf("lookup headline %q", got)
	}
	if got := b.text("#lookup-explanation"); !strings.HasPrefix(got, "Gets 1.0.2: channel production") {
		t.Errorf("lookup explanation %q", got)
	}

	// Read-only: views the cluster, but pausing is refused, visibly.
	b.do("sign out", chromedp.Click(chromedp.ID("logout")))
	b.signIn(ro, "read-only")
	b.tab("cluster")
	b.waitJS("both nodes for the read-only token", `(() => {
		const t = document.getElementById("nodes-table").textContent;
		return t.includes(`+jsString(ids[0])+`) && t.includes(`+jsString(ids[1])+`);
	})()`)
	b.tab("rollouts")
	pause := chromedp.CSS(card + ` button[data-action="pause"]`)
	b.do("pause as read-only", chromedp.Click(pause), chromedp.WaitVisible(chromedp.ID("modal-ok")), chromedp.Click(chromedp.ID("modal-ok")))
	b.waitJS("the refusal", `(() => {
		const f = document.getElementById("flash");
		return !f.hidden && f.classList.contains("error") && f.textContent.includes("read-only token");
	})()`)
	if s := rolloutAt(t, a, app, "production").Rollout.State; s != state.RolloutActive {
		t.Fatalf("after the read-only pause the rollout is %s", s)
	}

	// Admin: cancel first, then confirm.
	b.do("sign out", chromedp.Click(chromedp.ID("logout")))
	b.signIn(a.token, "admin")
	b.do("pause, then cancel", chromedp.Click(pause), chromedp.WaitVisible(chromedp.ID("modal-cancel")), chromedp.Click(chromedp.ID("modal-cancel")))
	b.waitJS("the dialog closed", `document.getElementById("modal").hidden`)
	if s := rolloutAt(t, a, app, "production").Rollout.State; s != state.RolloutActive {
		t.Fatalf("after a cancelled pause the rollout is %s", s)
	}
	b.do("pause and confirm", chromedp.Click(pause), chromedp.WaitVisible(chromedp.ID("modal-ok")), chromedp.Click(chromedp.ID("modal-ok")))
	b.waitJS("the pause acknowledged and shown", `(() => {
		const f = document.getElementById("flash");
		const badge = document.querySelector('`+card+` .badge');
		return !f.hidden && !f.classList.contains("error") && f.textContent.includes("paused") && badge && badge.textContent === "paused";
	})()`)
	if s := rolloutAt(t, n2, app, "production").Rollout.State; s != state.RolloutPaused {
		t.Fatalf("after the pause the rollout is %s on the other node", s)
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.problems) > 0 {
		t.Errorf("the page logged errors (CSP violations or exceptions): %q", b.problems)
	}
	t.Logf("dashboard test took %s", time.Since(started).Round(time.Millisecond))
}
