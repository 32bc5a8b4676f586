package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herald-release/herald/internal/app/apptest"
	"github.com/herald-release/herald/internal/db/dbtest"
)

// each runs fn against a fresh Herald on every available database.
func each(t *testing.T, fn func(t *testing.T, e *apptest.Env)) {
	t.Helper()
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			fn(t, apptest.New(t, d))
		})
	}
}

// errBody is the §2 error shape.
type errBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Details []struct {
			Field   string `json:"field"`
			Message string `json:"message"`
		} `json:"details"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

func (b errBody) fields() []string {
	var out []string
	for _, d := range b.Error.Details {
		out = append(out, d.Field)
	}
	return out
}

// wantErr checks a §2 error response: the status, JSON with only an
// "error" object, its code and a message, and, when given, the fields
// named in details.
func wantErr(t testing.TB, what string, status int, raw []byte, wantStatus int, wantCode string, wantFields ...string) errBody {
	t.Helper()
	if status != wantStatus {
		t.Errorf("%s: status %d, want %d; body %s", what, status, wantStatus, raw)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Errorf("%s: the error body is not a JSON object: %q", what, raw)
		return errBody{}
	}
	if _, ok := top["error"]; !ok || len(top) != 1 {
		t.Errorf("%s: the error body is not {\"error\": {...}}: %s", what, raw)
	}
	var b errBody
	_ = json.Unmarshal(raw, &b)
	if b.Error.Code != wantCode {
		t.Errorf("%s: error.code %q, want %q; body %s", what, b.Error.Code, wantCode, raw)
	}
	if b.Error.Message == "" {
		t.Errorf("%s: error.message is empty", what)
	}
	for _, f := range wantFields {
		if !slices.Contains(b.fields(), f) {
			t.Errorf("%s: details name fields %q, want %q among them; body %s", what, b.fields(), f, raw)
		}
	}
	for _, d := range b.Error.Details {
		if d.Field == "" || d.Message == "" {
			t.Errorf("%s: a detail without field or message: %s", what, raw)
		}
	}
	return b
}

// send is a raw request, for tests that look at headers or set their own.
func send(t testing.TB, e *apptest.Env, method, path string, header http.Header, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, raw
}

// doJSONAs is DoAs that wants status and decodes the body.
func doJSONAs(t testing.TB, e *apptest.Env, token, method, path string, body any, want int, out any) {
	t.Helper()
	status, raw := e.DoAs(t, token, method, path, body)
	if status != want {
		t.Fatalf("%s %s: status %d, want %d; body %s", method, path, status, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
}

type user struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

type token struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Token string `json:"token"`
}

type page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

// newUser creates a user as admin and gives it a token.
func newUser(t testing.TB, e *apptest.Env, name, role string) (user, token) {
	t.Helper()
	var u user
	e.JSON(t, "POST", "/api/v1/users", map[string]any{"name": name, "email": name + "@example.com", "role": role}, 201, &u)
	var tok token
	e.JSON(t, "POST", "/api/v1/users/"+u.ID+"/tokens", map[string]any{"name": name + "-cli"}, 201, &tok)
	return u, tok
}

func me(t testing.TB, e *apptest.Env, tok string) user {
	t.Helper()
	var u user
	doJSONAs(t, e, tok, "GET", "/api/v1/me", nil, 200, &u)
	return u
}

func TestMe(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, e *apptest.Env) {
		status, raw := e.Do(t, "GET", "/api/v1/me", nil)
		if status != 200 {
			t.Fatalf("GET /me: %d %s", status, raw)
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"id", "name", "email", "role"} {
			if _, ok := m[k]; !ok {
				t.Errorf("/me lacks %q: %s", k, raw)
			}
		}
		for _, k := range []string{"password", "password_hash", "token", "token_hash"} {
			if _, ok := m[k]; ok {
				t.Errorf("/me shows %q: %s", k, raw)
			}
		}
		if m["name"] != "admin" || m["role"] != "admin" || m["id"] == "" {
			t.Fatalf("/me = %s, want the admin", raw)
		}
	})
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, e *apptest.Env) {
		routes := []struct{ method, path string }{
			{"GET", "/api/v1/me"},
			{"GET", "/api/v1/users"},
			{"POST", "/api/v1/users"},
			{"GET", "/api/v1/release/projects"},
			{"POST", "/api/v1/release/projects"},
			{"DELETE", "/api/v1/release/projects/x"},
			{"POST", "/api/v1/release/projects/x/versions"},
			{"DELETE", "/api/v1/tokens/tok_x"},
		}
		revokedUser, revoked := newUser(t, e, "revoked-bot", "member")
		_ = revokedUser
		if s, raw := e.Do(t, "DELETE", "/api/v1/tokens/"+revoked.ID, nil); s != 204 {
			t.Fatalf("revoke: %d %s", s, raw)
		}
		creds := []struct {
			name   string
			header string // Authorization; "" for none
		}{
			{"none", ""},
			{"unknown token", "Bearer hrd_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
			{"short token", "Bearer abc"},
			{"empty bearer", "Bearer "},
			{"wrong scheme", "Basic " + apptest.AdminToken},
			{"no scheme", apptest.AdminToken},
			{"token with garbage", "Bearer " + apptest.AdminToken + "x"},
			{"revoked token", "Bearer " + revoked.Token},
		}
		body := `{"name":"Sneaky"}`
		for _, c := range creds {
			for _, r := range routes {
				h := http.Header{"Content-Type": {"application/json"}}
				if c.header != "" {
					h.Set("Authorization", c.header)
				}
				resp, raw := send(t, e, r.method, r.path, h, strings.NewReader(body))
				what := c.name + ": " + r.method + " " + r.path
				wantErr(t, what, resp.StatusCode, raw, 401, "unauthorized")
				if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("%s: WWW-Authenticate %q", what, resp.Header.Get("WWW-Authenticate"))
				}
				if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
					t.Errorf("%s: Content-Type %q", what, resp.Header.Get("Content-Type"))
				}
			}
		}
		var ps page[map[string]any]
		e.JSON(t, "GET", "/api/v1/release/projects", nil, 200, &ps)
		if len(ps.Items) != 0 {
			t.Fatalf("unauthenticated POSTs created projects: %v", ps.Items)
		}
		// The scheme is case-insensitive (RFC 7235).
		resp, raw := send(t, e, "GET", "/api/v1/me", http.Header{"Authorization": {"bearer " + apptest.AdminToken}}, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("lower-case bearer: %d %s", resp.StatusCode, raw)
		}
	})
}

func TestAuthorization(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, e *apptest.Env) {
		admin := me(t, e, e.Token)
		member, mtok := newUser(t, e, "mia", "member")
		other, otok := newUser(t, e, "olaf", "member")
		if got := me(t, e, mtok.Token); got.ID != member.ID || got.Role != "member" || got.Name != "mia" {
			t.Fatalf("member /me = %+v", got)
		}

		e.JSON(t, "POST", "/api/v1/release/projects", map[string]any{"name": "Shop"}, 201, nil)
		e.JSON(t, "POST", "/api/v1/release/projects/shop/environments",
			map[string]any{"name": "prod", "executor": map[string]any{"type": "local", "script": "true"}}, 201, nil)

		var before page[user]
		e.JSON(t, "GET", "/api/v1/users", nil, 200, &before)

		forbidden := []struct {
			method, path string
			body         any
		}{
			{"POST", "/api/v1/users", map[string]any{"name": "eve", "role": "admin"}},
			{"DELETE", "/api/v1/release/projects/shop", nil},
			{"DELETE", "/api/v1/release/projects/shop/environments/prod", nil},
			{"POST", "/api/v1/users/" + admin.ID + "/tokens", map[string]any{"name": "steal"}},
			{"GET", "/api/v1/users/" + admin.ID + "/tokens", nil},
			{"POST", "/api/v1/users/" + other.ID + "/tokens", map[string]any{"name": "steal"}},
			{"GET", "/api/v1/users/" + other.ID + "/tokens", nil},
			{"DELETE", "/api/v1/tokens/" + otok.ID, nil},
		}
		for _, f := range forbidden {
			s, raw := e.DoAs(t, mtok.Token, f.method, f.path, f.body)
			wantErr(t, "member "+f.method+" "+f.path, s, raw, 403, "forbidden")
		}
		// Nothing happened.
		var after page[user]
		e.JSON(t, "GET", "/api/v1/users", nil, 200, &after)
		if len(after.Items) != len(before.Items) {
			t.Fatalf("a member created a user: %d users, was %d", len(after.Items), len(before.Items))
		}
		e.JSON(t, "GET", "/api/v1/release/projects/shop/environments/prod", nil, 200, nil)
		if got := me(t, e, otok.Token); got.ID != other.ID {
			t.Fatalf("another member's token stopped working: %+v", got)
		}
		var adminTokens page[map[string]any]
		e.JSON(t, "GET", "/api/v1/users/"+admin.ID+"/tokens", nil, 200, &adminTokens)
		if len(adminTokens.Items) != 1 {
			t.Fatalf("admin tokens = %v, want only the bootstrap one", adminTokens.Items)
		}

		// A member manages its own tokens.
		var own token
		doJSONAs(t, e, mtok.Token, "POST", "/api/v1/users/"+member.ID+"/tokens", map[string]any{"name": "laptop"}, 201, &own)
		if own.Token == "" || own.ID == "" || own.Name != "laptop" {
			t.Fatalf("own token = %+v", own)
		}
		if got := me(t, e, own.Token); got.ID != member.ID {
			t.Fatalf("the new token authenticates as %+v", got)
		}
		var mine page[map[string]any]
		doJSONAs(t, e, mtok.Token, "GET", "/api/v1/users/"+member.ID+"/tokens", nil, 200, &mine)
		if len(mine.Items) != 2 {
			t.Fatalf("member tokens = %v, want 2", mine.Items)
		}
		doJSONAs(t, e, mtok.Token, "DELETE", "/api/v1/tokens/"+own.ID, nil, 204, nil)
		s, raw := e.DoAs(t, own.Token, "GET", "/api/v1/me", nil)
		wantErr(t, "revoked own token", s, raw, 401, "unauthorized")
		// Revoking twice is harmless; a missing token is 404.
		doJSONAs(t, e, mtok.Token, "DELETE", "/api/v1/tokens/"+own.ID, nil, 204, nil)
		s, raw = e.DoAs(t, mtok.Token, "DELETE", "/api/v1/tokens/tok_missing", nil)
		wantErr(t, "revoke missing", s, raw, 404, "not_found")

		// A member may create projects and read (Authed routes), and the
		// admin may revoke anyone's token.
		doJSONAs(t, e, mtok.Token, "POST", "/api/v1/release/projects", map[string]any{"name": "Mia's"}, 201, nil)
		e.JSON(t, "DELETE", "/api/v1/tokens/"+otok.ID, nil, 204, nil)
		s, raw = e.DoAs(t, otok.Token, "GET", "/api/v1/me", nil)
		wantErr(t, "token revoked by admin", s, raw, 401, "unauthorized")
		// Admin deletes what the member could not.
		e.JSON(t, "DELETE", "/api/v1/release/projects/shop/environments/prod", nil, 204, nil)
		e.JSON(t, "DELETE", "/api/v1/release/projects/shop", nil, 204, nil)
	})
}

func TestUsersAndTokens(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, e *apptest.Env) {
		status, raw := e.Do(t, "POST", "/api/v1/users", map[string]any{
			"name": "alice", "email": "alice@example.com", "role": "member", "password": "long-enough-pw"})
		if status != 201 {
			t.Fatalf("create alice: %d %s", status, raw)
		}
		for _, leak := range []string{"long-enough-pw", "password", "$2a$"} {
			if bytes.Contains(raw, []byte(leak)) {
				t.Fatalf("the created user shows %q: %s", leak, raw)
			}
		}
		var alice user
		_ = json.Unmarshal(raw, &alice)
		if alice.ID == "" || alice.Name != "alice" || alice.Role != "member" || alice.Email != "alice@example.com" || alice.CreatedAt.IsZero() {
			t.Fatalf("alice = %s", raw)
		}
		var got user
		e.JSON(t, "GET", "/api/v1/users/"+alice.ID, nil, 200, &got)
		if got.ID != alice.ID || got.Name != alice.Name || got.Email != alice.Email || got.Role != alice.Role {
			t.Fatalf("GET user = %+v, want %+v", got, alice)
		}
		// The object a POST returns is the object a GET returns: a
		// created_at finer than the database keeps is a different time.
		if !got.CreatedAt.Equal(alice.CreatedAt) {
			t.Errorf("created_at: POST said %s, GET says %s (identity.CreateUser does not truncate to the database's precision)",
				alice.CreatedAt.Format(time.RFC3339Nano), got.CreatedAt.Format(time.RFC3339Nano))
		}
		s, raw := e.Do(t, "GET", "/api/v1/users/usr_missing", nil)
		wantErr(t, "missing user", s, raw, 404, "not_found")

		s, raw = e.Do(t, "POST", "/api/v1/users", map[string]any{"name": "alice", "role": "admin"})
		wantErr(t, "duplicate user", s, raw, 409, "conflict")
		s, raw = e.Do(t, "POST", "/api/v1/users", map[string]any{"name": "x", "role": "owner", "email": "not-an-email", "password": "short"})
		wantErr(t, "bad user", s, raw, 422, "validation_failed", "role", "email", "password")

		for _, n := range []string{"bob", "carol", "dave"} {
			e.JSON(t, "POST", "/api/v1/users", map[string]any{"name": n, "role": "member"}, 201, nil)
		}
		// Paging: limit 2 over 5 users (admin, alice, bob, carol, dave).
		var names []string
		seen := map[string]bool{}
		cursor := ""
		for pages := 0; ; pages++ {
			if pages > 5 {
				t.Fatal("paging does not end")
			}
			var p page[user]
			e.JSON(t, "GET", "/api/v1/users?limit=2&cursor="+url.QueryEscape(cursor), nil, 200, &p)
			if len(p.Items) > 2 {
				t.Fatalf("limit=2 gave %d items", len(p.Items))
			}
			for _, u := range p.Items {
				if seen[u.ID] {
					t.Fatalf("user %s on two pages", u.Name)
				}
				seen[u.ID] = true
				names = append(names, u.Name)
			}
			if p.NextCursor == "" {
				if pages != 2 {
					t.Fatalf("paging ended after %d pages, want 3", pages+1)
				}
				break
			}
			cursor = p.NextCursor
		}
		slices.Sort(names)
		if strings.Join(names, ",") != "admin,alice,bob,carol,dave" {
			t.Fatalf("paged users = %v", names)
		}
		var all page[user]
		e.JSON(t, "GET", "/api/v1/users", nil, 200, &all)
		if len(all.Items) != 5 || all.NextCursor != "" {
			t.Fatalf("default page = %d items, cursor %q", len(all.Items), all.NextCursor)
		}
		var exact page[user]
		e.JSON(t, "GET", "/api/v1/users?limit=5", nil, 200, &exact)
		if len(exact.Items) != 5 || exact.NextCursor != "" {
			t.Fatalf("limit=5 over 5 users: %d items, cursor %q (a cursor to an empty page)", len(exact.Items), exact.NextCursor)
		}
		e.JSON(t, "GET", "/api/v1/users?limit=500", nil, 200, nil)
		for _, q := range []string{"limit=0", "limit=-1", "limit=501", "limit=ten", "limit=2.5"} {
			s, raw := e.Do(t, "GET", "/api/v1/users?"+q, nil)
			wantErr(t, "users?"+q, s, raw, 422, "validation_failed", "limit")
		}
		s, raw = e.Do(t, "GET", "/api/v1/users?cursor=%21%21%21", nil)
		wantErr(t, "bad cursor", s, raw, 422, "validation_failed", "cursor")

		// A token is shown once, at creation.
		resp, raw := send(t, e, "POST", "/api/v1/users/"+alice.ID+"/tokens",
			http.Header{"Authorization": {"Bearer " + e.Token}}, strings.NewReader(`{"name":"ci"}`))
		if resp.StatusCode != 201 {
			t.Fatalf("create token: %d %s", resp.StatusCode, raw)
		}
		if resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("token response Cache-Control %q, want no-store", resp.Header.Get("Cache-Control"))
		}
		var tok token
		_ = json.Unmarshal(raw, &tok)
		if tok.ID == "" || tok.Name != "ci" || !strings.HasPrefix(tok.Token, "hrd_") || len(tok.Token) < 32 {
			t.Fatalf("created token = %s", raw)
		}
		if got := me(t, e, tok.Token); got.ID != alice.ID {
			t.Fatalf("alice's token authenticates as %+v", got)
		}
		s, list := e.Do(t, "GET", "/api/v1/users/"+alice.ID+"/tokens", nil)
		if s != 200 {
			t.Fatalf("list tokens: %d %s", s, list)
		}
		if bytes.Contains(list, []byte(tok.Token)) || bytes.Contains(list, []byte(tok.Token[4:])) {
			t.Fatalf("the token list shows the secret: %s", list)
		}
		var listed page[map[string]any]
		_ = json.Unmarshal(list, &listed)
		if len(listed.Items) != 1 || listed.Items[0]["id"] != tok.ID || listed.Items[0]["name"] != "ci" {
			t.Fatalf("token list = %s", list)
		}
		if _, ok := listed.Items[0]["token"]; ok {
			t.Fatalf("a listed token has a token field: %s", list)
		}
		// Stored as a hash only.
		var clear int
		if err := e.App.DB.QueryRow(t.Context(), `SELECT COUNT(*) FROM api_tokens WHERE token_hash = $1`, tok.Token).Scan(&clear); err != nil || clear != 0 {
			t.Fatalf("the token is stored in clear (%d, %v)", clear, err)
		}
		// The token list pages like every list.
		for _, n := range []string{"ci-2", "ci-3"} {
			e.JSON(t, "POST", "/api/v1/users/"+alice.ID+"/tokens", map[string]any{"name": n}, 201, nil)
		}
		var t1, t2 page[map[string]any]
		e.JSON(t, "GET", "/api/v1/users/"+alice.ID+"/tokens?limit=2", nil, 200, &t1)
		e.JSON(t, "GET", "/api/v1/users/"+alice.ID+"/tokens?limit=2&cursor="+url.QueryEscape(t1.NextCursor), nil, 200, &t2)
		if len(t1.Items) != 2 || t1.NextCursor == "" || len(t2.Items) != 1 || t2.NextCursor != "" || t2.Items[0]["name"] != "ci-3" {
			t.Fatalf("token pages: %v then %v", t1, t2)
		}
		s, raw = e.Do(t, "GET", "/api/v1/users/"+alice.ID+"/tokens?limit=0", nil)
		wantErr(t, "tokens?limit=0", s, raw, 422, "validation_failed", "limit")
		s, raw = e.Do(t, "POST", "/api/v1/users/"+alice.ID+"/tokens", map[string]any{"name": " "})
		wantErr(t, "token without name", s, raw, 422, "validation_failed", "name")
		s, raw = e.Do(t, "POST", "/api/v1/users/usr_missing/tokens", map[string]any{"name": "x"})
		wantErr(t, "token for a missing user", s, raw, 404, "not_found")
	})
}

func TestHealthReadyMetricsAndUnknownRoutes(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, e *apptest.Env) {
		for _, p := range []string{"/healthz", "/readyz"} {
			resp, raw := send(t, e, "GET", p, nil, nil)
			if resp.StatusCode != 200 || !json.Valid(raw) {
				t.Fatalf("GET %s without auth: %d %s", p, resp.StatusCode, raw)
			}
		}
		e.JSON(t, "GET", "/api/v1/me", nil, 200, nil)
		e.DoAs(t, "", "GET", "/api/v1/me", nil)

		for _, r := range []struct{ method, path, token string }{
			{"GET", "/api/v1/nope", e.Token},
			{"GET", "/api/v1/nope", ""},
			{"POST", "/api/v2/release/projects", e.Token},
			{"GET", "/api/v1/release/projects/x/unknown", e.Token},
			{"PATCH", "/api/v1/release/projects", e.Token},
			{"GET", "/api/", e.Token},
		} {
			s, raw := e.DoAs(t, r.token, r.method, r.path, nil)
			wantErr(t, r.method+" "+r.path, s, raw, 404, "not_found")
		}

		resp, raw := send(t, e, "GET", "/metrics", nil, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("/metrics: %d", resp.StatusCode)
		}
		text := string(raw)
		for _, want := range []string{
			"herald_http_requests_total",
			`route="GET /api/v1/me"`,
			`code="401"`,
			"herald_http_request_duration_seconds",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
		// A request id comes back, and a sane one given by the client is kept.
		resp, _ = send(t, e, "GET", "/healthz", http.Header{"X-Request-Id": {"trace-123"}}, nil)
		if resp.Header.Get("X-Request-Id") != "trace-123" {
			t.Errorf("X-Request-Id = %q", resp.Header.Get("X-Request-Id"))
		}
		resp, _ = send(t, e, "GET", "/healthz", http.Header{"X-Request-Id": {"bad id\twith junk"}}, nil)
		if rid := resp.Header.Get("X-Request-Id"); rid == "" || strings.Contains(rid, " ") {
			t.Errorf("a junk request id came back as %q", rid)
		}
	})
}
