package api_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/herald-release/herald/internal/app/apptest"
)

type project struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

type environment struct {
	ProjectID   string         `json:"project_id"`
	Name        string         `json:"name"`
	Production  bool           `json:"production"`
	Description string         `json:"description"`
	Executor    map[string]any `json:"executor"`
	LiveGroup   string         `json:"live_group"`
}

type host struct {
	Name    string            `json:"name"`
	Address string            `json:"address"`
	Labels  map[string]string `json:"labels"`
}

type version struct {
	ID          string         `json:"id"`
	ProjectID   string         `json:"project_id"`
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Artifact    string         `json:"artifact"`
	Metadata    map[string]any `json:"metadata"`
	CreatedBy   string         `json:"created_by"`
	CreatedAt   time.Time      `json:"created_at"`
}

// sshKey is a fresh unencrypted ed25519 private key in OpenSSH PEM, and a
// known_hosts line for a host key.
func sshKey(t testing.TB) (privatePEM, knownHosts string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	hostPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(hostPub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(block)), knownhosts.Line([]string{"10.0.0.1", "[10.0.0.2]:2222"}, sshPub) + "\n"
}

// keyBody is the part of a PEM key that must never appear anywhere.
func keyBody(pemText string) []string {
	var out []string
	for _, line := range strings.Split(pemText, "\n") {
		if len(line) > 20 && !strings.HasPrefix(line, "-----") {
			out = append(out, line)
		}
	}
	return out
}

func assertNoKey(t testing.TB, where string, raw []byte, keys ...string) {
	t.Helper()
	for _, k := range keys {
		for _, line := range keyBody(k) {
			if bytes.Contains(raw, []byte(line)) {
				t.Fatalf("%s shows the private key: %s", where, raw)
			}
		}
	}
	if bytes.Contains(raw, []byte("BEGIN OPENSSH PRIVATE KEY")) {
		t.Fatalf("%s shows a private key: %s", where, raw)
	}
}

func TestProjects(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, e *apptest.Env) {
		var p project
		e.JSON(t, "POST", "/api/v1/release/projects", map[string]any{"name": "  My Shop: Web & API!  ", "description": "the shop"}, 201, &p)
		if p.ID != "my-shop-web-api" || p.Name != "My Shop: Web & API!" || p.Description != "the shop" || p.CreatedAt.IsZero() || !p.UpdatedAt.Equal(p.CreatedAt) {
			t.Fatalf("created %+v; want id my-shop-web-api from the name", p)
		}
		var custom project
		e.JSON(t, "POST", "/api/v1/release/projects", map[string]any{"id": "billing", "name": "Billing Service"}, 201, &custom)
		if custom.ID != "billing" {
			t.Fatalf("explicit id: %+v", custom)
		}

		for _, dup := range []map[string]any{
			{"name": "My Shop - Web & API"}, // same slug
			{"id": "billing", "name": "Another"},
		} {
			s, raw := e.Do(t, "POST", "/api/v1/release/projects", dup)
			wantErr(t, fmt.Sprint("duplicate ", dup), s, raw, 409, "conflict")
		}
		for _, bad := range []struct {
			body  map[string]any
			field string
		}{
			{map[string]any{"name": "!!!"}, "id"}, // no slug can be made
			{map[string]any{"id": "Bad_ID", "name": "x"}, "id"},
			{map[string]any{"id": "-x", "name": "x"}, "id"},
			{map[string]any{"name": "   "}, "name"},
			{map[string]any{"name": strings.Repeat("n", 201)}, "name"},
			{map[string]any{"name": "x", "description": strings.Repeat("d", 4001)}, "description"},
		} {
			s, raw := e.Do(t, "POST", "/api/v1/release/projects", bad.body)
			wantErr(t, fmt.Sprint("bad project ", bad.field), s, raw, 422, "validation_failed", bad.field)
		}

		var got project
		e.JSON(t, "GET", "/api/v1/release/projects/my-shop-web-api", nil, 200, &got)
		if got.ID != p.ID || got.Name != p.Name || !got.CreatedAt.Equal(p.CreatedAt) {
			t.Fatalf("GET = %+v, want %+v", got, p)
		}
		s, raw := e.Do(t, "GET", "/api/v1/release/projects/nope", nil)
		wantErr(t, "missing project", s, raw, 404, "not_found")

		var list page[project]
		e.JSON(t, "GET", "/api/v1/release/projects", nil, 200, &list)
		if len(list.Items) != 2 || list.Items[0].ID != "billing" || list.Items[1].ID != "my-shop-web-api" || list.NextCursor != "" {
			t.Fatalf("list = %+v", list)
		}
		var p1, p2 page[project]
		e.JSON(t, "GET", "/api/v1/release/projects?limit=1", nil, 200, &p1)
		e.JSON(t, "GET", "/api/v1/release/projects?limit=1&cursor="+url.QueryEscape(p1.NextCursor), nil, 200, &p2)
		if len(p1.Items) != 1 || p1.NextCursor == "" || len(p2.Items) != 1 || p2.Items[0].ID != "my-shop-web-api" || p2.NextCursor != "" {
			t.Fatalf("paging: %+v then %+v", p1, p2)
		}

		// PUT replaces name and description; the id stays.
		var upd project
		e.JSON(t, "PUT", "/api/v1/release/projects/my-shop-web-api", map[string]any{"name": "Shop", "description": "renamed"}, 200, &upd)
		if upd.ID != p.ID || upd.Name != "Shop" || upd.Description != "renamed" || !upd.CreatedAt.Equal(p.CreatedAt) || upd.UpdatedAt.Before(p.UpdatedAt) {
			t.Fatalf("PUT = %+v", upd)
		}
		e.JSON(t, "PUT", "/api/v1/release/projects/my-shop-web-api", map[string]any{"id": "my-shop-web-api", "name": "Shop", "description": "renamed"}, 200, nil)
		e.JSON(t, "GET", "/api/v1/release/projects/my-shop-web-api", nil, 200, &got)
		if got.Name != "Shop" || got.Description != "renamed" {
			t.Fatalf("after PUT, GET = %+v", got)
		}
		s, raw = e.Do(t, "PUT", "/api/v1/release/projects/my-shop-web-api", map[string]any{"id": "other", "name": "x"})
		wantErr(t, "PUT changing the id", s, raw, 422, "validation_failed", "id")
		s, raw = e.Do(t, "PUT", "/api/v1/release/projects/my-shop-web-api", map[string]any{"description": "no name"})
		wantErr(t, "PUT without name", s, raw, 422, "validation_failed", "name")
		s, raw = e.Do(t, "PUT", "/api/v1/release/projects/nope", map[string]any{"name": "x"})
		wantErr(t, "PUT missing", s, raw, 404, "not_found")

		// DELETE takes environments, hosts and versions with it.
		const pp = "/api/v1/release/projects/my-shop-web-api"
		e.JSON(t, "POST", pp+"/environments", map[string]any{"name": "prod", "executor": map[string]any{"type": "local", "script": "true"}}, 201, nil)
		e.JSON(t, "POST", pp+"/environments/prod/hosts", map[string]any{"name": "h1", "address": "10.0.0.1"}, 201, nil)
		var v version
		e.JSON(t, "POST", pp+"/versions", map[string]any{"name": "v1"}, 201, &v)
		e.JSON(t, "DELETE", pp, nil, 204, nil)
		for _, path := range []string{pp, pp + "/environments", pp + "/environments/prod", pp + "/environments/prod/hosts", pp + "/versions", pp + "/versions/" + v.ID} {
			s, raw := e.Do(t, "GET", path, nil)
			wantErr(t, "GET after project delete "+path, s, raw, 404, "not_found")
		}
		ctx := context.Background()
		for _, table := range []string{"environments", "hosts", "versions"} {
			var n int
			if err := e.App.DB.QueryRow(ctx, `SELECT COUNT(*) FROM `+table+` WHERE project_id = $1`, p.ID).Scan(&n); err != nil || n != 0 {
				t.Fatalf("%s rows left after the project was deleted: %d, %v", table, n, err)
			}
		}
		s, raw = e.Do(t, "DELETE", pp, nil)
		wantErr(t, "DELETE twice", s, raw, 404, "not_found")
		// The id is free again, and nothing comes back with it.
		e.JSON(t, "POST", "/api/v1/release/projects", map[string]any{"id": p.ID, "name": "Again"}, 201, nil)
		var envs page[environment]
		e.JSON(t, "GET", pp+"/environments", nil, 200, &envs)
		var vers page[version]
		e.JSON(t, "GET", pp+"/versions", nil, 200, &vers)
		if len(envs.Items) != 0 || len(vers.Items) != 0 || envs.Items == nil || vers.Items == nil {
			t.Fatalf("a re-created project has environments %v and versions %v (want empty lists, not null)", envs.Items, vers.Items)
		}
	})
}

func TestEnvironmentsAndSecrets(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, e *apptest.Env) {
		ctx := context.Background()
		e.JSON(t, "POST", "/api/v1/release/projects", map[string]any{"name": "Shop"}, 201, nil)
		const pp = "/api/v1/release/projects/shop"
		key1, known := sshKey(t)
		key2, _ := sshKey(t)

		var local environment
		e.JSON(t, "POST", pp+"/environments", map[string]any{
			"name": "staging", "description": "pre-prod",
			"executor": map[string]any{"type": "local", "script": "./deploy.sh", "timeout": "5m", "env": map[string]string{"REGION": "eu"}},
		}, 201, &local)
		if local.ProjectID != "shop" || local.Name != "staging" || local.Production || local.Executor["type"] != "local" ||
			local.Executor["script"] != "./deploy.sh" || local.Executor["env"].(map[string]any)["REGION"] != "eu" {
			t.Fatalf("local environment = %+v", local)
		}
		if d, err := time.ParseDuration(fmt.Sprint(local.Executor["timeout"])); err != nil || d != 5*time.Minute {
			t.Fatalf("timeout came back as %v, want a Go duration of 5m", local.Executor["timeout"])
		}

		sshBody := map[string]any{
			"name": "production", "production": true,
			"executor": map[string]any{"type": "ssh", "user": "deploy", "port": 2222, "private_key": key1,
				"known_hosts": known, "script": "sudo systemctl restart shop", "timeout": "10m"},
		}
		s, raw := e.Do(t, "POST", pp+"/environments", sshBody)
		if s != 201 {
			t.Fatalf("create ssh environment: %d %s", s, raw)
		}
		assertNoKey(t, "POST environment", raw, key1)
		var prod environment
		_ = json.Unmarshal(raw, &prod)
		if prod.Executor["private_key"] != "******" || prod.Executor["user"] != "deploy" || prod.Executor["port"] != float64(2222) || !prod.Production {
			t.Fatalf("ssh environment = %s", raw)
		}
		if prod.Executor["known_hosts"] != known {
			t.Fatalf("known_hosts (public) changed: %q", prod.Executor["known_hosts"])
		}

		s, raw = e.Do(t, "POST", pp+"/environments", sshBody)
		wantErr(t, "duplicate environment", s, raw, 409, "conflict")
		assertNoKey(t, "duplicate environment error", raw, key1)
		s, raw = e.Do(t, "POST", "/api/v1/release/projects/nope/environments", sshBody)
		wantErr(t, "environment of a missing project", s, raw, 404, "not_found")

		for _, path := range []string{pp + "/environments/production", pp + "/environments"} {
			s, raw := e.Do(t, "GET", path, nil)
			if s != 200 || !bytes.Contains(raw, []byte(`"private_key":"******"`)) {
				t.Fatalf("GET %s: %d %s", path, s, raw)
			}
			assertNoKey(t, "GET "+path, raw, key1)
		}
		var envs page[environment]
		e.JSON(t, "GET", pp+"/environments", nil, 200, &envs)
		if len(envs.Items) != 2 || envs.Items[0].Name != "production" || envs.Items[1].Name != "staging" {
			t.Fatalf("environments = %+v", envs.Items)
		}
		// The list follows §2: limit and cursor.
		var e1, e2 page[environment]
		e.JSON(t, "GET", pp+"/environments?limit=1", nil, 200, &e1)
		e.JSON(t, "GET", pp+"/environments?limit=1&cursor="+url.QueryEscape(e1.NextCursor), nil, 200, &e2)
		if len(e1.Items) != 1 || e1.Items[0].Name != "production" || e1.NextCursor == "" ||
			len(e2.Items) != 1 || e2.Items[0].Name != "staging" || e2.NextCursor != "" {
			t.Fatalf("environment pages: %+v then %+v", e1, e2)
		}
		for _, q := range []string{"limit=0", "limit=501", "limit=x", "cursor=%21"} {
			s, raw := e.Do(t, "GET", pp+"/environments?"+q, nil)
			wantErr(t, "environments?"+q, s, raw, 422, "validation_failed")
		}

		// PUT with the mask keeps the stored key; other fields change.
		s, raw = e.Do(t, "PUT", pp+"/environments/production", map[string]any{
			"production": true, "description": "live",
			"executor": map[string]any{"type": "ssh", "user": "release", "private_key": "******", "script": "deploy v2"},
		})
		if s != 200 {
			t.Fatalf("PUT with a masked key: %d %s", s, raw)
		}
		assertNoKey(t, "PUT environment", raw, key1)
		var put environment
		_ = json.Unmarshal(raw, &put)
		if put.Description != "live" || put.Executor["user"] != "release" || put.Executor["private_key"] != "******" {
			t.Fatalf("PUT = %s", raw)
		}
		stored, err := e.App.Inventory.GetEnvironment(ctx, "shop", "production")
		if err != nil {
			t.Fatal(err)
		}
		if stored.Executor.PrivateKey != key1 || stored.Executor.User != "release" || stored.Executor.Script != "deploy v2" || stored.Description != "live" {
			t.Fatalf("after PUT with the mask, stored = %+v (key kept: %v)", stored.Executor, stored.Executor.PrivateKey == key1)
		}

		// A new key replaces it.
		e.JSON(t, "PUT", pp+"/environments/production", map[string]any{
			"production": true,
			"executor":   map[string]any{"type": "ssh", "user": "release", "private_key": key2, "script": "deploy v3"},
		}, 200, nil)
		if stored, err = e.App.Inventory.GetEnvironment(ctx, "shop", "production"); err != nil || stored.Executor.PrivateKey != key2 {
			t.Fatalf("after PUT with a new key the stored key is not it (%v)", err)
		}

		// At rest the executor is sealed.
		var sealed string
		if err := e.App.DB.QueryRow(ctx, `SELECT executor FROM environments WHERE project_id = 'shop' AND name = 'production'`).Scan(&sealed); err != nil {
			t.Fatal(err)
		}
		assertNoKey(t, "the executor column", []byte(sealed), key1, key2)
		if strings.Contains(sealed, "deploy v3") || strings.Contains(sealed, `"ssh"`) {
			t.Fatalf("the executor column is not sealed: %s", sealed)
		}

		for _, bad := range []struct {
			name  string
			body  map[string]any
			field string
		}{
			{"rename", map[string]any{"name": "prod2", "executor": map[string]any{"type": "local", "script": "x"}}, "name"},
			{"no executor", map[string]any{"production": true}, "executor"},
			{"garbled key", map[string]any{"executor": map[string]any{"type": "ssh", "user": "u", "private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nnope\n-----END OPENSSH PRIVATE KEY-----\n", "script": "x"}}, "executor.private_key"},
			{"bad known_hosts", map[string]any{"executor": map[string]any{"type": "ssh", "user": "u", "private_key": "******", "known_hosts": "garbage line", "script": "x"}}, "executor.known_hosts"},
			{"bad port", map[string]any{"executor": map[string]any{"type": "ssh", "user": "u", "private_key": "******", "port": 70000, "script": "x"}}, "executor.port"},
		} {
			s, raw := e.Do(t, "PUT", pp+"/environments/production", bad.body)
			wantErr(t, "PUT "+bad.name, s, raw, 422, "validation_failed", bad.field)
			assertNoKey(t, "PUT "+bad.name, raw, key1, key2)
		}
		if after, err := e.App.Inventory.GetEnvironment(ctx, "shop", "production"); err != nil || after.Executor.PrivateKey != key2 || after.Executor.Script != "deploy v3" {
			t.Fatalf("a refused PUT changed the environment: %+v, %v", after, err)
		}
		s, raw = e.Do(t, "PUT", pp+"/environments/nope", map[string]any{"executor": map[string]any{"type": "local", "script": "x"}})
		wantErr(t, "PUT missing environment", s, raw, 404, "not_found")

		// A local executor needs no key; switching to ssh with the mask
		// but no stored key is refused.
		s, raw = e.Do(t, "PUT", pp+"/environments/staging", map[string]any{
			"executor": map[string]any{"type": "ssh", "user": "u", "private_key": "******", "script": "x"}})
		wantErr(t, "mask without a stored key", s, raw, 422, "validation_failed", "executor.private_key")

		// Delete.
		e.JSON(t, "POST", pp+"/environments/staging/hosts", map[string]any{"name": "s1", "address": "10.0.0.5"}, 201, nil)
		e.JSON(t, "DELETE", pp+"/environments/staging", nil, 204, nil)
		s, raw = e.Do(t, "GET", pp+"/environments/staging", nil)
		wantErr(t, "deleted environment", s, raw, 404, "not_found")
		s, raw = e.Do(t, "GET", pp+"/environments/staging/hosts", nil)
		wantErr(t, "hosts of a deleted environment", s, raw, 404, "not_found")
		s, raw = e.Do(t, "DELETE", pp+"/environments/staging", nil)
		wantErr(t, "delete twice", s, raw, 404, "not_found")
		e.JSON(t, "GET", pp+"/environments", nil, 200, &envs)
		if len(envs.Items) != 1 {
			t.Fatalf("after delete: %+v", envs.Items)
		}

		// No event payload holds a key.
		rows, err := e.App.DB.Query(ctx, `SELECT payload FROM events`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			var payload string
			if err := rows.Scan(&payload); err != nil {
				t.Fatal(err)
			}
			assertNoKey(t, "an event payload", []byte(payload), key1, key2)
			n++
		}
		if n == 0 {
			t.Fatal("no events were written")
		}
	})
}

func TestHosts(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, e *apptest.Env) {
		e.JSON(t, "POST", "/api/v1/release/projects", map[string]any{"name": "Shop"}, 201, nil)
		const pp = "/api/v1/release/projects/shop"
		e.JSON(t, "POST", pp+"/environments", map[string]any{"name": "prod", "executor": map[string]any{"type": "local", "script": "true"}}, 201, nil)
		const hp = pp + "/environments/prod/hosts"

		list := func() []string {
			t.Helper()
			var out []string
			cursor := ""
			for {
				var p page[host]
				e.JSON(t, "GET", hp+"?limit=2&cursor="+url.QueryEscape(cursor), nil, 200, &p)
				for _, h := range p.Items {
					out = append(out, h.Name)
				}
				if p.NextCursor == "" {
					return out
				}
				cursor = p.NextCursor
			}
		}
		if got := list(); len(got) != 0 {
			t.Fatalf("new environment has hosts %v", got)
		}

		// One host: the host comes back.
		var one host
		e.JSON(t, "POST", hp, map[string]any{"name": "web-1", "address": "10.0.0.1", "labels": map[string]string{"group": "blue", "zone": "a"}}, 201, &one)
		if one.Name != "web-1" || one.Address != "10.0.0.1" || one.Labels["group"] != "blue" {
			t.Fatalf("single host = %+v", one)
		}
		// Many: a list comes back.
		var many page[host]
		e.JSON(t, "POST", hp, map[string]any{"hosts": []map[string]any{
			{"name": "web-2", "address": "10.0.0.2:2222", "labels": map[string]string{"group": "green"}},
			{"name": "web-3", "address": "web-3.internal"},
		}}, 201, &many)
		if len(many.Items) != 2 || many.Items[0].Name != "web-2" || many.Items[1].Labels == nil {
			t.Fatalf("bulk = %+v", many)
		}
		if got := fmt.Sprint(list()); got != "[web-1 web-2 web-3]" {
			t.Fatalf("hosts = %s", got)
		}

		// All or nothing.
		for _, bad := range []struct {
			name   string
			body   any
			status int
			code   string
			field  string
		}{
			{"one bad group", map[string]any{"hosts": []map[string]any{{"name": "web-4", "address": "10.0.0.4"}, {"name": "web-5", "address": "10.0.0.5", "labels": map[string]string{"group": "purple"}}}}, 422, "validation_failed", "hosts[1].labels.group"},
			{"one without address", map[string]any{"hosts": []map[string]any{{"name": "web-4", "address": "10.0.0.4"}, {"name": "web-5"}}}, 422, "validation_failed", "hosts[1].address"},
			{"one existing", map[string]any{"hosts": []map[string]any{{"name": "web-4", "address": "10.0.0.4"}, {"name": "web-1", "address": "10.0.0.1"}}}, 409, "conflict", ""},
			{"twice in one request", map[string]any{"hosts": []map[string]any{{"name": "web-4", "address": "10.0.0.4"}, {"name": "web-4", "address": "10.0.0.5"}}}, 422, "validation_failed", "hosts[1].name"},
			{"shell in address", map[string]any{"hosts": []map[string]any{{"name": "web-4", "address": "10.0.0.4;rm -rf /"}}}, 422, "validation_failed", "hosts[0].address"},
			{"empty list", map[string]any{"hosts": []any{}}, 422, "validation_failed", "hosts"},
			{"single bad group", map[string]any{"name": "web-4", "address": "10.0.0.4", "labels": map[string]string{"group": "Blue"}}, 422, "validation_failed", "labels.group"},
			{"single bad name", map[string]any{"name": "web 4", "address": "10.0.0.4"}, 422, "validation_failed", "name"},
			{"single existing", map[string]any{"name": "web-2", "address": "10.9.9.9"}, 409, "conflict", ""},
		} {
			s, raw := e.Do(t, "POST", hp, bad.body)
			var fields []string
			if bad.field != "" {
				fields = append(fields, bad.field)
			}
			wantErr(t, bad.name, s, raw, bad.status, bad.code, fields...)
			if got := fmt.Sprint(list()); got != "[web-1 web-2 web-3]" {
				t.Fatalf("after %s hosts = %s", bad.name, got)
			}
		}
		var h2 page[host]
		e.JSON(t, "GET", hp, nil, 200, &h2)
		if h2.Items[1].Address != "10.0.0.2:2222" {
			t.Fatalf("a refused add changed web-2: %+v", h2.Items[1])
		}

		s, raw := e.Do(t, "POST", pp+"/environments/nope/hosts", map[string]any{"name": "x", "address": "10.0.0.1"})
		wantErr(t, "hosts of a missing environment", s, raw, 404, "not_found")
		s, raw = e.Do(t, "GET", pp+"/environments/nope/hosts", nil)
		wantErr(t, "list hosts of a missing environment", s, raw, 404, "not_found")

		e.JSON(t, "DELETE", hp+"/web-2", nil, 204, nil)
		if got := fmt.Sprint(list()); got != "[web-1 web-3]" {
			t.Fatalf("after delete hosts = %s", got)
		}
		s, raw = e.Do(t, "DELETE", hp+"/web-2", nil)
		wantErr(t, "delete a deleted host", s, raw, 404, "not_found")
		s, raw = e.Do(t, "DELETE", pp+"/environments/nope/hosts/web-1", nil)
		wantErr(t, "delete a host of a missing environment", s, raw, 404, "not_found")
		// The name is free again.
		e.JSON(t, "POST", hp, map[string]any{"name": "web-2", "address": "10.0.0.22"}, 201, nil)
	})
}

func TestVersions(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, e *apptest.Env) {
		admin := me(t, e, e.Token)
		e.JSON(t, "POST", "/api/v1/release/projects", map[string]any{"name": "Shop"}, 201, nil)
		e.JSON(t, "POST", "/api/v1/release/projects", map[string]any{"name": "Other"}, 201, nil)
		const vp = "/api/v1/release/projects/shop/versions"

		var created []version
		for i := 1; i <= 5; i++ {
			var v version
			e.JSON(t, "POST", vp, map[string]any{
				"name": fmt.Sprintf("v1.%d.0", i), "description": "release", "artifact": fmt.Sprintf("s3://builds/shop-%d.tgz", i),
				"metadata": map[string]any{"commit": fmt.Sprintf("c%d", i), "n": i, "tags": []string{"a"}},
			}, 201, &v)
			if v.ID == "" || v.ProjectID != "shop" || v.CreatedBy != admin.ID || v.Metadata["commit"] != fmt.Sprintf("c%d", i) {
				t.Fatalf("created version %+v", v)
			}
			created = append(created, v)
		}
		s, raw := e.Do(t, "POST", vp, map[string]any{"name": "v1.3.0"})
		wantErr(t, "duplicate version", s, raw, 409, "conflict")
		var same version
		e.JSON(t, "POST", "/api/v1/release/projects/other/versions", map[string]any{"name": "v1.3.0"}, 201, &same)
		s, raw = e.Do(t, "POST", "/api/v1/release/projects/nope/versions", map[string]any{"name": "v1"})
		wantErr(t, "version of a missing project", s, raw, 404, "not_found")

		// Newest first, in pages.
		var names []string
		cursor := ""
		for pages := 0; ; pages++ {
			if pages > 5 {
				t.Fatal("paging does not end")
			}
			var p page[version]
			e.JSON(t, "GET", vp+"?limit=2&cursor="+url.QueryEscape(cursor), nil, 200, &p)
			for _, v := range p.Items {
				names = append(names, v.Name)
			}
			if p.NextCursor == "" {
				break
			}
			cursor = p.NextCursor
		}
		if got := strings.Join(names, " "); got != "v1.5.0 v1.4.0 v1.3.0 v1.2.0 v1.1.0" {
			t.Fatalf("versions newest first = %s", got)
		}
		var all page[version]
		e.JSON(t, "GET", vp, nil, 200, &all)
		if len(all.Items) != 5 || all.Items[0].Name != "v1.5.0" || all.NextCursor != "" {
			t.Fatalf("default page: %+v", all)
		}

		var got version
		e.JSON(t, "GET", vp+"/"+created[2].ID, nil, 200, &got)
		if got.ID != created[2].ID || got.Name != "v1.3.0" || got.Artifact != "s3://builds/shop-3.tgz" ||
			got.Metadata["n"] != float64(3) || !got.CreatedAt.Equal(created[2].CreatedAt) {
			t.Fatalf("GET version = %+v, want %+v", got, created[2])
		}
		s, raw = e.Do(t, "GET", vp+"/"+same.ID, nil)
		wantErr(t, "another project's version", s, raw, 404, "not_found")
		s, raw = e.Do(t, "GET", vp+"/ver_missing", nil)
		wantErr(t, "missing version", s, raw, 404, "not_found")
		s, raw = e.Do(t, "GET", "/api/v1/release/projects/nope/versions", nil)
		wantErr(t, "versions of a missing project", s, raw, 404, "not_found")
		s, raw = e.Do(t, "GET", vp+"?limit=501", nil)
		wantErr(t, "limit too big", s, raw, 422, "validation_failed", "limit")

		for _, bad := range []struct {
			body  map[string]any
			field string
		}{
			{map[string]any{"description": "no name"}, "name"},
			{map[string]any{"name": "v 2"}, "name"},
			{map[string]any{"name": strings.Repeat("v", 129)}, "name"},
			{map[string]any{"name": "v2", "artifact": strings.Repeat("a", 2001)}, "artifact"},
			{map[string]any{"name": "v2", "metadata": map[string]any{"big": strings.Repeat("m", 70<<10)}}, "metadata"},
		} {
			s, raw := e.Do(t, "POST", vp, bad.body)
			wantErr(t, "bad version "+bad.field, s, raw, 422, "validation_failed", bad.field)
		}
	})
}
