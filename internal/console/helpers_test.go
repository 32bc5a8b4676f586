package console_test

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/herald-release/herald/internal/app/apptest"
	"github.com/herald-release/herald/internal/db"
)

const adminPassword = "test-password"

// browser is an HTTP client with cookies that does not follow redirects,
// so tests see each answer.
type browser struct {
	t      *testing.T
	env    *apptest.Env
	client *http.Client
	header http.Header
}

func newEnv(t *testing.T) *apptest.Env {
	t.Helper()
	return apptest.New(t, db.SQLite)
}

func newBrowser(t *testing.T, env *apptest.Env) *browser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, env: env, header: http.Header{}, client: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type page struct {
	Status int
	Header http.Header
	Body   string
}

func (b *browser) do(method, path string, form url.Values, hdr ...string) page {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.env.URL+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	for k, v := range b.header {
		req.Header[k] = v
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return page{Status: resp.StatusCode, Header: resp.Header, Body: string(raw)}
}

func (b *browser) get(path string) page { return b.do(http.MethodGet, path, nil) }

func (b *browser) post(path string, form url.Values) page { return b.do(http.MethodPost, path, form) }

var (
	csrfMeta   = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`)
	hiddenCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
)

// csrf reads the session's CSRF token from a page.
func (b *browser) csrf() string {
	b.t.Helper()
	p := b.get("/projects")
	m := csrfMeta.FindStringSubmatch(p.Body)
	if m == nil {
		b.t.Fatalf("no csrf token on /projects (status %d)", p.Status)
	}
	return html.UnescapeString(m[1])
}

// login logs in through the form.
func (b *browser) login(name, password string) page {
	b.t.Helper()
	lp := b.get("/login")
	m := hiddenCSRF.FindStringSubmatch(lp.Body)
	if m == nil {
		b.t.Fatalf("login page has no csrf field: %s", lp.Body)
	}
	return b.post("/login", url.Values{"name": {name}, "password": {password}, "csrf": {html.UnescapeString(m[1])}, "next": {"/projects"}})
}

func loggedIn(t *testing.T, env *apptest.Env, name, password string) *browser {
	t.Helper()
	b := newBrowser(t, env)
	if p := b.login(name, password); p.Status != http.StatusSeeOther {
		t.Fatalf("login as %s: status %d: %s", name, p.Status, p.Body)
	}
	return b
}

// createMember makes a member with a console password through the API.
func createMember(t *testing.T, env *apptest.Env, name string) string {
	t.Helper()
	var u struct {
		ID string `json:"id"`
	}
	env.JSON(t, http.MethodPost, "/api/v1/users", map[string]any{"name": name, "role": "member", "password": "member-password"}, http.StatusCreated, &u)
	return u.ID
}

func mustContain(t *testing.T, p page, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(p.Body, w) {
			t.Errorf("page (status %d) lacks %q", p.Status, w)
		}
	}
	if t.Failed() {
		t.Logf("body: %s", p.Body)
	}
}

func decode(t *testing.T, raw []byte, out any) {
	t.Helper()
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
}
