package notify_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/herald-release/herald/internal/app/apptest"
	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/db/dbtest"
	"github.com/herald-release/herald/internal/notify"
	"github.com/herald-release/herald/internal/page"
	"github.com/herald-release/herald/internal/testsupport"
)

// eventually polls cond until it holds or 15s pass. Deliveries happen on
// worker goroutines; history is the observable outcome.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func history(t *testing.T, env *apptest.Env, query string) []*notify.Entry {
	t.Helper()
	var p page.Page[*notify.Entry]
	env.JSON(t, "GET", "/api/v1/release/callbacks/history?"+query, nil, 200, &p)
	return p.Items
}

func eachDialect(t *testing.T, fn func(t *testing.T, env *apptest.Env)) {
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			fn(t, apptest.New(t, d))
		})
	}
}

func createProject(t *testing.T, env *apptest.Env, id string) {
	t.Helper()
	env.JSON(t, "POST", "/api/v1/release/projects", map[string]any{"id": id, "name": "App " + id}, 201, nil)
}

func TestEventsReachSubscribedChannelsSignedAndMasked(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, env *apptest.Env) {
		ding := testsupport.NewDingTalk(t, "SECding")
		fei := testsupport.NewFeishu(t, "SECfei")
		createProject(t, env, "app")

		var projCfg notify.Config
		env.JSON(t, "POST", "/api/v1/release/projects/app/callbacks", map[string]any{
			"name":   "team robot",
			"events": []string{"project_updated"},
			"channels": []map[string]any{{"type": "dingtalk", "enabled": true, "config": map[string]any{
				"webhook_url": ding.WebhookURL(), "sign_secret": "SECding", "at_mobiles": []string{"13800000000"}}}},
		}, 201, &projCfg)
		var globalCfg notify.Config
		env.JSON(t, "POST", "/api/v1/release/callbacks", map[string]any{
			"channels": []map[string]any{{"type": "feishu", "config": map[string]any{
				"webhook_url": fei.WebhookURL(), "sign_secret": "SECfei"}}},
		}, 201, &globalCfg)
		if globalCfg.ProjectID != "" || !globalCfg.Enabled || len(globalCfg.Events) != 0 {
			t.Fatalf("global config = %+v", globalCfg)
		}

		// Secrets are masked in every response.
		for _, raw := range []notify.Config{projCfg, globalCfg} {
			b, _ := json.Marshal(raw)
			for _, s := range []string{"SECding", "SECfei", ding.Token(), fei.HookID()} {
				if strings.Contains(string(b), s) {
					t.Fatalf("response shows secret %q: %s", s, b)
				}
			}
		}

		env.JSON(t, "PUT", "/api/v1/release/projects/app", map[string]any{"name": "App renamed"}, 200, nil)
		env.JSON(t, "POST", "/api/v1/release/projects/app/versions", map[string]any{"name": "v1"}, 201, nil)

		// DingTalk subscribed to project_updated only; Feishu (global, all
		// events) hears project_created, project_updated and version_created.
		dm := ding.WaitMessages(t, 1)
		if !strings.Contains(dm[0].Text, "App renamed") || !strings.Contains(dm[0].Text, "@13800000000") {
			t.Fatalf("dingtalk message lacks the project or the mention: %q", dm[0].Text)
		}
		fei.WaitMessages(t, 2)
		eventually(t, "history of both deliveries", func() bool {
			return len(history(t, env, "status=success&channel_type=dingtalk")) == 1 &&
				len(history(t, env, "status=success&channel_type=feishu")) == 2
		})
		if n := ding.Requests(); n != 1 {
			t.Fatalf("dingtalk got %d requests; version_created is not subscribed", n)
		}

		// History never holds a secret.
		all := history(t, env, "limit=500")
		b, _ := json.Marshal(all)
		for _, s := range []string{"SECding", "SECfei", ding.Token(), fei.HookID()} {
			if strings.Contains(string(b), s) {
				t.Fatalf("history holds secret %q", s)
			}
		}

		// A PUT that sends back what GET showed keeps the secrets working.
		var shown notify.Config
		env.JSON(t, "GET", "/api/v1/release/callbacks/"+projCfg.ID, nil, 200, &shown)
		body := map[string]any{"name": shown.Name, "events": []string{"project_updated"}, "channels": shown.Channels}
		env.JSON(t, "PUT", "/api/v1/release/callbacks/"+projCfg.ID, body, 200, nil)
		env.JSON(t, "PUT", "/api/v1/release/projects/app", map[string]any{"name": "App again"}, 200, nil)
		ding.WaitMessages(t, 2)
	})
}

func TestRetryLaterCodesRetryAndPermanentCodesFail(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, env *apptest.Env) {
		ding := testsupport.NewDingTalk(t, "s3cret")
		createProject(t, env, "app")
		var cfg notify.Config
		env.JSON(t, "POST", "/api/v1/release/projects/app/callbacks", map[string]any{
			"events":   []string{"version_created"},
			"channels": []map[string]any{{"type": "dingtalk", "config": map[string]any{"webhook_url": ding.WebhookURL(), "sign_secret": "s3cret"}}},
		}, 201, &cfg)

		ding.FailNext(1, -1, "系统繁忙")
		env.JSON(t, "POST", "/api/v1/release/projects/app/versions", map[string]any{"name": "v1"}, 201, nil)
		ding.WaitMessages(t, 1)
		var entries []*notify.Entry
		eventually(t, "two attempts in history", func() bool {
			entries = history(t, env, "config_id="+cfg.ID)
			return len(entries) == 2 && entries[0].Status == "success"
		})
		first := entries[1]
		if first.Status != "pending" || first.Attempt != 1 || first.NextAttemptAt == nil || !strings.Contains(first.Error, "-1") {
			t.Fatalf("first attempt = %+v; want pending with next_attempt_at and the platform code", first)
		}
		if entries[0].Attempt != 2 || entries[0].DeliveryID != first.DeliveryID || entries[0].EventID != first.EventID {
			t.Fatalf("second attempt = %+v", entries[0])
		}

		ding.FailNext(1, 310000, "sign not match")
		env.JSON(t, "POST", "/api/v1/release/projects/app/versions", map[string]any{"name": "v2"}, 201, nil)
		eventually(t, "a failed attempt", func() bool { return len(history(t, env, "status=failed")) == 1 })
		failed := history(t, env, "status=failed")[0]
		if failed.Attempt != 1 || !strings.Contains(failed.Error, "310000") || failed.NextAttemptAt != nil {
			t.Fatalf("permanent failure = %+v; want one attempt, the code, no retry", failed)
		}

		// DingTalk throttles a robot for 10 minutes after 130101: the retry
		// waits that long instead of hammering it.
		ding.FailNext(1, 130101, "send too fast")
		env.JSON(t, "POST", "/api/v1/release/projects/app/versions", map[string]any{"name": "v3"}, 201, nil)
		eventually(t, "a throttled attempt", func() bool { return len(history(t, env, "status=pending&config_id="+cfg.ID)) == 2 })
		throttled := history(t, env, "status=pending&config_id="+cfg.ID)[0]
		if throttled.NextAttemptAt == nil || time.Until(*throttled.NextAttemptAt) < 9*time.Minute {
			t.Fatalf("after 130101 the next attempt is at %v; want about 10 minutes ahead", throttled.NextAttemptAt)
		}

		// Redeliver sends the same event again as a new delivery.
		var red map[string]string
		env.JSON(t, "POST", "/api/v1/release/callbacks/history/"+failed.ID+"/redeliver", nil, 202, &red)
		eventually(t, "the redelivery", func() bool {
			for _, e := range history(t, env, "event_id="+failed.EventID) {
				if e.DeliveryID == red["delivery_id"] && e.Status == "success" {
					return true
				}
			}
			return false
		})
	})
}

func TestTestButtonSendsThroughEveryChannel(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, env *apptest.Env) {
		ding := testsupport.NewDingTalk(t, "k")
		bad := testsupport.NewFeishu(t, "right")
		var cfg notify.Config
		env.JSON(t, "POST", "/api/v1/release/callbacks", map[string]any{
			"channels": []map[string]any{
				{"type": "dingtalk", "config": map[string]any{"webhook_url": ding.WebhookURL(), "sign_secret": "k"}},
				{"type": "feishu", "config": map[string]any{"webhook_url": bad.WebhookURL(), "sign_secret": "wrong"}},
			},
		}, 201, &cfg)
		var rep notify.TestReport
		env.JSON(t, "POST", "/api/v1/release/callbacks/"+cfg.ID+"/test", nil, 200, &rep)
		if len(rep.Results) != 2 || rep.Results[0].ChannelType != "dingtalk" || rep.Results[0].Status != "success" {
			t.Fatalf("test report = %+v", rep)
		}
		if rep.Results[1].Status != "failed" || !strings.Contains(rep.Results[1].Error, "19021") {
			t.Fatalf("feishu with a wrong secret should fail with 19021: %+v", rep.Results[1])
		}
		msgs := ding.Messages()
		if len(msgs) != 1 || !strings.Contains(msgs[0].Text, "v1.2.3") {
			t.Fatalf("dingtalk got %+v", msgs)
		}
		hist := history(t, env, "config_id="+cfg.ID+"&event_type=canary_started")
		if len(hist) != 2 {
			t.Fatalf("test attempts in history: %d, want 2", len(hist))
		}
	})
}

func TestConfigValidationNamesTheField(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, db.SQLite)
	cases := []struct {
		body  string
		field string
	}{
		{`{"channels":[{"type":"dingtalk","config":{"webhook_url":"not a url"}}]}`, "channels[0].config.webhook_url"},
		{`{"channels":[{"type":"dingtalk","config":{"webhook_url":"http://169.254.169.254/robot/send?access_token=x"}}]}`, "channels[0].config.webhook_url"},
		{`{"channels":[{"type":"wechat","config":{"agent_id":1,"secret":"s"}}]}`, "channels[0].config.corp_id"},
		{`{"channels":[{"type":"pigeon","config":{}}]}`, "channels[0].type"},
		{`{"channels":[]}`, "channels"},
		{`{"events":["canary_started","nope"],"channels":[{"type":"custom","config":{"url":"https://example.com/h"}}]}`, "events[1]"},
		{`{"channels":[{"type":"custom","config":"x"}]}`, "channels[0].config"},
		{`{"enabled":"yes","channels":[]}`, "enabled"},
	}
	for _, c := range cases {
		status, raw := env.Do(t, "POST", "/api/v1/release/callbacks", c.body)
		if status != 422 || !strings.Contains(string(raw), fmt.Sprintf("%q", c.field)) {
			t.Errorf("%s: status %d body %s; want 422 naming %s", c.body, status, raw, c.field)
		}
	}
	var p page.Page[*notify.Config]
	env.JSON(t, "GET", "/api/v1/release/callbacks", nil, 200, &p)
	if len(p.Items) != 0 {
		t.Fatalf("invalid bodies created %d configurations", len(p.Items))
	}
}
