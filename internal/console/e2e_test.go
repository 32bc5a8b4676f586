package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/herald-release/herald/internal/app/apptest"
	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/testsupport"
)

// chromium finds Debian's chromium; the browser tests skip without it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	t.Skip("chromium is not installed (apt-get install chromium): skipping the console's browser tests")
	return ""
}

// ui is a headless Chromium tab on a test Herald.
type ui struct {
	t     *testing.T
	ctx   context.Context
	env   *apptest.Env
	shots string
	n     int

	mu       sync.Mutex
	problems []string
}

func newUI(t *testing.T, env *apptest.Env) *ui {
	t.Helper()
	exe := chromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium %s: %v", exe, err)
	}
	dir := os.Getenv("HERALD_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.ArtifactDir()
	} else {
		dir = filepath.Join(dir, t.Name())
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots: %s", dir)
	u := &ui{t: t, ctx: ctx, env: env, shots: dir}

	// Every script error and every refused resource (a CSP violation, a
	// 404 asset) fails the test.
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || m.Type == chromedp.ConsoleError {
				u.mu.Lock()
				u.problems = append(u.problems, fmt.Sprintf("%s (%s:%d)", m.Text, m.URL, m.Line+1))
				u.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		u.mu.Lock()
		defer u.mu.Unlock()
		for _, p := range u.problems {
			// A page that answers 4xx on purpose is logged by the browser
			// as a failed resource; those are expected.
			if strings.Contains(p, "status of 4") {
				continue
			}
			t.Errorf("browser console: %s", p)
		}
	})
	return u
}

// do runs steps with a time limit, failing the test with what was being done.
func (u *ui) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 45*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		u.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		dctx, dcancel := context.WithTimeout(u.ctx, 5*time.Second)
		defer dcancel()
		loc, _ := chromedp.Run(dctx, chromedp.Location())
		body, _ := chromedp.Run(dctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		u.t.Fatalf("%s: %v\nat %s\n%s", what, err, loc, body)
	}
}

func (u *ui) text(sel string) string {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		u.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// waitJS waits until a JavaScript expression is true, across page loads
// (a form's answer may still be on its way).
func (u *ui) waitJS(what, expr string) {
	u.t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(u.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(function () { try { return !!(`+expr+`); } catch (e) { return false; } })()`))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			u.do(what, func(context.Context, *chromedp.Target) (chromedp.Void, error) {
				return chromedp.Void{}, fmt.Errorf("still not true after 45s: %s (last error: %v)", expr, err)
			})
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (u *ui) shot(name string) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		u.t.Logf("screenshot %s: %v", name, err)
		return
	}
	u.n++
	p := filepath.Join(u.shots, fmt.Sprintf("%02d-%s.png", u.n, name))
	if err := os.WriteFile(p, png, 0o644); err != nil {
		u.t.Errorf("save screenshot: %v", err)
	}
}

func (u *ui) open(path string) {
	u.t.Helper()
	u.do("open "+path, chromedp.Navigate(u.env.URL+path), chromedp.WaitReady(chromedp.CSS("body")))
}

func css(s string) chromedp.CSS { return chromedp.CSS(s) }

func attr(name, value string) chromedp.CSS { return css(fmt.Sprintf(`[%s=%q]`, name, value)) }

// The console end to end, in a browser, against a whole Herald: log in,
// create a project, add a DingTalk callback (the fake checks the
// signature), press Test, see the history; then run a canary release,
// watch it pause, promote it, and see it succeed with its notifications.
func TestBrowser(t *testing.T) {
	t.Parallel()
	chromium(t)
	env := apptest.New(t, db.SQLite)
	ding := testsupport.NewDingTalk(t, "SECe2e-sign-secret")
	u := newUI(t, env)

	// Log in.
	u.open("/projects")
	u.do("log in",
		chromedp.WaitVisible(css("#login-name")),
		chromedp.SendKeys(css("#login-name"), "admin"),
		chromedp.SendKeys(css("#login-password"), adminPassword),
	)
	u.shot("login")
	u.do("submit the login", chromedp.Click(css(".login button[type=submit]")), chromedp.WaitVisible(css(`form[action="/projects"]`)))

	// Create a project.
	u.do("create a project",
		chromedp.SendKeys(css(`form[action="/projects"] [name="name"]`), "Web Shop"),
		chromedp.SendKeys(css(`form[action="/projects"] [name="description"]`), "The customer-facing shop"),
		chromedp.Click(css(`form[action="/projects"] button.primary`)),
		chromedp.WaitVisible(css(`a[href="/projects/web-shop/callbacks"]`)),
	)
	u.shot("project")

	// A DingTalk callback for the project, first with a mistake the API
	// finds, shown on the input.
	u.do("open the project's callbacks",
		chromedp.Click(css(`a[href="/projects/web-shop/callbacks"]`)),
		chromedp.WaitVisible(css(`a[href="/callbacks/new?project_id=web-shop"]`)),
		chromedp.Click(css(`a[href="/callbacks/new?project_id=web-shop"]`)),
		chromedp.WaitVisible(css("#add_type")),
		chromedp.SetValue(css("#add_type"), "dingtalk"),
		chromedp.Click(css(`button[name="op"][value="add"]`)),
		chromedp.WaitVisible(attr("name", "channels[0].config.webhook_url")),
	)
	u.do("fill the callback with a webhook lacking its token",
		chromedp.SendKeys(css(`.callback-form [name="name"]`), "Ops DingTalk"),
		chromedp.SendKeys(attr("name", "channels[0].config.webhook_url"), "https://oapi.dingtalk.com/robot/send"),
		chromedp.Click(css(`.callback-form .form-actions button[value="save"]`)),
		chromedp.WaitVisible(attr("id", "f-channels[0].config.webhook_url-err")),
	)
	if msg := u.text(`[id="f-channels[0].config.webhook_url-err"]`); !strings.Contains(msg, "access_token") {
		t.Fatalf("inline error: %q", msg)
	}
	u.shot("callback-validation")
	u.do("fix and save the callback",
		chromedp.SetValue(attr("name", "channels[0].config.webhook_url"), ding.WebhookURL()),
		chromedp.SendKeys(attr("name", "channels[0].config.sign_secret"), "SECe2e-sign-secret"),
		chromedp.SendKeys(attr("name", "channels[0].config.at_mobiles"), "13800000000"),
		chromedp.Click(css("#ev-canary_started")),
		chromedp.Click(css("#ev-canary_completed")),
		chromedp.Click(css("#ev-full_completed")),
		chromedp.Click(css(`.callback-form .form-actions button[value="save"]`)),
		chromedp.WaitVisible(css("#test-button")),
	)
	page := u.text("main")
	if strings.Contains(page, ding.Token()) || strings.Contains(page, "SECe2e-sign-secret") {
		t.Fatal("the saved configuration shows a secret")
	}
	u.shot("callback-saved")

	// Test: the result shows inline, and the robot got the message.
	u.do("press Test", chromedp.Click(css("#test-button")), chromedp.WaitVisible(css("#test-results .result.r-success")))
	if got := u.text("#test-results"); !strings.Contains(got, "DingTalk") {
		t.Fatalf("test result: %q", got)
	}
	u.shot("callback-test")
	msgs := ding.WaitMessages(t, 1)
	if !strings.Contains(msgs[0].Text, "Web Shop") || len(msgs[0].AtMobiles) != 1 {
		t.Fatalf("DingTalk received %+v", msgs[0])
	}

	// The history shows the entry with its request and response; redeliver
	// it from the page.
	u.open("/history")
	u.do("open a history entry",
		chromedp.WaitVisible(css("tbody.entry")),
		chromedp.Click(css("tbody.entry details summary")),
		chromedp.WaitVisible(css("tbody.entry pre.code")),
	)
	entry := u.text("tbody.entry")
	for _, want := range []string{"canary_started", "DingTalk", "success", "errcode"} {
		if !strings.Contains(entry, want) {
			t.Errorf("history entry lacks %q: %s", want, entry)
		}
	}
	u.shot("history")
	u.do("redeliver", chromedp.Click(css(`tbody.entry form[data-js="redeliver"] button`)))
	u.waitJS("redelivery queued", `document.querySelector('tbody.entry .js-status').textContent.indexOf('Queued') >= 0`)
	ding.WaitMessages(t, 2)

	if status, body := env.Do(t, http.MethodGet, "/api/v1/release/tasks", nil); status == http.StatusNotFound && strings.Contains(string(body), "no route") {
		t.Log("the release engine is not in this build: skipping the release part")
		return
	}

	// An environment with a local executor, four hosts and a version,
	// through the forms.
	u.open("/projects/web-shop")
	u.do("create an environment",
		chromedp.Evaluate[chromedp.Void](`document.querySelectorAll('details.card').forEach(function (d) { d.open = true })`),
		chromedp.SendKeys(css(`form[action="/projects/web-shop/environments"] [name="name"]`), "prod"),
		chromedp.SetValue(css(`form[action="/projects/web-shop/environments"] [name="executor.script"]`),
			"echo \"deploying $HERALD_VERSION to $HERALD_HOST ($HERALD_PHASE)\"; sleep 0.2"),
		chromedp.Click(css(`form[action="/projects/web-shop/environments"] button.primary`)),
		chromedp.WaitVisible(css(`form[action="/projects/web-shop/environments/prod/hosts"]`)),
	)
	u.do("add hosts",
		chromedp.SetValue(css(`[name="hosts"]`), "web-1 127.0.0.1 zone=a\nweb-2 127.0.0.1 zone=a\nweb-3 127.0.0.1 zone=b\nweb-4 127.0.0.1 zone=b"),
		chromedp.Click(css(`form[action="/projects/web-shop/environments/prod/hosts"] button.primary`)),
	)
	u.waitJS("the hosts are listed", `document.querySelectorAll('#hosts-section tbody tr').length === 4`)
	u.shot("environment")
	u.open("/projects/web-shop")
	u.do("create a version",
		chromedp.Evaluate[chromedp.Void](`document.querySelectorAll('details.card').forEach(function (d) { d.open = true })`),
		chromedp.SendKeys(css(`form[action="/projects/web-shop/versions"] [name="name"]`), "v1.2.0"),
		chromedp.SendKeys(css(`form[action="/projects/web-shop/versions"] [name="artifact"]`), "shop:1.2.0"),
		chromedp.Click(css(`form[action="/projects/web-shop/versions"] button.primary`)),
	)
	u.waitJS("the version is listed", `(document.getElementById('versions-section') || {textContent: ''}).textContent.indexOf('shop:1.2.0') >= 0`)

	// Start a canary release of one host, by the form.
	u.open("/tasks/new?project_id=web-shop&environment=prod")
	u.do("fill the release",
		chromedp.WaitVisible(css("#start-task")),
		chromedp.Evaluate[chromedp.Void](`(function () { var s = document.querySelector('[name="version_id"]'); s.selectedIndex = 1; })()`),
	)
	u.shot("start-release")
	u.do("start the release", chromedp.Click(css("#start-task")), chromedp.WaitVisible(css("#task-live")))
	taskID, err := chromedp.Run(u.ctx, chromedp.Evaluate[string](`document.getElementById('task-live').dataset.task`))
	if err != nil || taskID == "" {
		t.Fatalf("task id: %q %v", taskID, err)
	}

	// It pauses after the canary, live, without a reload.
	u.do("see the canary pause", chromedp.WaitVisible(css(`#task-live [data-k="status"] .s-paused`)), chromedp.WaitVisible(css("#promote")))
	u.do("show the canary's output", chromedp.Click(css(`a[data-log]`)))
	u.waitJS("canary output", `(document.querySelector('tr.output-row pre') || {}).textContent.indexOf('deploying v1.2.0') >= 0`)
	u.shot("release-paused")

	// Promote: the rollout runs and the task succeeds.
	u.do("promote", chromedp.Click(css("#promote")), chromedp.WaitVisible(css(`#task-live [data-k="status"] .s-success`)))
	u.waitJS("notifications of the release", `document.getElementById('deliveries').textContent.indexOf('Release completed') >= 0`)
	u.shot("release-success")

	var task struct {
		Status string `json:"status"`
		Counts struct {
			Completed, Total int
		} `json:"counts"`
	}
	env.JSON(t, http.MethodGet, "/api/v1/release/tasks/"+taskID, nil, http.StatusOK, &task)
	if task.Status != "success" || task.Counts.Completed != 4 {
		t.Fatalf("task after promote: %+v", task)
	}
	var hist struct {
		Items []struct {
			EventType string `json:"event_type"`
			Status    string `json:"status"`
		} `json:"items"`
	}
	env.JSON(t, http.MethodGet, "/api/v1/release/tasks/"+taskID+"/callbacks", nil, http.StatusOK, &hist)
	got := map[string]string{}
	for _, e := range hist.Items {
		got[e.EventType] = e.Status
	}
	for _, ev := range []string{"canary_started", "canary_completed", "full_completed"} {
		if got[ev] != "success" {
			t.Errorf("delivery of %s: %q (history %v)", ev, got[ev], got)
		}
	}
	ding.WaitMessages(t, 5)

	u.open("/history?task_id=" + taskID)
	u.do("the task's history", chromedp.WaitVisible(css("tbody.entry")))
	if n, _ := chromedp.Run(u.ctx, chromedp.Evaluate[int](`document.querySelectorAll('tbody.entry').length`)); n != 3 {
		t.Errorf("history of the task shows %d entries, want 3", n)
	}
	u.shot("history-of-release")

	// The same view in Chinese, by the switch.
	u.open("/tasks/" + taskID)
	u.do("switch to Chinese", chromedp.Click(css(`a.lang`)), chromedp.WaitVisible(css(`html[lang="zh-CN"] #task-live`)))
	if s := u.text("h1"); !strings.Contains(s, "成功") {
		t.Errorf("Chinese task title: %q", s)
	}
	u.shot("release-zh")
	raw, _ := json.Marshal(got)
	t.Logf("deliveries of %s: %s", taskID, raw)
	u.do("back to English", chromedp.Click(css(`a.lang`)), chromedp.WaitVisible(css(`html[lang="en"]`)))

	// The list of callbacks tests in place too.
	u.open("/callbacks")
	u.do("test from the list", chromedp.Click(css(`form[data-js="test"] button`)), chromedp.WaitVisible(css(".test-results .result.r-success")))
	u.shot("callbacks")

	// An API token, shown once.
	u.open("/account")
	u.do("create a token",
		chromedp.WaitVisible(css(`form[action$="/tokens"]`)),
		chromedp.SendKeys(css(`form[action$="/tokens"] [name="name"]`), "ci-deploy"),
		chromedp.Click(css(`form[action$="/tokens"] button.primary`)),
		chromedp.WaitVisible(css("#new-token")),
	)
	secret := u.text("#new-token")
	if status, _ := env.DoAs(t, secret, http.MethodGet, "/api/v1/me", nil); status != http.StatusOK {
		t.Fatalf("the token shown does not work: %d", status)
	}
	u.shot("token")
}
