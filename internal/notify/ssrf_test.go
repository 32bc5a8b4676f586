package notify_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/herald-release/herald/internal/app"
	"github.com/herald-release/herald/internal/app/apptest"
	"github.com/herald-release/herald/internal/config"
	"github.com/herald-release/herald/internal/db/dbtest"
	"github.com/herald-release/herald/internal/notify"
	"github.com/herald-release/herald/internal/page"
	"github.com/herald-release/herald/internal/testsupport"
)

// SSRF end to end (CONTRACT §1, HERALD_EGRESS_ALLOW): a callback target
// that is loopback, link-local, unspecified or a cloud metadata address,
// however it is spelled, is refused when the configuration is saved (422
// naming the field); one that gets past saving (a name, a policy tightened
// since) is refused when the delivery connects, and history says why; and
// a redirect towards such a target is never followed.

// refusedTargets are hosts (with port) the default policy refuses.
var refusedTargets = []string{
	"169.254.169.254", "[fd00:ec2::254]", "100.100.100.200", "169.254.1.1", "[fe80::1]",
	"127.0.0.1:8080", "127.8.9.10", "[::1]", "127.1", "0x7f000001", "0177.0.0.1", "2130706433",
	"0.0.0.0", "[::]", "0", "[::ffff:127.0.0.1]", "[::ffff:169.254.169.254]",
	"localhost", "LocalHost.", "herald.localhost",
	"hooks.example.com@127.0.0.1", "user:pass@169.254.169.254",
}

// targetField is where a channel type takes a target URL: the channel for
// a URL, and the field named in errors.
type targetField struct {
	field   string
	channel func(target string) map[string]any
}

var targetFields = []targetField{
	{"webhook_url", func(u string) map[string]any {
		return map[string]any{"type": "dingtalk", "config": map[string]any{"webhook_url": u + "/robot/send?access_token=tok"}}
	}},
	{"webhook_url", func(u string) map[string]any {
		return map[string]any{"type": "feishu", "config": map[string]any{"webhook_url": u + "/open-apis/bot/v2/hook/abc"}}
	}},
	{"webhook_url", func(u string) map[string]any {
		return map[string]any{"type": "wechat", "config": map[string]any{"webhook_url": u + "/cgi-bin/webhook/send?key=k"}}
	}},
	{"api_base_url", func(u string) map[string]any {
		return map[string]any{"type": "wechat", "config": map[string]any{"corp_id": "ww1", "agent_id": 1000002, "secret": "s", "api_base_url": u}}
	}},
	{"url", func(u string) map[string]any {
		return map[string]any{"type": "custom", "config": map[string]any{"url": u + "/hook"}}
	}},
}

func strictPolicy(c *config.Config) { c.EgressAllow = nil }

// wantFieldError checks a 422 naming field.
func wantFieldError(t *testing.T, what string, status int, raw []byte, field string) {
	t.Helper()
	var b struct {
		Error struct {
			Code    string `json:"code"`
			Details []struct {
				Field, Message string
			} `json:"details"`
		} `json:"error"`
	}
	_ = json.Unmarshal(raw, &b)
	named := slices.ContainsFunc(b.Error.Details, func(d struct{ Field, Message string }) bool { return d.Field == field && d.Message != "" })
	if status != http.StatusUnprocessableEntity || b.Error.Code != "validation_failed" || !named {
		t.Errorf("%s: %d %s; want 422 validation_failed naming %s", what, status, raw, field)
	}
}

func TestSaveRefusesTargetsOfTheDefaultPolicy(t *testing.T) {
	t.Parallel()
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			env := apptest.New(t, d, strictPolicy)
			createProject(t, env, "app")
			// An update is refused the same way, and keeps what was saved.
			var cfg notify.Config
			env.JSON(t, "POST", "/api/v1/release/projects/app/callbacks", map[string]any{
				"channels": []map[string]any{{"type": "custom", "config": map[string]any{"url": "https://hooks.example.com/herald"}}},
			}, 201, &cfg)

			var urls []string
			for _, host := range refusedTargets {
				urls = append(urls, "http://"+host, "https://"+host)
			}
			for _, tf := range targetFields {
				for _, u := range urls {
					ch := tf.channel(u)
					field := "channels[0].config." + tf.field
					body := map[string]any{"channels": []map[string]any{ch}}
					status, raw := env.Do(t, "POST", "/api/v1/release/callbacks", body)
					wantFieldError(t, "create "+ch["type"].(string)+" "+u, status, raw, field)
					status, raw = env.Do(t, "PUT", "/api/v1/release/callbacks/"+cfg.ID, body)
					wantFieldError(t, "update "+ch["type"].(string)+" "+u, status, raw, field)
				}
			}
			// Schemes other than http(s) are refused before any address.
			for _, u := range []string{"file:///etc/passwd", "gopher://127.0.0.1:6379/_FLUSHALL", "ftp://hooks.example.com/x",
				"FILE://localhost/etc/passwd", "dict://127.0.0.1:11211/", "//hooks.example.com/x", "hooks.example.com/x"} {
				for _, tf := range targetFields {
					ch := tf.channel(u)
					status, raw := env.Do(t, "POST", "/api/v1/release/callbacks", map[string]any{"channels": []map[string]any{ch}})
					wantFieldError(t, "create "+ch["type"].(string)+" "+u, status, raw, "channels[0].config."+tf.field)
				}
			}

			var all page.Page[*notify.Config]
			env.JSON(t, "GET", "/api/v1/release/callbacks", nil, 200, &all)
			if len(all.Items) != 1 || all.Items[0].UpdatedAt != cfg.UpdatedAt {
				t.Fatalf("refused bodies changed the configurations: %+v", all.Items)
			}
		})
	}
}

// quietApp opens Herald on url and dir with the given egress allowances,
// serving the API but running no background work, until stop.
func quietApp(t *testing.T, url, dir string, allow []string) (env *apptest.Env, stop func()) {
	t.Helper()
	cfg, err := config.Load("test", []string{
		"--database-url", url, "--data-dir", dir,
		"--secret-key", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
		"--admin-token", apptest.AdminToken, "--admin-password", "test-password",
	}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg.EgressAllow = allow
	a, err := app.Open(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	return &apptest.Env{App: a, Server: srv, URL: srv.URL, Token: apptest.AdminToken}, func() {
		srv.Close()
		a.Close()
	}
}

// TestDeliveryRefusesTargetsAtConnect: configurations saved while the
// policy allowed loopback and metadata addresses, delivered after a restart
// under the default policy. Each target is refused when the worker
// connects (a name like localhost, by the address it resolves to), the
// attempt fails for good, history says why, and nothing is reached.
func TestDeliveryRefusesTargetsAtConnect(t *testing.T) {
	t.Parallel()
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			rcv := testsupport.NewReceiver(t)
			_, port, _ := net.SplitHostPort(strings.TrimPrefix(rcv.URL(), "http://"))
			url, dir := dbtest.URL(t, d), t.TempDir()

			before, stop := quietApp(t, url, dir, []string{"127.0.0.0/8", "::1/128", "169.254.169.254/32", "fd00:ec2::254/128"})
			createProject(t, before, "app")
			targets := []string{
				"http://127.0.0.1:" + port + "/literal",
				"http://localhost:" + port + "/name",
				"http://[::1]:" + port + "/v6",
				"http://169.254.169.254/latest/meta-data/",
				"http://[fd00:ec2::254]/latest/meta-data/",
			}
			var channels []map[string]any
			for _, u := range targets {
				channels = append(channels, map[string]any{"type": "custom", "config": map[string]any{"url": u, "retry_count": 3, "retry_interval": 1}})
			}
			channels = append(channels, map[string]any{"type": "dingtalk", "config": map[string]any{
				"webhook_url": "http://localhost:" + port + "/robot/send?access_token=tok0123456789abcdef"}})
			var cfg notify.Config
			before.JSON(t, "POST", "/api/v1/release/projects/app/callbacks", map[string]any{"events": []string{"version_created"}, "channels": channels}, 201, &cfg)
			stop()

			env := apptest.New(t, d, func(c *config.Config) { c.DatabaseURL, c.DataDir, c.EgressAllow = url, dir, nil })
			env.JSON(t, "POST", "/api/v1/release/projects/app/versions", map[string]any{"name": "v1"}, 201, nil)
			c := &faultCase{env: env, project: "app", config: cfg}
			es := c.waitHistory(t, "an attempt per channel", func(es []*notify.Entry) bool { return len(es) >= len(channels) })
			if len(es) != len(channels) {
				t.Fatalf("history: %s\nwant one attempt per channel", describeAttempts(es))
			}
			for _, e := range es {
				if e.Status != "failed" || e.Attempt != 1 || e.NextAttemptAt != nil || e.StatusCode != 0 ||
					!strings.Contains(e.Error, "egress refused") || !strings.Contains(e.Error, "HERALD_EGRESS_ALLOW") {
					t.Errorf("%s attempt: %s\nwant failed for good by the egress policy, naming HERALD_EGRESS_ALLOW", e.ChannelType, describeAttempts([]*notify.Entry{e}))
				}
				if strings.Contains(e.Error, "tok0123456789abcdef") {
					t.Errorf("the error shows the robot's token: %s", e.Error)
				}
			}
			if rcv.Count() != 0 {
				t.Fatalf("the loopback receiver got %d requests", rcv.Count())
			}
		})
	}
}

// TestRedirectsToRefusedTargetsAreNotFollowed: the receiver is allowed
// (HERALD_EGRESS_ALLOW=127.0.0.1/32) and answers with a redirect to a
// metadata address, another loopback address or a file: URL; the delivery
// fails with the redirect in history, and the target sees nothing.
func TestRedirectsToRefusedTargetsAreNotFollowed(t *testing.T) {
	t.Parallel()
	var innerHits atomic.Int64
	inner := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { innerHits.Add(1) }))
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	inner.Listener = ln
	inner.Start()
	t.Cleanup(inner.Close)

	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			env := apptest.New(t, d, func(c *config.Config) { c.EgressAllow = []string{"127.0.0.1/32"} })
			// The inner server itself cannot be saved as a target.
			status, raw := env.Do(t, "POST", "/api/v1/release/callbacks", map[string]any{
				"channels": []map[string]any{{"type": "custom", "config": map[string]any{"url": inner.URL + "/x"}}}})
			wantFieldError(t, "the inner server", status, raw, "channels[0].config.url")

			for _, tc := range []struct {
				status   int
				location string
			}{
				{http.StatusFound, "http://169.254.169.254/latest/meta-data/iam/security-credentials/"},
				{http.StatusTemporaryRedirect, inner.URL + "/admin"},
				{http.StatusPermanentRedirect, "http://[fd00:ec2::254]/latest/meta-data/"},
				{http.StatusMovedPermanently, "file:///etc/passwd"},
				{http.StatusSeeOther, "http://localhost/admin?token=secret-in-location"},
			} {
				rcv := testsupport.NewReceiver(t)
				rcv.SetDefault(testsupport.Reply{Status: tc.status, Header: map[string]string{"Location": tc.location}})
				c := newFaultCase(t, env, customChannel(rcv.URL()+"/hook"))
				c.release(t, "v1")
				e := wantFailedOnce(t, c, "redirect", "not followed")
				if e.StatusCode != tc.status || rcv.Count() != 1 {
					t.Errorf("%d to %s: status %d, %d requests", tc.status, tc.location, e.StatusCode, rcv.Count())
				}
				if strings.Contains(e.Error, "secret-in-location") {
					t.Errorf("the error shows the Location's token: %s", e.Error)
				}
			}
			if innerHits.Load() != 0 {
				t.Fatalf("a redirect was followed to the inner server (%d requests)", innerHits.Load())
			}
		})
	}
}
