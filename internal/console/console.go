// Package console is Herald's web console: server-rendered pages
// (html/template, embedded), plain CSS and a little plain JavaScript.
//
// The console holds no rules of its own. Every page reads, and every form
// writes, through the JSON API, called in-process with the user's session
// cookie and (on writes) the session's CSRF token: a console user can do
// exactly what the API lets that user do, checked by the same code. The
// scripts call the same API from the browser, with the X-CSRF-Token header.
//
// Logging in makes a session (identity.CreateSession) whose id is the
// HttpOnly, SameSite=Lax cookie herald_session (Secure over TLS). Every
// form carries the session's CSRF token in a hidden field, checked before
// the handler runs; cross-origin POSTs are refused besides. The login form,
// which has no session yet, is guarded by a double-submit cookie.
//
// Words come from messages.go, in English and Chinese: the language is the
// herald_lang cookie set by the switch, else the browser's Accept-Language.
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/herald-release/herald/internal/api"
	"github.com/herald-release/herald/internal/identity"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Deps are what the console needs from the rest of Herald.
type Deps struct {
	// API is the JSON API's handler; the console calls it in-process.
	API http.Handler
	// Identity checks passwords and keeps sessions.
	Identity *identity.Store
	Log      *slog.Logger
	Version  string
	// ChannelTypes are the callback channel types this Herald can deliver to.
	ChannelTypes []string
	// EventTypes is the event catalog (CONTRACT §6), in catalog order.
	EventTypes []string
}

// Console serves the pages.
type Console struct {
	deps   Deps
	pages  map[string]*template.Template
	assets map[string]string // file name → URL with a content hash
	cop    *http.CrossOriginProtection
}

// New parses the templates; it panics on a broken template, which is a
// build mistake caught by any test.
func New(d Deps) *Console {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	c := &Console{deps: d, assets: map[string]string{}, cop: http.NewCrossOriginProtection()}
	c.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
	}))
	_ = fs.WalkDir(staticFS, "static", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, _ := staticFS.ReadFile(p)
		sum := sha256.Sum256(b)
		name := strings.TrimPrefix(p, "static/")
		c.assets[name] = "/static/" + name + "?v=" + hex.EncodeToString(sum[:6])
		return nil
	})
	c.pages = parseTemplates(c.funcs())
	return c
}

// Routes registers the console's routes with handle (the API server's
// Handle: one mux serves both).
func (c *Console) Routes(handle func(pattern string, h http.Handler)) {
	static, _ := fs.Sub(staticFS, "static")
	files := http.FileServerFS(static)
	handle("GET /static/", http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		if r.URL.Query().Get("v") != "" {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	})))
	handle("GET /favicon.ico", http.RedirectHandler(c.assets["favicon.svg"], http.StatusMovedPermanently))

	handle("GET /login", c.public(c.loginPage))
	handle("POST /login", c.public(c.login))
	handle("POST /logout", c.page(c.logout))
	handle("GET /lang", c.public(c.setLang))

	handle("GET /{$}", c.page(c.home))
	handle("GET /projects", c.page(c.projects))
	handle("POST /projects", c.page(c.createProject))
	handle("GET /projects/{id}", c.page(c.project))
	handle("POST /projects/{id}", c.page(c.updateProject))
	handle("POST /projects/{id}/delete", c.page(c.deleteProject))
	handle("POST /projects/{id}/environments", c.page(c.createEnvironment))
	handle("POST /projects/{id}/versions", c.page(c.createVersion))
	handle("GET /projects/{id}/environments/{env}", c.page(c.environment))
	handle("POST /projects/{id}/environments/{env}", c.page(c.updateEnvironment))
	handle("POST /projects/{id}/environments/{env}/delete", c.page(c.deleteEnvironment))
	handle("POST /projects/{id}/environments/{env}/hosts", c.page(c.addHosts))
	handle("POST /projects/{id}/environments/{env}/hosts/{name}/delete", c.page(c.deleteHost))
	handle("GET /projects/{id}/callbacks", c.page(c.projectCallbacks))

	handle("GET /callbacks", c.page(c.callbacks))
	handle("GET /callbacks/new", c.page(c.newCallback))
	handle("POST /callbacks/new", c.page(c.saveCallback))
	handle("GET /callbacks/{id}", c.page(c.editCallback))
	handle("POST /callbacks/{id}", c.page(c.saveCallback))
	handle("POST /callbacks/{id}/toggle", c.page(c.toggleCallback))
	handle("POST /callbacks/{id}/test", c.page(c.testCallback))
	handle("POST /callbacks/{id}/delete", c.page(c.deleteCallback))
	handle("GET /history", c.page(c.history))
	handle("POST /history/{id}/redeliver", c.page(c.redeliver))

	handle("GET /tasks", c.page(c.tasks))
	handle("GET /tasks/new", c.page(c.newTask))
	handle("POST /tasks/new", c.page(c.startTask))
	handle("GET /tasks/{id}", c.page(c.task))
	handle("POST /tasks/{id}/{action}", c.page(c.taskAction))

	handle("GET /plans", c.page(c.plans))
	handle("GET /plans/new", c.page(c.newPlan))
	handle("POST /plans/new", c.page(c.savePlan))
	handle("GET /plans/{id}", c.page(c.plan))
	handle("GET /plans/{id}/edit", c.page(c.editPlan))
	handle("POST /plans/{id}/edit", c.page(c.savePlan))
	handle("POST /plans/{id}/{action}", c.page(c.planAction))
	handle("POST /plans/{id}/jobs/{job}/{action}", c.page(c.planJobAction))
	handle("GET /settings/plan-hook", c.page(c.planHook))
	handle("POST /settings/plan-hook", c.page(c.savePlanHook))

	handle("GET /users", c.page(c.users))
	handle("POST /users", c.page(c.createUser))
	handle("GET /users/{id}", c.page(c.user))
	handle("POST /users/{id}/tokens", c.page(c.createToken))
	handle("POST /tokens/{id}/revoke", c.page(c.revokeToken))
	handle("GET /account", c.page(c.account))

	// Everything else that is not the API, health or metrics: the
	// console's own "not found".
	handle("/", c.public(c.notFound))
}

// request is one console request being served.
type request struct {
	c    *Console
	w    http.ResponseWriter
	r    *http.Request
	lang *Lang
	sid  string
	sess *identity.Session
}

func (q *request) user() *identity.User {
	if q.sess == nil {
		return nil
	}
	return q.sess.User
}

type handlerFunc func(q *request) error

// public serves a page that needs no login; the session is loaded when
// there is one.
func (c *Console) public(h handlerFunc) http.Handler {
	return c.wrap(h, false)
}

// page serves a page that needs a login. POSTs must carry the session's
// CSRF token in the "csrf" form field and come from the same origin.
func (c *Console) page(h handlerFunc) http.Handler {
	return c.wrap(h, true)
}

func (c *Console) wrap(h handlerFunc, needLogin bool) http.Handler {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w.Header())
		q := &request{c: c, w: w, r: r, lang: langFor(r)}
		if ck, err := r.Cookie(api.SessionCookie); err == nil && ck.Value != "" {
			sess, err := c.deps.Identity.GetSession(r.Context(), ck.Value)
			switch {
			case err == nil:
				q.sid, q.sess = ck.Value, sess
			case isStatus(err, http.StatusUnauthorized):
				clearCookie(w, r, api.SessionCookie, "/")
			default:
				q.fail(err)
				return
			}
		}
		if needLogin && q.sess == nil {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			q.errorPage(http.StatusUnauthorized, q.lang.T("error.session_expired"))
			return
		}
		if needLogin && r.Method == http.MethodPost {
			if err := r.ParseForm(); err != nil {
				q.errorPage(http.StatusBadRequest, err.Error())
				return
			}
			if !identity.SameToken(r.PostForm.Get("csrf"), q.sess.CSRFToken) {
				q.errorPage(http.StatusForbidden, q.lang.T("error.csrf"))
				return
			}
		}
		if err := h(q); err != nil {
			q.fail(err)
		}
	})
	return c.cop.Handler(inner)
}

func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

// fail turns a handler's error into a page: an API error shows its status
// and message; anything else is a 500 whose detail stays in the log.
func (q *request) fail(err error) {
	var ae *APIError
	if errors.As(err, &ae) {
		switch ae.Status {
		case http.StatusUnauthorized:
			clearCookie(q.w, q.r, api.SessionCookie, "/")
			http.Redirect(q.w, q.r, "/login?next="+url.QueryEscape(q.r.URL.RequestURI()), http.StatusSeeOther)
			return
		case http.StatusForbidden:
			q.errorPage(ae.Status, q.lang.T("error.forbidden")+" "+ae.Message)
			return
		case http.StatusNotFound:
			q.errorPage(ae.Status, q.lang.T("error.not_found")+" "+ae.Message)
			return
		}
		q.errorPage(ae.Status, ae.Message)
		return
	}
	rid := api.RequestID(q.r.Context())
	q.c.deps.Log.Error("console page failed", "request_id", rid, "path", q.r.URL.Path, "error", err)
	q.errorPage(http.StatusInternalServerError, q.lang.T("error.internal", rid))
}

func (q *request) errorPage(status int, msg string) {
	q.render(status, "error", q.lang.T("error.title", status), "", map[string]any{"Status": status, "Message": msg}, nil)
}

func (c *Console) notFound(q *request) error {
	q.errorPage(http.StatusNotFound, q.lang.T("error.no_page"))
	return nil
}

// view is what every template receives.
type view struct {
	L       *Lang
	User    *identity.User
	CSRF    string
	Title   string
	Nav     string
	Flash   *flash
	Path    string
	Version string
	JSI18N  string
	Form    *Form
	D       any
	assets  map[string]string
}

// Asset is the URL of a static file, with its content hash for caching.
func (v *view) Asset(name string) string { return v.assets[name] }

// IsAdmin tells whether the viewer is an admin.
func (v *view) IsAdmin() bool { return v.User.IsAdmin() }

func (q *request) render(status int, page, title, nav string, data any, form *Form) {
	t, ok := q.c.pages[page]
	if !ok {
		panic("console: no page template " + page)
	}
	v := &view{
		L: q.lang, User: q.user(), Title: title, Nav: nav, D: data, Form: form,
		Path: q.r.URL.RequestURI(), Version: q.c.deps.Version, JSI18N: q.lang.jsMessages(), assets: q.c.assets,
	}
	if q.sess != nil {
		v.CSRF = q.sess.CSRFToken
	}
	if v.Form == nil {
		v.Form = &Form{}
	}
	v.Form.Fix = q.lang.T("form.fix")
	v.Flash = takeFlash(q.w, q.r)
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		rid := api.RequestID(q.r.Context())
		q.c.deps.Log.Error("render console page", "request_id", rid, "page", page, "error", err)
		http.Error(q.w, "internal error rendering the page; request id "+rid, http.StatusInternalServerError)
		return
	}
	q.w.Header().Set("Content-Type", "text/html; charset=utf-8")
	q.w.WriteHeader(status)
	_, _ = q.w.Write(buf.Bytes())
}

// redirect answers a successful form with a redirect (post/redirect/get),
// carrying a message for the next page.
func (q *request) redirect(to string, msgKey string, args ...any) error {
	if msgKey != "" {
		setFlash(q.w, q.r, "ok", q.lang.T(msgKey, args...))
	}
	http.Redirect(q.w, q.r, to, http.StatusSeeOther)
	return nil
}

// safeNext keeps redirects on this site.
func safeNext(next, fallback string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return fallback
	}
	u, err := url.Parse(next)
	if err != nil || u.Host != "" || u.Scheme != "" {
		return fallback
	}
	return next
}

func isTLS(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func clearCookie(w http.ResponseWriter, r *http.Request, name, path string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: path, MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: isTLS(r)})
}

// flash is a one-time message shown on the page after a redirect.
type flash struct {
	Kind    string
	Message string
}

const flashCookie = "herald_flash"

func setFlash(w http.ResponseWriter, r *http.Request, kind, msg string) {
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: kind + ":" + url.QueryEscape(msg), Path: "/", MaxAge: 60,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: isTLS(r)})
}

func takeFlash(w http.ResponseWriter, r *http.Request) *flash {
	ck, err := r.Cookie(flashCookie)
	if err != nil || ck.Value == "" {
		return nil
	}
	clearCookie(w, r, flashCookie, "/")
	kind, msg, _ := strings.Cut(ck.Value, ":")
	msg, err = url.QueryUnescape(msg)
	if err != nil || (kind != "ok" && kind != "error") {
		return nil
	}
	return &flash{Kind: kind, Message: msg}
}

func (c *Console) home(q *request) error {
	http.Redirect(q.w, q.r, "/projects", http.StatusSeeOther)
	return nil
}

// timeText formats a time for tables: UTC, to the second.
func timeText(t any) string {
	switch v := t.(type) {
	case time.Time:
		if v.IsZero() {
			return ""
		}
		return v.UTC().Format("2006-01-02 15:04:05")
	case *time.Time:
		if v == nil || v.IsZero() {
			return ""
		}
		return v.UTC().Format("2006-01-02 15:04:05")
	case string:
		tt, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return v
		}
		return timeText(tt)
	case float64:
		// Unix seconds, as the release-plan hook speaks.
		if v == 0 {
			return ""
		}
		return timeText(time.Unix(int64(v), 0))
	case nil:
		return ""
	}
	return fmt.Sprint(t)
}

// escapePath joins escaped path segments; unlike path.Join it never
// cleans, so a name like ".." stays a name.
func escapePath(parts ...string) string {
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = url.PathEscape(p)
	}
	return strings.Join(out, "/")
}
