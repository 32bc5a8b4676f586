package api_test

import (
	"testing"

	"github.com/herald-release/herald/internal/app/apptest"
	"github.com/herald-release/herald/internal/config"
	"github.com/herald-release/herald/internal/db/dbtest"
)

// TestPlanHookAddressRefusesInternalTargets: the release-plan hook goes
// out through the same egress policy as callbacks (CONTRACT §1, §7), so
// saving a hook_address that is loopback, link-local, unspecified or a
// metadata address, however spelled, or not http(s), is a 422 naming
// hook_address, and the settings stay as they were.
func TestPlanHookAddressRefusesInternalTargets(t *testing.T) {
	t.Parallel()
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			testPlanHookAddress(t, apptest.New(t, d, func(c *config.Config) { c.EgressAllow = nil }))
		})
	}
}

func testPlanHookAddress(t *testing.T, e *apptest.Env) {
	good := map[string]any{"enable": true, "enable_callback": false, "hook_address": "https://hooks.example.com/herald",
		"hook_secret": "s3cret-0123456789", "hook_events": []string{"finish_planning"}, "check_timeout": "1h"}
	e.JSON(t, "PUT", hookPath, good, 200, nil)
	_, saved := e.Do(t, "GET", hookPath, nil)
	for _, u := range []string{
		"http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/", "http://100.100.100.200/",
		"http://127.0.0.1:8080/hook", "http://[::1]/", "http://127.1/", "http://0x7f000001/", "http://0177.0.0.1/",
		"http://2130706433/", "http://0.0.0.0/", "http://[::]/", "http://[::ffff:127.0.0.1]/", "http://[fe80::1]/",
		"http://169.254.1.1/", "http://localhost:8080/", "http://hooks.example.com@127.0.0.1/",
		"file:///etc/passwd", "gopher://127.0.0.1:6379/_x", "ftp://hooks.example.com/",
	} {
		body := map[string]any{}
		for k, v := range good {
			body[k] = v
		}
		body["hook_address"] = u
		status, raw := e.Do(t, "PUT", hookPath, body)
		wantErr(t, "hook_address "+u, status, raw, 422, "validation_failed", "hook_address")
	}
	if _, now := e.Do(t, "GET", hookPath, nil); string(now) != string(saved) {
		t.Fatalf("refused settings changed what was saved:\nbefore %s\nafter  %s", saved, now)
	}
}
