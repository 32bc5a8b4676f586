package api_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/herald-release/herald/internal/app/apptest"
)

// snapshot is everything a refused request must leave as it was: every
// list the API has, and the event count.
func snapshot(t *testing.T, e *apptest.Env) string {
	t.Helper()
	var b strings.Builder
	for _, p := range []string{
		"/api/v1/users",
		"/api/v1/release/projects",
		"/api/v1/release/projects/shop",
		"/api/v1/release/projects/shop/environments",
		"/api/v1/release/projects/shop/environments/prod/hosts",
		"/api/v1/release/projects/shop/versions",
	} {
		s, raw := e.Do(t, "GET", p, nil)
		if s != 200 {
			t.Fatalf("snapshot GET %s: %d %s", p, s, raw)
		}
		fmt.Fprintf(&b, "%s\n%s\n", p, raw)
	}
	for _, table := range []string{"users", "api_tokens", "projects", "environments", "hosts", "versions", "events"} {
		var n int
		if err := e.App.DB.QueryRow(context.Background(), `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s: %d rows\n", table, n)
	}
	var sealed string
	if err := e.App.DB.QueryRow(context.Background(), `SELECT executor FROM environments WHERE name = 'prod'`).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "executor %s\n", sealed)
	return b.String()
}

// TestBadInput sends every kind of bad body of CONTRACT §2 to the write
// routes: each gets a 4xx JSON error naming what is wrong, never a 5xx,
// and nothing changes.
func TestBadInput(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, e *apptest.Env) {
		const pp = "/api/v1/release/projects/shop"
		e.JSON(t, "POST", "/api/v1/release/projects", map[string]any{"name": "Shop"}, 201, nil)
		e.JSON(t, "POST", pp+"/environments", map[string]any{"name": "prod", "executor": map[string]any{"type": "local", "script": "true"}}, 201, nil)
		e.JSON(t, "POST", pp+"/environments/prod/hosts", map[string]any{"name": "h1", "address": "10.0.0.1"}, 201, nil)
		e.JSON(t, "POST", pp+"/versions", map[string]any{"name": "v1"}, 201, nil)
		admin := me(t, e, e.Token)

		huge := `{"name":"` + strings.Repeat("a", 1<<20) + `"}`
		hugeHosts := `{"hosts":[` + strings.Repeat(`{"name":"h","address":"10.0.0.1"},`, 40000) + `{}]}`
		local := `"executor":{"type":"local","script":"true"}`

		type route struct{ method, path string }
		var (
			createProject = route{"POST", "/api/v1/release/projects"}
			updateProject = route{"PUT", pp}
			createEnv     = route{"POST", pp + "/environments"}
			updateEnv     = route{"PUT", pp + "/environments/prod"}
			addHosts      = route{"POST", pp + "/environments/prod/hosts"}
			createVersion = route{"POST", pp + "/versions"}
			createUser    = route{"POST", "/api/v1/users"}
			createToken   = route{"POST", "/api/v1/users/" + admin.ID + "/tokens"}
		)
		writes := []route{createProject, updateProject, createEnv, updateEnv, addHosts, createVersion, createUser, createToken}

		tests := []struct {
			name   string
			routes []route
			body   string
			status int
			code   string
			field  string // a details[].field that must be present
		}{
			// Bodies that are not one JSON object: every write route.
			{"empty body", writes, "", 400, "invalid_json", ""},
			{"whitespace body", writes, " \n\t", 400, "invalid_json", ""},
			{"malformed", writes, `{"name": "x",}`, 400, "invalid_json", ""},
			{"truncated", writes, `{"name": "x"`, 400, "invalid_json", ""},
			{"not JSON", writes, `name=x`, 400, "invalid_json", ""},
			{"trailing garbage", writes, `{"name": "x"} garbage`, 400, "invalid_json", ""},
			{"trailing brace", writes, `{"name": "x"}}`, 400, "invalid_json", ""},
			{"two objects", writes, `{"name": "x"}{"name": "y"}`, 400, "invalid_json", ""},
			{"over 1 MiB", writes, huge, 413, "payload_too_large", ""},
			{"an array", []route{createProject, createEnv, createVersion, createUser}, `[{"name": "x"}]`, 422, "validation_failed", "body"},
			{"a string", []route{createProject, createEnv, createVersion, createUser}, `"x"`, 422, "validation_failed", "body"},

			// Wrong types.
			{"name: 5", []route{createProject, updateProject, createEnv, createVersion, createUser, createToken}, `{"name": 5}`, 422, "validation_failed", "name"},
			{"description: []", []route{createProject, createVersion}, `{"name": "x", "description": []}`, 422, "validation_failed", "description"},
			{"production: \"yes\"", []route{createEnv, updateEnv}, `{"name": "qa", "production": "yes", ` + local + `}`, 422, "validation_failed", "production"},
			{"executor: \"local\"", []route{createEnv, updateEnv}, `{"name": "qa", "executor": "local"}`, 422, "validation_failed", "executor"},
			{"executor.timeout: \"3\"", []route{createEnv, updateEnv}, `{"name": "qa", "executor": {"type": "local", "script": "x", "timeout": "3"}}`, 422, "validation_failed", "executor.timeout"},
			{"executor.timeout: 30", []route{createEnv, updateEnv}, `{"name": "qa", "executor": {"type": "local", "script": "x", "timeout": 30}}`, 422, "validation_failed", "executor.timeout"},
			{"executor.timeout: \"-5m\"", []route{createEnv, updateEnv}, `{"name": "qa", "executor": {"type": "local", "script": "x", "timeout": "-5m"}}`, 422, "validation_failed", "executor.timeout"},
			{"executor.timeout: \"48h\"", []route{createEnv, updateEnv}, `{"name": "qa", "executor": {"type": "local", "script": "x", "timeout": "48h"}}`, 422, "validation_failed", "executor.timeout"},
			{"executor.port: \"22\"", []route{createEnv, updateEnv}, `{"name": "qa", "executor": {"type": "ssh", "user": "u", "port": "22", "script": "x"}}`, 422, "validation_failed", "executor.port"},
			{"executor.port: 1e10", []route{createEnv, updateEnv}, `{"name": "qa", "executor": {"type": "ssh", "user": "u", "port": 10000000000, "script": "x"}}`, 422, "validation_failed", "executor.port"},
			{"executor.env: []", []route{createEnv, updateEnv}, `{"name": "qa", "executor": {"type": "local", "script": "x", "env": ["A=1"]}}`, 422, "validation_failed", "executor.env"},
			{"executor.env value: 1", []route{createEnv, updateEnv}, `{"name": "qa", "executor": {"type": "local", "script": "x", "env": {"A": 1}}}`, 422, "validation_failed", "executor.env"},
			{"hosts: {}", []route{addHosts}, `{"hosts": {}}`, 422, "validation_failed", "hosts"},
			{"hosts: \"h1\"", []route{addHosts}, `{"hosts": "h1"}`, 422, "validation_failed", "hosts"},
			{"hosts[].address: 5", []route{addHosts}, `{"hosts": [{"name": "h2", "address": "10.0.0.2"}, {"name": "h3", "address": 5}]}`, 422, "validation_failed", "hosts[1].address"},
			{"hosts[]: \"h2\"", []route{addHosts}, `{"hosts": [{"name": "h2", "address": "10.0.0.2"}, "h3"]}`, 422, "validation_failed", "hosts[1]"},
			{"labels: []", []route{addHosts}, `{"name": "h2", "address": "10.0.0.2", "labels": ["group"]}`, 422, "validation_failed", "labels"},
			{"labels.group: 1", []route{addHosts}, `{"name": "h2", "address": "10.0.0.2", "labels": {"group": 1}}`, 422, "validation_failed", "labels"},
			{"metadata: \"x\"", []route{createVersion}, `{"name": "v2", "metadata": "x"}`, 422, "validation_failed", "metadata"},
			{"role: 1", []route{createUser}, `{"name": "z", "role": 1}`, 422, "validation_failed", "role"},

			// Unknown enum values.
			{"executor.type docker", []route{createEnv, updateEnv}, `{"name": "qa", "executor": {"type": "docker", "script": "x"}}`, 422, "validation_failed", "executor.type"},
			{"role owner", []route{createUser}, `{"name": "z", "role": "owner"}`, 422, "validation_failed", "role"},
			{"labels.group purple", []route{addHosts}, `{"name": "h2", "address": "10.0.0.2", "labels": {"group": "purple"}}`, 422, "validation_failed", "labels.group"},

			// Missing required fields.
			{"project without name", []route{createProject, updateProject}, `{"description": "x"}`, 422, "validation_failed", "name"},
			{"environment without name", []route{createEnv}, `{` + local + `}`, 422, "validation_failed", "name"},
			{"environment without executor", []route{createEnv, updateEnv}, `{"name": "qa", "production": true}`, 422, "validation_failed", "executor"},
			{"executor without type", []route{createEnv, updateEnv}, `{"name": "qa", "executor": {"script": "x"}}`, 422, "validation_failed", "executor.type"},
			{"executor without script", []route{createEnv, updateEnv}, `{"name": "qa", "executor": {"type": "local"}}`, 422, "validation_failed", "executor.script"},
			{"ssh without user and key", []route{createEnv, updateEnv}, `{"name": "qa", "executor": {"type": "ssh", "script": "x"}}`, 422, "validation_failed", "executor.private_key"},
			{"host without name", []route{addHosts}, `{"address": "10.0.0.2"}`, 422, "validation_failed", "name"},
			{"host without address", []route{addHosts}, `{"name": "h2"}`, 422, "validation_failed", "address"},
			{"hosts: null", []route{addHosts}, `{"hosts": null}`, 422, "validation_failed", "hosts"},
			{"version without name", []route{createVersion}, `{"artifact": "x"}`, 422, "validation_failed", "name"},
			{"user without role", []route{createUser}, `{"name": "z"}`, 422, "validation_failed", "role"},
			{"token without name", []route{createToken}, `{}`, 422, "validation_failed", "name"},
			{"empty object", []route{createProject, createEnv, createVersion, createUser}, `{}`, 422, "validation_failed", "name"},

			// Bad values.
			{"environment name not a slug", []route{createEnv}, `{"name": "Prod Env", ` + local + `}`, 422, "validation_failed", "name"},
			{"env variable HERALD_", []route{createEnv, updateEnv}, `{"name": "qa", "executor": {"type": "local", "script": "x", "env": {"HERALD_HOST": "x"}}}`, 422, "validation_failed", "executor.env.HERALD_HOST"},
			{"env variable not a name", []route{createEnv, updateEnv}, `{"name": "qa", "executor": {"type": "local", "script": "x", "env": {"A;rm": "x"}}}`, 422, "validation_failed", "executor.env.A;rm"},
			{"script with NUL", []route{createEnv, updateEnv}, `{"name": "qa", "executor": {"type": "local", "script": "a\u0000b"}}`, 422, "validation_failed", "executor.script"},
			{"host address with shell", []route{addHosts}, `{"name": "h2", "address": "$(reboot)"}`, 422, "validation_failed", "address"},
			{"version name with newline", []route{createVersion}, `{"name": "v2\n"}`, 422, "validation_failed", "name"},

			// NUL characters: PostgreSQL cannot store them in text.
			{"NUL in name", []route{createProject, updateProject, createVersion, createUser, createToken}, `{"name": "a\u0000b", "role": "member"}`, 422, "validation_failed", "name"},
			{"NUL in description", []route{createProject, updateProject, createVersion}, `{"name": "ok", "description": "x\u0000"}`, 422, "validation_failed", "description"},
			{"NUL in environment description", []route{createEnv, updateEnv}, `{"name": "qa", "description": "x\u0000", ` + local + `}`, 422, "validation_failed", "description"},
			{"NUL in artifact", []route{createVersion}, `{"name": "v2", "artifact": "s3://x\u0000"}`, 422, "validation_failed", "artifact"},
			{"NUL in metadata", []route{createVersion}, `{"name": "v2", "metadata": {"k": ["ok", "x\u0000"]}}`, 422, "validation_failed", "metadata.k[1]"},
			{"NUL in executor env", []route{createEnv, updateEnv}, `{"name": "qa", "executor": {"type": "local", "script": "x", "env": {"A": "x\u0000"}}}`, 422, "validation_failed", "executor.env.A"},
			{"NUL in host address", []route{addHosts}, `{"name": "h2", "address": "10.0.0.2\u0000"}`, 422, "validation_failed", "address"},
			{"NUL in bulk host address", []route{addHosts}, `{"hosts": [{"name": "h2", "address": "10.0.0.2"}, {"name": "h3", "address": "10.0.0.3\u0000"}]}`, 422, "validation_failed", "hosts[1].address"},
			{"NUL in a label", []route{addHosts}, `{"name": "h2", "address": "10.0.0.2", "labels": {"zone": "\u0000"}}`, 422, "validation_failed", "labels.zone"},
			{"NUL in an email", []route{createUser}, `{"name": "z", "role": "member", "email": "z\u0000@example.com"}`, 422, "validation_failed", "email"},
		}
		before := snapshot(t, e)
		for _, tt := range tests {
			for _, r := range tt.routes {
				what := fmt.Sprintf("%s: %s %s", tt.name, r.method, r.path)
				body := tt.body
				if r == updateEnv {
					// An environment PUT names no other environment.
					body = strings.Replace(body, `"name": "qa", `, "", 1)
				}
				resp, raw := send(t, e, r.method, r.path, http.Header{
					"Authorization": {"Bearer " + e.Token}, "Content-Type": {"application/json"},
				}, strings.NewReader(body))
				if resp.StatusCode >= 500 {
					t.Errorf("%s: %d %s", what, resp.StatusCode, raw)
					continue
				}
				var fields []string
				if tt.field != "" {
					fields = append(fields, tt.field)
				}
				b := wantErr(t, what, resp.StatusCode, raw, tt.status, tt.code, fields...)
				if b.Error.RequestID == "" || b.Error.RequestID != resp.Header.Get("X-Request-Id") {
					t.Errorf("%s: error.request_id %q, header %q", what, b.Error.RequestID, resp.Header.Get("X-Request-Id"))
				}
				if len(raw) > 4096 {
					t.Errorf("%s: a %d-byte error echoes the input", what, len(raw))
				}
			}
		}
		// A huge bulk host list is too large, not a 5xx or a slow insert.
		resp, raw := send(t, e, "POST", pp+"/environments/prod/hosts", http.Header{"Authorization": {"Bearer " + e.Token}}, strings.NewReader(hugeHosts))
		wantErr(t, "huge bulk hosts", resp.StatusCode, raw, 413, "payload_too_large")
		if after := snapshot(t, e); after != before {
			t.Fatalf("refused requests changed something:\nbefore:\n%s\nafter:\n%s", before, after)
		}

		// A body just under the limit is read.
		under := `{"name": "v-under", "metadata": {"pad": "` + strings.Repeat("p", 60<<10) + `"}}` + strings.Repeat(" ", 900<<10)
		if len(under) >= 1<<20 {
			t.Fatal("test body too big")
		}
		resp, raw = send(t, e, "POST", pp+"/versions", http.Header{"Authorization": {"Bearer " + e.Token}}, bytes.NewReader([]byte(under)))
		if resp.StatusCode != 201 {
			t.Fatalf("a body under 1 MiB: %d %s", resp.StatusCode, raw)
		}
	})
}
