package api

import (
	"net/http"

	"github.com/herald-release/herald/internal/apperr"
	"github.com/herald-release/herald/internal/identity"
	"github.com/herald-release/herald/internal/page"
)

func (s *Server) routeUsers() {
	s.Handle("GET /api/v1/me", s.Authed(func(w http.ResponseWriter, r *http.Request, u *identity.User) error {
		WriteJSON(w, http.StatusOK, u)
		return nil
	}))
	s.Handle("POST /api/v1/users", s.Admin(s.createUser))
	s.Handle("GET /api/v1/users", s.Authed(s.listUsers))
	s.Handle("GET /api/v1/users/{id}", s.Authed(s.getUser))
	s.Handle("POST /api/v1/users/{id}/tokens", s.Authed(s.createToken))
	s.Handle("GET /api/v1/users/{id}/tokens", s.Authed(s.listTokens))
	s.Handle("DELETE /api/v1/tokens/{id}", s.Authed(s.revokeToken))
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request, _ *identity.User) error {
	var in identity.NewUser
	if err := Decode(r, &in); err != nil {
		return err
	}
	u, err := s.Identity.CreateUser(r.Context(), s.DB, in)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusCreated, u)
	return nil
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, _ *identity.User) error {
	p, err := page.Parse(r.URL.Query())
	if err != nil {
		return err
	}
	out, err := s.Identity.ListUsers(r.Context(), p)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request, _ *identity.User) error {
	u, err := s.Identity.GetUser(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, u)
	return nil
}

// selfOrAdmin allows admins, and users acting on themselves.
func selfOrAdmin(u *identity.User, userID string) error {
	if u.IsAdmin() || u.ID == userID {
		return nil
	}
	return apperr.Forbidden("only admins may manage another user's tokens")
}

type tokenCreated struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Token string `json:"token"`
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, u *identity.User) error {
	userID := r.PathValue("id")
	if err := selfOrAdmin(u, userID); err != nil {
		return err
	}
	var in struct {
		Name string `json:"name"`
	}
	if err := Decode(r, &in); err != nil {
		return err
	}
	if _, err := s.Identity.GetUser(r.Context(), userID); err != nil {
		return err
	}
	t, secret, err := s.Identity.CreateToken(r.Context(), s.DB, userID, in.Name, "")
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	WriteJSON(w, http.StatusCreated, tokenCreated{ID: t.ID, Name: t.Name, Token: secret})
	return nil
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, u *identity.User) error {
	userID := r.PathValue("id")
	if err := selfOrAdmin(u, userID); err != nil {
		return err
	}
	pp, err := page.Parse(r.URL.Query())
	if err != nil {
		return err
	}
	if _, err := s.Identity.GetUser(r.Context(), userID); err != nil {
		return err
	}
	ts, err := s.Identity.ListTokens(r.Context(), userID)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, pageSlice(ts, pp, func(t *identity.Token) string { return t.ID }))
	return nil
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, u *identity.User) error {
	t, err := s.Identity.GetToken(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := selfOrAdmin(u, t.UserID); err != nil {
		return err
	}
	if err := s.Identity.RevokeToken(r.Context(), t.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
