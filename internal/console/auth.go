package console

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/url"
	"time"

	"github.com/herald-release/herald/internal/api"
	"github.com/herald-release/herald/internal/identity"
)

// loginCSRFCookie guards the login form, which has no session yet: the
// form's hidden token must equal this cookie (double submit), so another
// site cannot log a browser into an account of its choosing.
const loginCSRFCookie = "herald_login_csrf"

type loginData struct {
	Next      string
	Name      string
	LoginCSRF string
	Error     string
}

func (c *Console) loginPage(q *request) error {
	next := safeNext(q.r.URL.Query().Get("next"), "/")
	if q.sess != nil {
		http.Redirect(q.w, q.r, next, http.StatusSeeOther)
		return nil
	}
	q.renderLogin(http.StatusOK, loginData{Next: next})
	return nil
}

func (q *request) renderLogin(status int, d loginData) {
	token := ""
	if ck, err := q.r.Cookie(loginCSRFCookie); err == nil && len(ck.Value) >= 20 {
		token = ck.Value
	} else {
		var b [24]byte
		_, _ = rand.Read(b[:])
		token = base64.RawURLEncoding.EncodeToString(b[:])
		http.SetCookie(q.w, &http.Cookie{Name: loginCSRFCookie, Value: token, Path: "/login", MaxAge: 3600,
			HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: isTLS(q.r)})
	}
	d.LoginCSRF = token
	q.render(status, "login", q.lang.T("login.title"), "", d, nil)
}

func (c *Console) login(q *request) error {
	if err := q.r.ParseForm(); err != nil {
		q.errorPage(http.StatusBadRequest, err.Error())
		return nil
	}
	f := q.r.PostForm
	d := loginData{Next: safeNext(f.Get("next"), "/"), Name: f.Get("name")}
	ck, err := q.r.Cookie(loginCSRFCookie)
	if err != nil || ck.Value == "" || !identity.SameToken(ck.Value, f.Get("csrf")) {
		d.Error = q.lang.T("login.expired")
		q.renderLogin(http.StatusForbidden, d)
		return nil
	}
	u, err := c.deps.Identity.CheckPassword(q.r.Context(), f.Get("name"), f.Get("password"))
	if isStatus(err, http.StatusUnauthorized) {
		d.Error = q.lang.T("login.wrong")
		q.renderLogin(http.StatusUnauthorized, d)
		return nil
	}
	if err != nil {
		return err
	}
	// A new session on every login: an id planted before login is never
	// the one that becomes authenticated.
	if q.sid != "" {
		_ = c.deps.Identity.DeleteSession(q.r.Context(), q.sid)
	}
	sid, sess, err := c.deps.Identity.CreateSession(q.r.Context(), u.ID)
	if err != nil {
		return err
	}
	http.SetCookie(q.w, &http.Cookie{
		Name: api.SessionCookie, Value: sid, Path: "/",
		Expires: sess.ExpiresAt, MaxAge: int(time.Until(sess.ExpiresAt).Seconds()),
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: isTLS(q.r),
	})
	clearCookie(q.w, q.r, loginCSRFCookie, "/login")
	http.Redirect(q.w, q.r, d.Next, http.StatusSeeOther)
	return nil
}

func (c *Console) logout(q *request) error {
	if err := c.deps.Identity.DeleteSession(q.r.Context(), q.sid); err != nil {
		return err
	}
	clearCookie(q.w, q.r, api.SessionCookie, "/")
	http.Redirect(q.w, q.r, "/login", http.StatusSeeOther)
	return nil
}

// setLang remembers the chosen language for a year and goes back.
func (c *Console) setLang(q *request) error {
	code := q.r.URL.Query().Get("set")
	if _, ok := catalogs[code]; !ok {
		code = "en"
	}
	http.SetCookie(q.w, &http.Cookie{Name: langCookie, Value: code, Path: "/", MaxAge: 365 * 24 * 3600,
		SameSite: http.SameSiteLaxMode, Secure: isTLS(q.r)})
	http.Redirect(q.w, q.r, safeNext(q.r.URL.Query().Get("next"), "/"), http.StatusSeeOther)
	return nil
}

// langSwitchURL is the link that switches to code and comes back here.
func langSwitchURL(code, here string) string {
	return "/lang?set=" + code + "&next=" + url.QueryEscape(here)
}
