package api

import (
	"net/http"

	"github.com/herald-release/herald/internal/identity"
	"github.com/herald-release/herald/internal/page"
	"github.com/herald-release/herald/internal/release/engine"
)

// RouteTasks adds the release task routes of CONTRACT §5.
func (s *Server) RouteTasks(e *engine.Engine) {
	h := taskHandlers{e: e}
	const p = "/api/v1/release/tasks"
	s.Handle("POST "+p, s.Authed(h.create))
	s.Handle("GET "+p, s.Authed(h.list))
	s.Handle("GET "+p+"/{id}", s.Authed(h.get))
	s.Handle("POST "+p+"/{id}/promote", s.Authed(h.promote))
	s.Handle("POST "+p+"/{id}/cancel", s.Authed(h.cancel))
	s.Handle("POST "+p+"/{id}/retry", s.Authed(h.retry))
	s.Handle("GET "+p+"/{id}/logs", s.Authed(h.logs))
}

type taskHandlers struct{ e *engine.Engine }

func (h taskHandlers) create(w http.ResponseWriter, r *http.Request, u *identity.User) error {
	var in engine.CreateInput
	if err := Decode(r, &in); err != nil {
		return err
	}
	t, err := h.e.Create(r.Context(), Actor(u), in)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusCreated, t)
	return nil
}

func (h taskHandlers) list(w http.ResponseWriter, r *http.Request, _ *identity.User) error {
	q := r.URL.Query()
	pp, err := page.Parse(q)
	if err != nil {
		return err
	}
	out, err := h.e.List(r.Context(), engine.Filter{
		ProjectID: q.Get("project_id"), Environment: q.Get("environment"), Status: q.Get("status"),
	}, pp)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

func (h taskHandlers) get(w http.ResponseWriter, r *http.Request, _ *identity.User) error {
	t, err := h.e.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, t)
	return nil
}

func (h taskHandlers) promote(w http.ResponseWriter, r *http.Request, u *identity.User) error {
	t, err := h.e.Promote(r.Context(), Actor(u), r.PathValue("id"))
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, t)
	return nil
}

func (h taskHandlers) cancel(w http.ResponseWriter, r *http.Request, u *identity.User) error {
	t, err := h.e.Cancel(r.Context(), Actor(u), r.PathValue("id"))
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, t)
	return nil
}

func (h taskHandlers) retry(w http.ResponseWriter, r *http.Request, u *identity.User) error {
	t, err := h.e.Retry(r.Context(), Actor(u), r.PathValue("id"))
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, t)
	return nil
}

// logs answers a host's output as plain text, as a shell would show it.
func (h taskHandlers) logs(w http.ResponseWriter, r *http.Request, _ *identity.User) error {
	out, err := h.e.Logs(r.Context(), r.PathValue("id"), r.URL.Query().Get("host"))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(out))
	return nil
}
