package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/herald-release/herald/internal/app/apptest"
	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/notify"
	"github.com/herald-release/herald/internal/page"
	"github.com/herald-release/herald/internal/testsupport"
)

// Issue #8: templates, conditions, recipients, previews, through the API
// to the fake platforms.

func TestTemplateAndConditionValidationNameTheFieldAndLine(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, db.SQLite)
	ding := `{"type":"dingtalk","config":{"webhook_url":"https://oapi.dingtalk.com/robot/send?access_token=x"}`
	cases := []struct {
		body  string
		field string
		want  []string // in the message
	}{
		{`{"channels":[` + ding + `,"template":{"body":"ok\n{{.Project.Nmae}}"}}]}`, "channels[0].template.body", []string{"line 2", "Nmae"}},
		{`{"channels":[` + ding + `,"template":{"title":"{{.Nope}}"}}]}`, "channels[0].template.title", []string{"line 1", "Nope"}},
		{`{"template":{"body":"a\nb\n{{if .Task.ID}}x"},"channels":[` + ding + `}]}`, "template.body", []string{"line 3"}},
		{`{"template":{"title":"{{upper .Environment | nosuch}}"},"channels":[` + ding + `}]}`, "template.title", []string{"line 1", "nosuch"}},
		{`{"template":{"body":"{{range .Deployment.Hosts}}{{.Name}}{{end}}"},"channels":[` + ding + `}]}`, "template.body", []string{"line 1", "Name"}},
		{`{"template":{"body":"{{template \"x\"}}"},"channels":[` + ding + `}]}`, "template.body", []string{"not supported"}},
		{`{"template":{"body":"{{define \"x\"}}y{{end}}"},"channels":[` + ding + `}]}`, "template.body", []string{"not supported"}},
		{`{"template":{"body":"\n{{range 1000000000}}{{end}}"},"channels":[` + ding + `}]}`, "template.body", []string{"line 2", "range"}},
		{`{"template":{"body":"{{range $i, $c := .Text}}{{end}}"},"channels":[` + ding + `}]}`, "template.body", []string{"line 1"}},
		{`{"lang":"fr","channels":[` + ding + `}]}`, "lang", []string{"zh"}},
		{`{"conditions":{"strategies":["big_bang"]},"channels":[` + ding + `}]}`, "conditions.strategies[0]", []string{"canary"}},
		{`{"conditions":{"task_types":["deploy","redeploy"]},"channels":[` + ding + `}]}`, "conditions.task_types[1]", []string{"rollback"}},
		{`{"conditions":{"outcomes":["ok"]},"channels":[` + ding + `}]}`, "conditions.outcomes[0]", []string{"failed"}},
		{`{"conditions":{"environments":["Prod!"]},"channels":[` + ding + `}]}`, "conditions.environments[0]", nil},
		{`{"channels":[{"type":"dingtalk","config":{"webhook_url":"https://oapi.dingtalk.com/robot/send?access_token=x","$look":{"title":"x"}}}]}`, "channels[0].config.$look", nil},
		{`{"channels":[{"type":"email","config":{"smtp_host":"smtp.example.com","from":"h@example.com","recipients":["ceo"]}}]}`, "channels[0].config.recipients[0]", []string{"task_creator"}},
		{`{"channels":[{"type":"email","config":{"smtp_host":"smtp.example.com","from":"h@example.com"}}]}`, "channels[0].config.to", []string{"recipients"}},
	}
	for _, c := range cases {
		status, raw := env.Do(t, "POST", "/api/v1/release/callbacks", c.body)
		var e struct {
			Error struct {
				Details []struct{ Field, Message string } `json:"details"`
			} `json:"error"`
		}
		_ = json.Unmarshal(raw, &e)
		found := false
		for _, d := range e.Error.Details {
			if d.Field != c.field {
				continue
			}
			found = true
			for _, w := range c.want {
				if !strings.Contains(d.Message, w) {
					t.Errorf("%s: %s says %q, want it to mention %q", c.body, d.Field, d.Message, w)
				}
			}
		}
		if status != 422 || !found {
			t.Errorf("%s: status %d body %s; want 422 naming %s", c.body, status, raw, c.field)
		}
	}
	var p page.Page[*notify.Config]
	env.JSON(t, "GET", "/api/v1/release/callbacks", nil, 200, &p)
	if len(p.Items) != 0 {
		t.Fatalf("invalid bodies created %d configurations", len(p.Items))
	}
}

// A configuration's language and template reach every channel, a
// channel's template part wins over the configuration's, values are
// escaped for each platform's markup, and a custom channel gets "message"
// only when a template is set.
func TestTemplatesAndLanguageReachThePlatforms(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, env *apptest.Env) {
		ding := testsupport.NewDingTalk(t, "")
		fei := testsupport.NewFeishu(t, "")
		withTmpl := testsupport.NewReceiver(t)
		plain := testsupport.NewReceiver(t)
		env.JSON(t, "POST", "/api/v1/release/projects", map[string]any{"id": "app", "name": "App <at id=all></at>"}, 201, nil)

		var cfg notify.Config
		env.JSON(t, "POST", "/api/v1/release/projects/app/callbacks", map[string]any{
			"events": []string{"version_created"},
			"lang":   "en",
			"template": map[string]any{
				"title": "{{.Project.ID}} got {{.Version.Name}}",
				"body":  "**New version** {{.Version.Name}} of {{.Project.Name}} by {{.Actor.Name}}",
			},
			"channels": []map[string]any{
				{"type": "dingtalk", "config": map[string]any{"webhook_url": ding.WebhookURL()},
					"template": map[string]any{"body": "### {{.StatusText}}\n{{range .Fields}}- {{.Label}}: {{.Value}}\n{{end}}"}},
				{"type": "feishu", "config": map[string]any{"webhook_url": fei.WebhookURL()}},
				{"type": "custom", "config": map[string]any{"url": withTmpl.URL() + "/hook"}},
			},
		}, 201, &cfg)
		if cfg.Lang != "en" || cfg.Template == nil || cfg.Channels[0].Template == nil || cfg.Channels[1].Template != nil {
			t.Fatalf("saved configuration = %+v", cfg)
		}
		var shown notify.Config
		env.JSON(t, "GET", "/api/v1/release/callbacks/"+cfg.ID, nil, 200, &shown)
		if strings.Contains(string(shown.Channels[0].Config), "$look") || shown.Channels[0].Template == nil ||
			shown.Template.Title != "{{.Project.ID}} got {{.Version.Name}}" || shown.Lang != "en" {
			t.Fatalf("GET shows %+v (config %s)", shown, shown.Channels[0].Config)
		}
		// Without a template the standard message is sent as is.
		env.JSON(t, "POST", "/api/v1/release/projects/app/callbacks", map[string]any{
			"events":   []string{"version_created"},
			"channels": []map[string]any{{"type": "custom", "config": map[string]any{"url": plain.URL() + "/hook"}}},
		}, 201, nil)

		env.JSON(t, "POST", "/api/v1/release/projects/app/versions", map[string]any{"name": "v2.0"}, 201, nil)

		dm := ding.WaitMessages(t, 1)[0]
		if dm.Title != "app got v2.0" || !strings.Contains(dm.Text, "## app got v2.0") ||
			!strings.Contains(dm.Text, "### create\n- Project: App <at id=all></at>\n- Object: version create\n- Name: v2.0") {
			t.Errorf("dingtalk: the channel's body with the configuration's title, in English: %q / %q", dm.Title, dm.Text)
		}
		fm := fei.WaitMessages(t, 1)[0]
		if fm.Title != "app got v2.0" || !strings.Contains(fm.Text, "**New version** v2.0 of App &lt;at id=all&gt;&lt;/at&gt; by admin") {
			t.Errorf("feishu: the configuration's template, names escaped for lark_md: %q / %q", fm.Title, fm.Text)
		}
		if strings.Contains(fm.Text, "<at id=all>") {
			t.Errorf("a project name mentions everyone on Feishu: %q", fm.Text)
		}
		var got struct {
			EventType string `json:"event_type"`
			Message   *struct {
				Title string `json:"title"`
				Body  string `json:"body"`
			} `json:"message"`
		}
		if err := json.Unmarshal(withTmpl.WaitRequests(t, 1)[0].Body, &got); err != nil || got.Message == nil ||
			got.Message.Title != "app got v2.0" || got.Message.Body != "**New version** v2.0 of App <at id=all></at> by admin" ||
			got.EventType != "version_created" {
			t.Errorf("custom with a template: %+v (%v)", got, err)
		}
		raw := plain.WaitRequests(t, 1)[0].Body
		if strings.Contains(string(raw), `"message"`) {
			t.Errorf("custom without a template carries a message: %s", raw)
		}

		// A PUT without lang and template goes back to the defaults.
		body := map[string]any{"events": []string{"version_created"}, "channels": []map[string]any{
			{"type": "dingtalk", "id": shown.Channels[0].ID, "config": json.RawMessage(shown.Channels[0].Config)}}}
		env.JSON(t, "PUT", "/api/v1/release/callbacks/"+cfg.ID, body, 200, nil)
		env.JSON(t, "POST", "/api/v1/release/projects/app/versions", map[string]any{"name": "v2.1"}, 201, nil)
		dm = ding.WaitMessages(t, 2)[1]
		if dm.Title != "发布通知：版本已创建" {
			t.Errorf("after dropping the template and language: %q", dm.Title)
		}
	})
}

func TestPreviewRendersWithoutSending(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, db.SQLite)
	ding := testsupport.NewDingTalk(t, "SECpreview-secret")
	env.JSON(t, "POST", "/api/v1/release/projects", map[string]any{"id": "shop", "name": "Shop"}, 201, nil)
	var cfg notify.Config
	env.JSON(t, "POST", "/api/v1/release/projects/shop/callbacks", map[string]any{
		"channels": []map[string]any{{"type": "dingtalk", "config": map[string]any{
			"webhook_url": ding.WebhookURL(), "sign_secret": "SECpreview-secret", "at_mobiles": []string{"13800000000"}}}},
	}, 201, &cfg)
	var shown notify.Config
	env.JSON(t, "GET", "/api/v1/release/callbacks/"+cfg.ID, nil, 200, &shown)

	var p notify.Preview
	env.JSON(t, "POST", "/api/v1/release/callbacks/preview", map[string]any{
		"event_type": "release_failed", "lang": "en", "project_id": "shop", "config_id": cfg.ID,
		"template": map[string]any{"title": "{{.Project.Name}} {{.Version.Name}}: {{.Outcome}}"},
		"channel": map[string]any{"id": shown.Channels[0].ID, "type": "dingtalk", "config": json.RawMessage(shown.Channels[0].Config),
			"template": map[string]any{"body": "{{.Task.Type}} to {{.Environment}} failed on {{.Deployment.FailedCount}} host(s)\n{{.URL}}"}},
	}, 200, &p)
	if p.Title != "Shop v1.2.3: failed" || !strings.HasPrefix(p.Body, "deploy to production failed on 1 host(s)\n") || p.Lang != "en" ||
		p.EventType != "release_failed" || p.Event == nil || p.Event.Project.Name != "Shop" || p.Error != "" {
		t.Fatalf("preview = %+v", p)
	}
	if p.Request == nil || !strings.Contains(p.Request.Body, "deploy to production failed on 1 host(s)") ||
		!strings.Contains(p.Request.Body, "@13800000000") || !strings.Contains(p.Request.URL, "sign=") {
		t.Fatalf("the DingTalk request as it would be sent: %+v", p.Request)
	}
	b, _ := json.Marshal(p)
	for _, secret := range []string{"SECpreview-secret", ding.Token()} {
		if strings.Contains(string(b), secret) {
			t.Fatalf("the preview shows the secret %q: %s", secret, b)
		}
	}
	// Nothing sent, nothing recorded, and nothing queued to be sent later.
	var queued int
	if err := env.App.DB.QueryRow(context.Background(), `SELECT COUNT(*) FROM delivery_queue`).Scan(&queued); err != nil {
		t.Fatal(err)
	}
	if ding.Requests() != 0 || len(history(t, env, "limit=10")) != 0 || queued != 0 {
		t.Fatalf("a preview sent something (%d requests), left history or queued %d deliveries", ding.Requests(), queued)
	}

	// Without a template: the default wording, in the default language.
	env.JSON(t, "POST", "/api/v1/release/callbacks/preview", map[string]any{
		"event_type": "plan_approval_requested",
		"channel":    map[string]any{"type": "feishu", "config": map[string]any{"webhook_url": "https://open.feishu.cn/open-apis/bot/v2/hook/abc"}},
	}, 200, &p)
	if p.Title != "发布通知：发布计划待审批" || !strings.Contains(p.Body, "审批人: admin, Another Approver") || p.Lang != "zh" {
		t.Fatalf("default preview = %+v", p)
	}

	// Errors name the field, and the template's line.
	for body, field := range map[string]string{
		`{"event_type":"nope","channel":{"type":"feishu","config":{}}}`:                                          "event_type",
		`{"channel":{"type":"pigeon","config":{}}}`:                                                              "channel.type",
		`{"channel":{"type":"feishu","config":{"webhook_url":"x"}}}`:                                             "channel.config.webhook_url",
		`{"channel":{"type":"feishu","config":{},"template":{"body":"a\n{{.Project.Nmae}}"}}}`:                   "channel.template.body",
		`{"template":{"title":"{{"},"channel":{"type":"feishu","config":{"webhook_url":"https://f.example/x"}}}`: "template.title",
	} {
		status, raw := env.Do(t, "POST", "/api/v1/release/callbacks/preview", body)
		if status != 422 || !strings.Contains(string(raw), fmt.Sprintf("%q", field)) {
			t.Errorf("%s: %d %s; want 422 naming %s", body, status, raw, field)
		}
		if field == "channel.template.body" && !strings.Contains(string(raw), "line 2") {
			t.Errorf("the template error does not give its line: %s", raw)
		}
	}
}

// Conditions narrow events at routing time: only failures in production
// reach one robot, only rolling deploys another; events without the
// attribute do not meet a condition on it.
func TestConditionsRouteOrSkip(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, env *apptest.Env) {
		prodFailures := testsupport.NewDingTalk(t, "")
		rollingDeploys := testsupport.NewDingTalk(t, "")
		everything := testsupport.NewDingTalk(t, "")
		createProject(t, env, "app")
		for _, e := range []struct{ name, script string }{{"production", "exit 3"}, {"staging", "true"}} {
			env.JSON(t, "POST", "/api/v1/release/projects/app/environments", map[string]any{"name": e.name,
				"executor": map[string]any{"type": "local", "script": e.script, "timeout": "1m"}}, 201, nil)
			env.JSON(t, "POST", "/api/v1/release/projects/app/environments/"+e.name+"/hosts", map[string]any{"name": "h1", "address": "127.0.0.1"}, 201, nil)
		}
		env.JSON(t, "POST", "/api/v1/release/projects/app/versions", map[string]any{"name": "v1"}, 201, nil)

		robot := func(f *testsupport.DingTalk) []map[string]any {
			return []map[string]any{{"type": "dingtalk", "config": map[string]any{"webhook_url": f.WebhookURL()}}}
		}
		var c1 notify.Config
		env.JSON(t, "POST", "/api/v1/release/projects/app/callbacks", map[string]any{"name": "prod failures",
			"conditions": map[string]any{"environments": []string{"production"}, "outcomes": []string{"failed"}},
			"channels":   robot(prodFailures)}, 201, &c1)
		if c1.Conditions == nil || !slices.Equal(c1.Conditions.Outcomes, []string{"failed"}) {
			t.Fatalf("conditions not kept: %+v", c1.Conditions)
		}
		env.JSON(t, "POST", "/api/v1/release/callbacks", map[string]any{"name": "rolling deploys",
			"conditions": map[string]any{"strategies": []string{"rolling"}, "task_types": []string{"deploy"}},
			"channels":   robot(rollingDeploys)}, 201, nil)
		env.JSON(t, "POST", "/api/v1/release/projects/app/callbacks", map[string]any{"name": "all",
			"events": []string{"release_started", "full_completed", "release_failed", "project_updated"}, "channels": robot(everything)}, 201, nil)

		run := func(envName string) string {
			var task struct{ ID, Status string }
			env.JSON(t, "POST", "/api/v1/release/tasks", map[string]any{"project_id": "app", "environment": envName, "version": "v1",
				"strategy": "rolling"}, 201, &task)
			eventually(t, "the task on "+envName+" to end", func() bool {
				env.JSON(t, "GET", "/api/v1/release/tasks/"+task.ID, nil, 200, &task)
				return task.Status == "success" || task.Status == "failed"
			})
			return task.Status
		}
		if s := run("staging"); s != "success" {
			t.Fatalf("staging: %s", s)
		}
		if s := run("production"); s != "failed" {
			t.Fatalf("production: %s", s)
		}
		env.JSON(t, "PUT", "/api/v1/release/projects/app", map[string]any{"name": "App 2"}, 200, nil)

		everything.WaitMessages(t, 5) // two starts, a success, a failure, the project update
		if m := prodFailures.WaitMessages(t, 1); !strings.Contains(m[0].Title, "发布失败") || !strings.Contains(m[0].Text, "production") {
			t.Fatalf("prod failures got %+v", m[0])
		}
		rollingDeploys.WaitMessages(t, 4) // start and end of both
		eventually(t, "all deliveries recorded", func() bool { return len(history(t, env, "status=success&limit=500")) == 10 })
		if n := prodFailures.Requests(); n != 1 {
			t.Errorf("the production-failures robot got %d messages, want only release_failed", n)
		}
		if n := rollingDeploys.Requests(); n != 4 {
			t.Errorf("the rolling-deploys robot got %d messages; a project event has no strategy", n)
		}
		for _, e := range history(t, env, "config_id="+c1.ID) {
			if e.EventType != "release_failed" {
				t.Errorf("the production-failures configuration delivered %s", e.EventType)
			}
		}
	})
}

// Recipients are resolved when a message is sent: the task's creator by
// email, the plan's manager as a Feishu app member by email; a user
// without an email is a failure that says so.
func TestRecipientsAreResolvedAtSendTime(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, env *apptest.Env) {
		smtp := testsupport.NewSMTP(t)
		app := testsupport.NewFeishuApp(t)
		app.AddReceiver("email", "alice@example.com", 0)
		createProject(t, env, "app")
		env.JSON(t, "POST", "/api/v1/release/projects/app/environments", map[string]any{"name": "prod",
			"executor": map[string]any{"type": "local", "script": "true", "timeout": "1m"}}, 201, nil)
		env.JSON(t, "POST", "/api/v1/release/projects/app/environments/prod/hosts", map[string]any{"name": "h1", "address": "127.0.0.1"}, 201, nil)
		env.JSON(t, "POST", "/api/v1/release/projects/app/versions", map[string]any{"name": "v1"}, 201, nil)

		user := func(name, email string) (id, token string) {
			var u struct{ ID string }
			env.JSON(t, "POST", "/api/v1/users", map[string]any{"name": name, "email": email, "role": "member"}, 201, &u)
			var tok struct{ Token string }
			env.JSON(t, "POST", "/api/v1/users/"+u.ID+"/tokens", map[string]any{"name": "t"}, 201, &tok)
			return u.ID, tok.Token
		}
		aliceID, alice := user("alice", "alice@example.com")
		_, bob := user("bob", "")

		var mailCfg notify.Config
		env.JSON(t, "POST", "/api/v1/release/projects/app/callbacks", map[string]any{"events": []string{"full_completed"},
			"channels": []map[string]any{{"type": "email", "config": map[string]any{"smtp_host": smtp.Host(), "smtp_port": smtp.Port(),
				"tls": "none", "from": "Herald <herald@example.com>", "to": []string{"ops@example.com"},
				"recipients": []string{"task_creator", "plan_manager"}}}}}, 201, &mailCfg)
		env.JSON(t, "POST", "/api/v1/release/callbacks", map[string]any{"events": []string{"plan_finish_planning"},
			"channels": []map[string]any{{"type": "feishu_app", "config": map[string]any{"app_id": app.AppID(), "app_secret": app.Secret(),
				"api_base_url": app.URL(), "recipients": []string{"plan_manager"}}}}}, 201, nil)

		deploy := func(token string) {
			var task struct{ ID, Status string }
			status, raw := env.DoAs(t, token, "POST", "/api/v1/release/tasks", map[string]any{"project_id": "app", "environment": "prod",
				"version": "v1", "strategy": "rolling"})
			if status != 201 {
				t.Fatalf("create task: %d %s", status, raw)
			}
			_ = json.Unmarshal(raw, &task)
			eventually(t, "the task to end", func() bool {
				env.JSON(t, "GET", "/api/v1/release/tasks/"+task.ID, nil, 200, &task)
				return task.Status == "success"
			})
		}
		deploy(alice)
		msg := smtp.WaitMessages(t, 1)[0]
		if !slices.Equal(msg.To, []string{"ops@example.com", "alice@example.com"}) {
			t.Fatalf("mail went to %v; want the fixed address and the task's creator (plan_manager does not apply)", msg.To)
		}
		if h := msg.Header("To"); !strings.Contains(h, "alice") {
			t.Errorf("To header %q lacks the creator", h)
		}

		deploy(bob)
		var failed *notify.Entry
		eventually(t, "the failed delivery", func() bool {
			for _, e := range history(t, env, "config_id="+mailCfg.ID+"&status=failed") {
				failed = e
				return true
			}
			return false
		})
		if !strings.Contains(failed.Error, "task's creator") || !strings.Contains(failed.Error, "bob") || !strings.Contains(failed.Error, "no email") {
			t.Fatalf("the error does not say whose email is missing: %q", failed.Error)
		}
		if n := len(smtp.Messages()); n != 1 {
			t.Fatalf("%d mails; bob's task must send none", n)
		}

		// The plan's manager, as a Feishu app member by email.
		var plan struct{ ID string }
		env.JSON(t, "POST", "/api/v1/release/plans", map[string]any{"name": "R1", "manager_id": aliceID,
			"jobs": []any{map[string]any{"name": "note", "type": "text", "spec": map[string]any{"content": "x"}}}}, 201, &plan)
		env.JSON(t, "POST", "/api/v1/release/plans/"+plan.ID+"/finish-planning", nil, 200, nil)
		fm := app.WaitMessages(t, 1)[0]
		if fm.ReceiveIDType != "email" || fm.ReceiveID != "alice@example.com" || !strings.Contains(fm.Title, "规划完成") {
			t.Fatalf("feishu app got %+v", fm)
		}
	})
}

func TestPreviewShowsRecipientsAndTheirProblems(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, db.SQLite)
	// The admin has no email: a preview names the problem and still
	// renders the message.
	var p notify.Preview
	env.JSON(t, "POST", "/api/v1/release/callbacks/preview", map[string]any{"event_type": "full_completed",
		"channel": map[string]any{"type": "email", "config": map[string]any{"smtp_host": "smtp.example.com", "from": "h@example.com",
			"recipients": []string{"task_creator"}}}}, 200, &p)
	if !strings.Contains(p.Error, "no email") || p.Title == "" || p.Request != nil {
		t.Fatalf("preview = %+v", p)
	}
	// A user with an email sees it: sample task events name their actor.
	var u struct{ ID string }
	env.JSON(t, "POST", "/api/v1/users", map[string]any{"name": "carol", "email": "carol@example.com", "role": "member"}, 201, &u)
	var tok struct{ Token string }
	env.JSON(t, "POST", "/api/v1/users/"+u.ID+"/tokens", map[string]any{"name": "t"}, 201, &tok)
	status, raw := env.DoAs(t, tok.Token, http.MethodPost, "/api/v1/release/callbacks/preview", map[string]any{"event_type": "full_completed",
		"channel": map[string]any{"type": "email", "config": map[string]any{"smtp_host": "smtp.example.com", "from": "h@example.com",
			"recipients": []string{"task_creator"}}}})
	p = notify.Preview{}
	if err := json.Unmarshal(raw, &p); status != 200 || err != nil {
		t.Fatalf("preview as carol: %d %s", status, raw)
	}
	if p.Error != "" || p.Request == nil || !strings.Contains(p.Request.Headers["To"], "carol@example.com") {
		t.Fatalf("preview = %+v", p)
	}
}
