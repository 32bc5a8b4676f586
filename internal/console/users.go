package console

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/herald-release/herald/internal/identity"
)

const usersAPI = "/api/v1/users"

type usersData struct {
	Users []identity.User
	Next  string
}

func (c *Console) users(q *request) error { return q.renderUsers(http.StatusOK, nil) }

func (q *request) renderUsers(status int, f *Form) error {
	var l list[identity.User]
	if err := q.get(withQuery(usersAPI, "cursor", q.r.URL.Query().Get("cursor")), &l); err != nil {
		return err
	}
	d := usersData{Users: l.Items, Next: l.next("/users", nil)}
	q.render(status, "users", q.lang.T("users.title"), "users", d, f)
	return nil
}

func (c *Console) createUser(q *request) error {
	v := q.r.PostForm
	in := map[string]string{"name": strings.TrimSpace(v.Get("name")), "email": strings.TrimSpace(v.Get("email")),
		"role": v.Get("role"), "password": v.Get("password")}
	var u identity.User
	if err := q.api(http.MethodPost, usersAPI, in, &u); err != nil {
		v.Del("password")
		f := &Form{Name: "user", Values: v}
		if err := f.failed(err); err != nil {
			return err
		}
		return q.renderUsers(http.StatusUnprocessableEntity, f)
	}
	return q.redirect("/users/"+url.PathEscape(u.ID), "flash.user_created", u.Name)
}

type userData struct {
	Subject  identity.User
	Tokens   []identity.Token
	NewToken *newToken
	Self     bool
}

func (c *Console) account(q *request) error {
	http.Redirect(q.w, q.r, "/users/"+url.PathEscape(q.user().ID), http.StatusSeeOther)
	return nil
}

func (c *Console) user(q *request) error { return q.renderUser(http.StatusOK, nil, nil) }

func (q *request) renderUser(status int, f *Form, created *newToken) error {
	id := q.r.PathValue("id")
	d := userData{NewToken: created, Self: id == q.user().ID}
	if err := q.get(usersAPI+"/"+url.PathEscape(id), &d.Subject); err != nil {
		return err
	}
	var tl list[identity.Token]
	if err := q.get(usersAPI+"/"+url.PathEscape(id)+"/tokens", &tl); err != nil {
		return err
	}
	d.Tokens = tl.Items
	nav := "users"
	if d.Self {
		nav = "account"
	}
	if created != nil {
		// The token is on this page only: keep it out of caches.
		q.w.Header().Set("Cache-Control", "no-store")
	}
	q.render(status, "user", d.Subject.Name, nav, d, f)
	return nil
}

func (c *Console) createToken(q *request) error {
	id := q.r.PathValue("id")
	var t newToken
	if err := q.api(http.MethodPost, usersAPI+"/"+url.PathEscape(id)+"/tokens", map[string]string{"name": q.r.PostForm.Get("name")}, &t); err != nil {
		f := &Form{Name: "token", Values: q.r.PostForm}
		if err := f.failed(err); err != nil {
			return err
		}
		return q.renderUser(http.StatusUnprocessableEntity, f, nil)
	}
	// Shown once, in this answer; no redirect, which would lose it.
	return q.renderUser(http.StatusCreated, nil, &t)
}

func (c *Console) revokeToken(q *request) error {
	if err := q.api(http.MethodDelete, "/api/v1/tokens/"+url.PathEscape(q.r.PathValue("id")), nil, nil); err != nil {
		return err
	}
	return q.redirect(safeNext(q.r.PostForm.Get("back"), "/account"), "flash.token_revoked")
}
