package console_test

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/herald-release/herald/internal/notify"
	"github.com/herald-release/herald/internal/testsupport"
)

// The callback form edits the language, conditions, templates, mentions
// and recipients; Preview shows a channel's message without saving; a
// template error lands on its input with its line.
func TestCallbackFormTemplatesConditionsPreview(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	b := loggedIn(t, env, "admin", adminPassword)
	ding, cfgID := seed(t, b)
	token := b.csrf()

	edit := b.get("/callbacks/" + cfgID)
	mustContain(t, edit, `name="lang"`, `name="conditions.environments"`, `name="conditions.outcomes" value="failed"`,
		`name="template.title"`, `name="channels[0].template.body"`, `value="preview:0"`, `name="preview_event"`, "Template fields", ".Deployment.Hosts")
	vals := formValues(edit.Body, `action="/callbacks/`+cfgID+`"`)
	vals.Set("csrf", token)
	vals.Set("lang", "en")
	vals.Set("conditions.environments", "prod, staging")
	vals["conditions.outcomes"] = []string{"failed", "cancelled"}
	vals["conditions.task_types"] = []string{"deploy"}
	vals.Set("template.title", "{{.Project.Name}}: {{.StatusText}}")
	vals.Set("channels[0].template.body", "**{{.Version.Name}}** on {{.Environment}}\n{{.Hosts}}")

	// Preview: nothing saved, the message shown under the channel.
	vals.Set("preview_event", "release_failed")
	vals.Set("op", "preview:0")
	p := b.post("/callbacks/"+cfgID, vals)
	if p.Status != http.StatusOK {
		t.Fatalf("preview: %d %s", p.Status, p.Body)
	}
	mustContain(t, p, "Preview: ", "Shop: failed", "**v1.2.3** on production", "robot/send?access_token=******", "@13800000000",
		`value="release_failed" selected`)
	for _, secret := range []string{"SECsign-secret", ding.Token()} {
		if strings.Contains(p.Body, secret) {
			t.Fatalf("the preview shows the secret %q", secret)
		}
	}
	var cfg notify.Config
	env.JSON(t, http.MethodGet, "/api/v1/release/callbacks/"+cfgID, nil, http.StatusOK, &cfg)
	if cfg.Template != nil || cfg.Lang != "zh" || ding.Requests() != 0 {
		t.Fatalf("a preview saved or sent: %+v, %d requests", cfg, ding.Requests())
	}

	// A template error: on its input, with its line, for save and preview.
	bad := url.Values{}
	for k, v := range vals {
		bad[k] = v
	}
	bad.Set("channels[0].template.body", "ok\n{{.Project.Nmae}}")
	for _, op := range []string{"preview:0", "save"} {
		bad.Set("op", op)
		p = b.post("/callbacks/"+cfgID, bad)
		if p.Status != http.StatusUnprocessableEntity {
			t.Fatalf("%s of a bad template: %d", op, p.Status)
		}
		mustContain(t, p, `id="f-channels[0].template.body-err"`, "line 2", "Nmae", `<details class="channel-template" open>`)
	}

	// Save; the form shows what was saved, and a save as shown keeps it.
	vals.Set("op", "save")
	if p := b.post("/callbacks/"+cfgID, vals); p.Status != http.StatusSeeOther {
		t.Fatalf("save: %d %s", p.Status, p.Body)
	}
	env.JSON(t, http.MethodGet, "/api/v1/release/callbacks/"+cfgID, nil, http.StatusOK, &cfg)
	if cfg.Lang != "en" || cfg.Template == nil || cfg.Template.Title != "{{.Project.Name}}: {{.StatusText}}" || cfg.Template.Body != "" ||
		cfg.Channels[0].Template == nil || cfg.Channels[0].Template.Body != "**{{.Version.Name}}** on {{.Environment}}\n{{.Hosts}}" ||
		cfg.Conditions == nil || !slices.Equal(cfg.Conditions.Environments, []string{"prod", "staging"}) ||
		!slices.Equal(cfg.Conditions.Outcomes, []string{"failed", "cancelled"}) || !slices.Equal(cfg.Conditions.TaskTypes, []string{"deploy"}) {
		t.Fatalf("saved %+v (conditions %+v)", cfg, cfg.Conditions)
	}
	edit = b.get("/callbacks/" + cfgID)
	mustContain(t, edit, `<option value="en" selected>`, `value="prod, staging"`, `name="conditions.outcomes" value="cancelled" checked`)
	again := formValues(edit.Body, `action="/callbacks/`+cfgID+`"`)
	again.Set("csrf", token)
	again.Set("op", "save")
	if p := b.post("/callbacks/"+cfgID, again); p.Status != http.StatusSeeOther {
		t.Fatalf("save as shown: %d %s", p.Status, p.Body)
	}
	var after notify.Config
	env.JSON(t, http.MethodGet, "/api/v1/release/callbacks/"+cfgID, nil, http.StatusOK, &after)
	if after.Lang != "en" || *after.Template != *cfg.Template || *after.Channels[0].Template != *cfg.Channels[0].Template ||
		!slices.Equal(after.Conditions.Outcomes, cfg.Conditions.Outcomes) {
		t.Fatalf("a save as shown changed the configuration: %+v", after)
	}

	// Disable and enable keep all of it.
	b.post("/callbacks/"+cfgID+"/toggle", url.Values{"csrf": {token}})
	b.post("/callbacks/"+cfgID+"/toggle", url.Values{"csrf": {token}})
	env.JSON(t, http.MethodGet, "/api/v1/release/callbacks/"+cfgID, nil, http.StatusOK, &after)
	if !after.Enabled || after.Lang != "en" || after.Template == nil || after.Conditions == nil || after.Channels[0].Template == nil {
		t.Fatalf("toggling lost settings: %+v", after)
	}
}

// Mentions and recipients of every type are on the form, and reach the API.
func TestCallbackFormMentionsAndRecipients(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	b := loggedIn(t, env, "admin", adminPassword)
	token := b.csrf()
	for typ, names := range map[string][]string{
		"slack":      {"at_user_ids", "at_here", "at_channel"},
		"discord":    {"at_user_ids", "at_role_ids", "at_everyone"},
		"teams":      {"at_user_ids"},
		"email":      {"recipients"},
		"feishu_app": {"recipients"},
		"feishu":     {"at_user_ids", "at_all"},
		"dingtalk":   {"at_mobiles", "at_user_ids", "at_all"},
		"wechat":     {"mentioned_list", "mentioned_mobile_list"},
	} {
		p := b.get("/callbacks/new?type=" + typ)
		for _, n := range names {
			mustContain(t, p, `name="channels[0].config.`+n+`"`)
		}
	}
	smtp := testsupport.NewSMTP(t)
	p := b.post("/callbacks/new", url.Values{"csrf": {token}, "name": {"mail"}, "enabled": {"true"}, "channel_count": {"1"}, "op": {"save"},
		"channels[0].type": {"email"}, "channels[0].enabled": {"true"}, "channels[0].config.smtp_host": {smtp.Host()},
		"channels[0].config.smtp_port": {strings.TrimPrefix(smtp.Addr(), smtp.Host()+":")}, "channels[0].config.tls": {"none"},
		"channels[0].config.from": {"herald@example.com"}, "channels[0].config.recipients": {"task_creator", "plan_manager"}})
	if p.Status != http.StatusSeeOther {
		t.Fatalf("create: %d %s", p.Status, p.Body)
	}
	id := regexp.MustCompile(`/callbacks/([^/?#]+)`).FindStringSubmatch(p.Header.Get("Location"))[1]
	var cfg notify.Config
	env.JSON(t, http.MethodGet, "/api/v1/release/callbacks/"+id, nil, http.StatusOK, &cfg)
	if !strings.Contains(string(cfg.Channels[0].Config), `"recipients":["task_creator","plan_manager"]`) {
		t.Fatalf("config %s", cfg.Channels[0].Config)
	}
	mustContain(t, b.get("/callbacks/"+id), `value="task_creator" checked`, `value="plan_manager" checked`, "The task&#39;s creator")
}
