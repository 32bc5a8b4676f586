package console_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"html"
	"sync"

	"golang.org/x/crypto/ssh"

	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/herald-release/herald/internal/api"
	"github.com/herald-release/herald/internal/app/apptest"
	"github.com/herald-release/herald/internal/db/dbtest"
	"github.com/herald-release/herald/internal/testsupport"
)

func TestLoginAndLogout(t *testing.T) {
	t.Parallel()
	env := newEnv(t)

	t.Run("pages need a login", func(t *testing.T) {
		b := newBrowser(t, env)
		p := b.get("/projects")
		if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/login?next=%2Fprojects" {
			t.Fatalf("GET /projects logged out: %d %s", p.Status, p.Header.Get("Location"))
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		b := newBrowser(t, env)
		p := b.login("admin", "nope")
		if p.Status != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", p.Status)
		}
		mustContain(t, p, "Wrong user name or password", `role="alert"`)
		if strings.Contains(p.Header.Get("Set-Cookie"), api.SessionCookie) {
			t.Fatal("a failed login set a session cookie")
		}
	})

	t.Run("login form without its token", func(t *testing.T) {
		b := newBrowser(t, env)
		p := b.post("/login", url.Values{"name": {"admin"}, "password": {adminPassword}})
		if p.Status != http.StatusForbidden {
			t.Fatalf("status %d, want 403", p.Status)
		}
	})

	t.Run("cookie, redirect and logout", func(t *testing.T) {
		b := newBrowser(t, env)
		p := b.login("admin", adminPassword)
		if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/projects" {
			t.Fatalf("login: %d → %q", p.Status, p.Header.Get("Location"))
		}
		var session *http.Cookie
		for _, c := range (&http.Response{Header: p.Header}).Cookies() {
			if c.Name == api.SessionCookie {
				session = c
			}
		}
		if session == nil {
			t.Fatal("no session cookie")
		}
		if !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.Path != "/" || session.Secure {
			t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Lax, Path=/, not Secure over plain HTTP", session)
		}
		mustContain(t, b.get("/projects"), "admin", `<main id="main"`)

		// The JSON API takes the same cookie: reads without more, writes
		// only with the CSRF header.
		token := b.csrf()
		if p := b.do(http.MethodGet, "/api/v1/me", nil); p.Status != http.StatusOK {
			t.Fatalf("API read with the cookie: %d", p.Status)
		}
		if p := b.do(http.MethodPost, "/api/v1/release/projects", nil); p.Status != http.StatusForbidden {
			t.Fatalf("API write with the cookie and no CSRF header: %d, want 403", p.Status)
		}
		if p := b.do(http.MethodPost, "/api/v1/release/projects", url.Values{}, api.CSRFHeader, token); p.Status == http.StatusForbidden {
			t.Fatalf("API write with the CSRF header refused: %s", p.Body)
		}

		if p := b.post("/logout", url.Values{}); p.Status != http.StatusForbidden {
			t.Fatalf("logout without the CSRF field: %d, want 403", p.Status)
		}
		if p := b.post("/logout", url.Values{"csrf": {token}}); p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/login" {
			t.Fatalf("logout: %d %q", p.Status, p.Header.Get("Location"))
		}
		if p := b.get("/projects"); p.Status != http.StatusSeeOther {
			t.Fatalf("after logout GET /projects: %d, want a redirect to log in", p.Status)
		}
	})

	t.Run("secure cookie behind TLS", func(t *testing.T) {
		b := newBrowser(t, env)
		b.header.Set("X-Forwarded-Proto", "https")
		p := b.login("admin", adminPassword)
		if !strings.Contains(p.Header.Get("Set-Cookie"), "Secure") {
			t.Fatalf("cookie over TLS lacks Secure: %q", p.Header.Values("Set-Cookie"))
		}
	})

	t.Run("open redirects are refused", func(t *testing.T) {
		b := newBrowser(t, env)
		lp := b.get("/login")
		tok := hiddenCSRF.FindStringSubmatch(lp.Body)[1]
		p := b.post("/login", url.Values{"name": {"admin"}, "password": {adminPassword}, "csrf": {tok}, "next": {"//evil.example/"}})
		if p.Header.Get("Location") != "/" {
			t.Fatalf("next=//evil.example/ redirected to %q", p.Header.Get("Location"))
		}
	})
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	b := loggedIn(t, env, "admin", adminPassword)
	token := b.csrf()

	for _, tc := range []struct {
		name   string
		form   url.Values
		hdr    []string
		status int
	}{
		{"no token", url.Values{"name": {"No Token"}}, nil, http.StatusForbidden},
		{"wrong token", url.Values{"name": {"Wrong Token"}, "csrf": {"x" + token}}, nil, http.StatusForbidden},
		{"cross-site", url.Values{"name": {"Cross Site"}, "csrf": {token}}, []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"other origin", url.Values{"name": {"Other Origin"}, "csrf": {token}}, []string{"Origin", "https://evil.example"}, http.StatusForbidden},
		{"good", url.Values{"name": {"Good Token"}, "csrf": {token}}, []string{"Sec-Fetch-Site", "same-origin"}, http.StatusSeeOther},
	} {
		p := b.do(http.MethodPost, "/projects", tc.form, tc.hdr...)
		if p.Status != tc.status {
			t.Errorf("%s: status %d, want %d: %s", tc.name, p.Status, tc.status, p.Body)
		}
	}
	status, raw := env.Do(t, http.MethodGet, "/api/v1/release/projects", nil)
	if status != http.StatusOK {
		t.Fatal(status)
	}
	for _, name := range []string{"No Token", "Wrong Token", "Cross Site", "Other Origin"} {
		if strings.Contains(string(raw), name) {
			t.Errorf("project %q was created by a refused form", name)
		}
	}
	if !strings.Contains(string(raw), "Good Token") {
		t.Errorf("the good form created nothing: %s", raw)
	}
}

// seed makes a project with an environment, hosts, a version and a
// callback configuration, through the API.
func seed(t *testing.T, b *browser) (ding *testsupport.DingTalk, configID string) {
	t.Helper()
	env := b.env
	env.JSON(t, http.MethodPost, "/api/v1/release/projects", map[string]any{"id": "shop", "name": "Shop", "description": "The shop"}, http.StatusCreated, nil)
	env.JSON(t, http.MethodPost, "/api/v1/release/projects/shop/environments", map[string]any{
		"name": "prod", "production": true,
		"executor": map[string]any{"type": "ssh", "user": "deploy", "port": 22, "script": "echo hi", "private_key": privateKey(t)},
	}, http.StatusCreated, nil)
	env.JSON(t, http.MethodPost, "/api/v1/release/projects/shop/environments/prod/hosts", map[string]any{
		"hosts": []map[string]any{{"name": "web-1", "address": "10.0.0.1"}, {"name": "web-2", "address": "10.0.0.2", "labels": map[string]string{"group": "blue"}}},
	}, http.StatusCreated, nil)
	env.JSON(t, http.MethodPost, "/api/v1/release/projects/shop/versions", map[string]any{"name": "v1.0.0", "artifact": "shop:1"}, http.StatusCreated, nil)
	ding = testsupport.NewDingTalk(t, "SECsign-secret")
	var cfg struct {
		ID string `json:"id"`
	}
	env.JSON(t, http.MethodPost, "/api/v1/release/projects/shop/callbacks", map[string]any{
		"name": "Ops DingTalk", "events": []string{"canary_started"},
		"channels": []map[string]any{{"type": "dingtalk", "config": map[string]any{"webhook_url": ding.WebhookURL(), "sign_secret": "SECsign-secret", "at_mobiles": []string{"13800000000"}}}},
	}, http.StatusCreated, &cfg)
	return ding, cfg.ID
}

var (
	untranslated = regexp.MustCompile(`>\s*(?:nav|f|form|tasks|callbacks|history|ch|envs|exec|hosts|versions|projects|project|users|tokens|error|flash|login|status|event|type|strategy|phase|role|filter|state|test|plans|hook|pager)\.[a-z_.]+\s*<`)
	badOutput    = []string{"<no value>", "%!", "ZgotmplZ"}
)

func checkPage(t *testing.T, path string, p page, status int) {
	t.Helper()
	if p.Status != status {
		t.Errorf("GET %s: status %d, want %d: %s", path, p.Status, status, p.Body)
		return
	}
	for _, bad := range badOutput {
		if strings.Contains(p.Body, bad) {
			i := strings.Index(p.Body, bad)
			t.Errorf("GET %s shows %q: …%s…", path, bad, p.Body[max(0, i-200):min(len(p.Body), i+100)])
		}
	}
	if m := untranslated.FindString(p.Body); m != "" {
		t.Errorf("GET %s shows an untranslated key: %s", path, m)
	}
	for _, landmark := range []string{`<main id="main"`, `<header`, `lang="`} {
		if !strings.Contains(p.Body, landmark) {
			t.Errorf("GET %s lacks %s", path, landmark)
		}
	}
	if csp := p.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("GET %s: CSP %q", path, csp)
	}
}

// TestPagesRender opens every page as an admin and as a member, in both
// languages, on each database.
func TestPagesRender(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(string(dialect), func(t *testing.T) {
			t.Parallel()
			testPagesRender(t, apptest.New(t, dialect))
		})
	}
}

func testPagesRender(t *testing.T, env *apptest.Env) {
	admin := loggedIn(t, env, "admin", adminPassword)
	ding, cfgID := seed(t, admin)
	memberID := createMember(t, env, "mia")
	member := loggedIn(t, env, "mia", "member-password")

	// A delivery in the history, from the Test button.
	status, raw := env.Do(t, http.MethodPost, "/api/v1/release/callbacks/"+cfgID+"/test", map[string]any{})
	if status != http.StatusOK {
		t.Fatalf("test: %d %s", status, raw)
	}
	ding.WaitMessages(t, 1)

	paths := []string{
		"/projects", "/projects/shop", "/projects/shop/environments/prod", "/projects/shop/callbacks",
		"/callbacks", "/callbacks/new", "/callbacks/new?project_id=shop&type=dingtalk", "/callbacks/" + cfgID,
		"/history", "/history?project_id=shop&status=success&channel_type=dingtalk&event_type=canary_started",
		"/history?config_id=" + cfgID, "/tasks", "/tasks/new", "/tasks/new?project_id=shop&environment=prod", "/plans",
		"/plans/new", "/settings/plan-hook",
		"/users", "/users/" + memberID,
	}
	for _, lang := range []string{"en", "zh"} {
		for who, b := range map[string]*browser{"admin": admin, "member": member} {
			b.header.Set("Accept-Language", lang)
			for _, path := range paths {
				checkPage(t, who+" "+lang+" "+path, b.get(path), http.StatusOK)
			}
		}
	}
	admin.header.Del("Accept-Language")
	member.header.Del("Accept-Language")

	// Secrets never reach a page.
	for _, path := range []string{"/callbacks/" + cfgID, "/projects/shop/environments/prod", "/history"} {
		p := admin.get(path)
		for _, secret := range []string{"SECsign-secret", ding.Token(), privateKey(t)[40:80]} {
			if strings.Contains(p.Body, secret) {
				t.Errorf("%s shows the secret %q", path, secret)
			}
		}
	}
	mustContain(t, admin.get("/projects/shop/environments/prod"), "******", "web-1", "group=blue")
	mustContain(t, admin.get("/callbacks/"+cfgID), "******", "13800000000", `value="canary_started" checked`)
	mustContain(t, admin.get("/history"), "canary_started", "dingtalk", "robot/send")

	// Roles: the member sees no admin navigation, and admin-only actions
	// come back as the API's 403.
	if strings.Contains(member.get("/projects").Body, `href="/users"`) {
		t.Error("a member sees the Users menu")
	}
	mustContain(t, admin.get("/projects"), `href="/users"`)
	if strings.Contains(member.get("/users").Body, `action="/users"`) {
		t.Error("a member sees the create-user form")
	}
	mtoken := member.csrf()
	p := member.post("/users", url.Values{"csrf": {mtoken}, "name": {"eve"}, "role": {"admin"}})
	if p.Status != http.StatusForbidden {
		t.Errorf("member creating a user: %d, want 403", p.Status)
	}
	mustContain(t, p, "only admins")
	if p := member.post("/projects/shop/delete", url.Values{"csrf": {mtoken}}); p.Status != http.StatusForbidden {
		t.Errorf("member deleting a project: %d, want 403", p.Status)
	}
	// A member manages their own tokens, not the admin's.
	if p := member.get("/account"); p.Status != http.StatusSeeOther || !strings.HasSuffix(p.Header.Get("Location"), memberID) {
		t.Errorf("/account: %d %s", p.Status, p.Header.Get("Location"))
	}
	var me struct {
		ID string `json:"id"`
	}
	_, raw = env.Do(t, http.MethodGet, "/api/v1/me", nil)
	decode(t, raw, &me)
	if p := member.get("/users/" + me.ID); p.Status != http.StatusForbidden {
		t.Errorf("member viewing the admin's tokens: %d, want 403", p.Status)
	}

	if p := admin.get("/no/such/page"); p.Status != http.StatusNotFound {
		t.Errorf("unknown page: %d", p.Status)
	}
	if p := admin.get("/projects/nope"); p.Status != http.StatusNotFound {
		t.Errorf("unknown project: %d", p.Status)
	}
}

func TestLanguage(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	b := loggedIn(t, env, "admin", adminPassword)

	b.header.Set("Accept-Language", "zh-CN,zh;q=0.9,en;q=0.8")
	mustContain(t, b.get("/projects"), `<html lang="zh-CN">`, "新建项目", `lang="en" hreflang="en">English</a>`)
	b.header.Set("Accept-Language", "en-US,en;q=0.9,zh;q=0.5")
	mustContain(t, b.get("/projects"), `<html lang="en">`, "New project")

	// The switch wins over the browser, and is remembered.
	p := b.get("/lang?set=zh&next=/projects%3Fcursor%3D")
	if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/projects?cursor=" {
		t.Fatalf("switch: %d → %q", p.Status, p.Header.Get("Location"))
	}
	mustContain(t, b.get("/projects"), `<html lang="zh-CN">`, "新建项目")
	if p := b.get("/lang?set=en&next=https://evil.example/"); p.Header.Get("Location") != "/" {
		t.Fatalf("switch to an outside next: %q", p.Header.Get("Location"))
	}
	mustContain(t, b.get("/projects"), `<html lang="en">`)

	// The login page is translated too.
	anon := newBrowser(t, env)
	anon.header.Set("Accept-Language", "zh")
	mustContain(t, anon.get("/login"), "用户名", "密码")
}

func TestForms(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	b := loggedIn(t, env, "admin", adminPassword)
	ding, cfgID := seed(t, b)
	token := b.csrf()
	form := func(kv ...string) url.Values {
		v := url.Values{"csrf": {token}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v
	}

	t.Run("project validation shows on the input", func(t *testing.T) {
		p := b.post("/projects", form("name", "", "id", "Not A Slug!"))
		if p.Status != http.StatusUnprocessableEntity {
			t.Fatalf("status %d", p.Status)
		}
		mustContain(t, p, `role="alert"`, `id="f-id-err"`, `aria-invalid="true"`, `value="Not A Slug!"`)
	})

	t.Run("many hosts at once, errors by line", func(t *testing.T) {
		p := b.post("/projects/shop/environments/prod/hosts", form("hosts", "web-3 10.0.0.3 group=green\nweb-4 10.0.0.4\n"))
		if p.Status != http.StatusSeeOther {
			t.Fatalf("add hosts: %d %s", p.Status, p.Body)
		}
		mustContain(t, b.get("/projects/shop/environments/prod"), "web-3", "web-4", "group=green", "2 host(s) added")
		p = b.post("/projects/shop/environments/prod/hosts", form("hosts", "web-5 10.0.0.5\n\nweb-6 \"bad address\" x=1\n"))
		if p.Status != http.StatusUnprocessableEntity {
			t.Fatalf("bad hosts: %d", p.Status)
		}
		if !regexp.MustCompile(`line [0-9]`).MatchString(p.Body) {
			t.Errorf("host errors do not name a line: %s", p.Body)
		}
	})

	t.Run("environment keeps its masked key", func(t *testing.T) {
		p := b.post("/projects/shop/environments/prod", form("production", "true", "description", "Production",
			"executor.type", "ssh", "executor.script", "echo deploy", "executor.user", "deploy", "executor.port", "2222",
			"executor.private_key", "******", "executor.env", "A=1\nB=2"))
		if p.Status != http.StatusSeeOther {
			t.Fatalf("save environment: %d %s", p.Status, p.Body)
		}
		var e struct {
			Executor struct {
				PrivateKey string            `json:"private_key"`
				Port       int               `json:"port"`
				Env        map[string]string `json:"env"`
			} `json:"executor"`
		}
		env.JSON(t, http.MethodGet, "/api/v1/release/projects/shop/environments/prod", nil, http.StatusOK, &e)
		if e.Executor.PrivateKey != "******" || e.Executor.Port != 2222 || e.Executor.Env["B"] != "2" {
			t.Fatalf("environment after save: %+v", e.Executor)
		}
		p = b.post("/projects/shop/environments/prod", form("executor.type", "ssh", "executor.script", "", "executor.user", ""))
		mustContain(t, p, `id="f-executor.script-err"`, `id="f-executor.user-err"`)
	})

	t.Run("callback form: add a channel, inline errors, masked secrets kept", func(t *testing.T) {
		// Adding a channel shows its fields without saving.
		p := b.post("/callbacks/new", form("project_id", "shop", "channel_count", "0", "op", "add", "add_type", "dingtalk"))
		mustContain(t, p, `name="channels[0].config.webhook_url"`, `name="channels[0].config.at_mobiles"`)

		// A webhook without its access_token: the API's 422 lands on the input.
		p = b.post("/callbacks/new", form("project_id", "shop", "name", "Broken", "enabled", "true", "channel_count", "1",
			"channels[0].type", "dingtalk", "channels[0].enabled", "true",
			"channels[0].config.webhook_url", "https://oapi.dingtalk.com/robot/send", "channels[0].config.at_mobiles", "138, abc"))
		if p.Status != http.StatusUnprocessableEntity {
			t.Fatalf("status %d: %s", p.Status, p.Body)
		}
		mustContain(t, p, `id="f-channels[0].config.webhook_url-err"`, "access_token", `id="f-channels[0].config.at_mobiles-err"`,
			`value="https://oapi.dingtalk.com/robot/send"`)

		// Saving the stored configuration as shown keeps the secrets: the
		// fake robot checks the signature made with the stored secret.
		edit := b.get("/callbacks/" + cfgID)
		vals := formValues(edit.Body, `action="/callbacks/`+cfgID+`"`)
		vals.Set("csrf", token)
		vals.Set("op", "save")
		vals.Set("name", "Ops DingTalk (renamed)")
		if p := b.post("/callbacks/"+cfgID, vals); p.Status != http.StatusSeeOther {
			t.Fatalf("save as shown: %d %s", p.Status, p.Body)
		}
		status, raw := env.Do(t, http.MethodPost, "/api/v1/release/callbacks/"+cfgID+"/test", map[string]any{})
		if status != http.StatusOK || !strings.Contains(string(raw), `"status":"success"`) {
			t.Fatalf("test after a save of masked secrets: %d %s", status, raw)
		}
		msgs := ding.WaitMessages(t, 1)
		if len(msgs[0].AtMobiles) != 1 || msgs[0].AtMobiles[0] != "13800000000" {
			t.Fatalf("mentions after save: %+v", msgs[0].AtMobiles)
		}
	})

	t.Run("test button without JavaScript", func(t *testing.T) {
		p := b.post("/callbacks/"+cfgID+"/test", form())
		mustContain(t, p, "Test results", "r-success")
	})

	t.Run("toggle and redeliver", func(t *testing.T) {
		if p := b.post("/callbacks/"+cfgID+"/toggle", form("back", "/callbacks")); p.Status != http.StatusSeeOther {
			t.Fatalf("toggle: %d", p.Status)
		}
		var cfg struct {
			Enabled bool `json:"enabled"`
		}
		env.JSON(t, http.MethodGet, "/api/v1/release/callbacks/"+cfgID, nil, http.StatusOK, &cfg)
		if cfg.Enabled {
			t.Fatal("still enabled after Disable")
		}
		b.post("/callbacks/"+cfgID+"/toggle", form())

		var hist struct {
			Items []struct {
				ID string `json:"id"`
			} `json:"items"`
		}
		env.JSON(t, http.MethodGet, "/api/v1/release/callbacks/history", nil, http.StatusOK, &hist)
		if len(hist.Items) == 0 {
			t.Fatal("no history")
		}
		p := b.post("/history/"+hist.Items[0].ID+"/redeliver", form("back", "/history"))
		if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/history" {
			t.Fatalf("redeliver: %d %s", p.Status, p.Header.Get("Location"))
		}
		mustContain(t, b.get("/history"), "Redelivery queued")
	})

	t.Run("tokens are shown once and revoked", func(t *testing.T) {
		var me struct {
			ID string `json:"id"`
		}
		env.JSON(t, http.MethodGet, "/api/v1/me", nil, http.StatusOK, &me)
		p := b.post("/users/"+me.ID+"/tokens", form("name", "ci"))
		if p.Status != http.StatusCreated {
			t.Fatalf("create token: %d", p.Status)
		}
		m := regexp.MustCompile(`<code id="new-token">(hrd_[a-z0-9]+)</code>`).FindStringSubmatch(p.Body)
		if m == nil {
			t.Fatalf("token not shown: %s", p.Body)
		}
		if status, _ := env.DoAs(t, m[1], http.MethodGet, "/api/v1/me", nil); status != http.StatusOK {
			t.Fatalf("new token does not work: %d", status)
		}
		if strings.Contains(b.get("/users/"+me.ID).Body, m[1]) {
			t.Fatal("the token is shown again")
		}
		tokID := regexp.MustCompile(`action="/tokens/([^/]+)/revoke"`).FindAllStringSubmatch(b.get("/users/"+me.ID).Body, -1)
		for _, id := range tokID {
			b.post("/tokens/"+id[1]+"/revoke", form())
		}
		if status, _ := env.DoAs(t, m[1], http.MethodGet, "/api/v1/me", nil); status != http.StatusUnauthorized {
			t.Fatalf("revoked token still works: %d", status)
		}
	})
}

// formValues reads the inputs of the form whose opening tag contains
// marker, as a browser would submit them (checked boxes only; selects
// with their selected option).
func formValues(body, marker string) url.Values {
	start := strings.Index(body, marker)
	end := strings.Index(body[start:], "</form>")
	f := body[start : start+end]
	v := url.Values{}
	attr := func(tag, name string) (string, bool) {
		m := regexp.MustCompile(`\s` + name + `="([^"]*)"`).FindStringSubmatch(tag)
		if m == nil {
			return "", false
		}
		return unescape(m[1]), true
	}
	for _, tag := range regexp.MustCompile(`<input[^>]*>`).FindAllString(f, -1) {
		name, ok := attr(tag, "name")
		if !ok {
			continue
		}
		typ, _ := attr(tag, "type")
		if (typ == "checkbox" || typ == "radio") && !strings.Contains(tag, " checked") {
			continue
		}
		if typ == "submit" {
			continue
		}
		val, _ := attr(tag, "value")
		v.Add(name, val)
	}
	for _, m := range regexp.MustCompile(`(?s)<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>`).FindAllStringSubmatch(f, -1) {
		// A browser drops the line end that starts a text area's content.
		v.Add(unescape(m[1]), strings.TrimPrefix(unescape(m[2]), "\n"))
	}
	for _, m := range regexp.MustCompile(`(?s)<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>`).FindAllStringSubmatch(f, -1) {
		sel := regexp.MustCompile(`<option value="([^"]*)" selected>`).FindStringSubmatch(m[2])
		if sel == nil {
			sel = regexp.MustCompile(`<option value="([^"]*)"`).FindStringSubmatch(m[2])
		}
		if sel != nil {
			v.Add(unescape(m[1]), unescape(sel[1]))
		}
	}
	return v
}

func unescape(s string) string { return html.UnescapeString(s) }

var (
	keyOnce sync.Once
	keyPEM  string
)

// privateKey is an SSH private key, made once per run.
func privateKey(t *testing.T) string {
	keyOnce.Do(func() {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		block, err := ssh.MarshalPrivateKey(priv, "")
		if err != nil {
			t.Fatal(err)
		}
		keyPEM = string(pem.EncodeToMemory(block))
	})
	return keyPEM
}
