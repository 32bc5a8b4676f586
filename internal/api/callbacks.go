package api

import (
	"net/http"

	"github.com/herald-release/herald/internal/identity"
	"github.com/herald-release/herald/internal/notify"
	"github.com/herald-release/herald/internal/page"
)

// RouteCallbacks adds the callback routes of CONTRACT §8 (the PRD's).
func (s *Server) RouteCallbacks(hub *notify.Hub) {
	h := callbackHandlers{hub: hub}
	s.Handle("GET /api/v1/release/callbacks", s.Authed(h.listAll))
	s.Handle("POST /api/v1/release/callbacks", s.Authed(h.createGlobal))
	s.Handle("GET /api/v1/release/projects/{id}/callbacks", s.Authed(h.listProject))
	s.Handle("POST /api/v1/release/projects/{id}/callbacks", s.Authed(h.createProject))
	s.Handle("GET /api/v1/release/callbacks/{id}", s.Authed(h.get))
	s.Handle("PUT /api/v1/release/callbacks/{id}", s.Authed(h.update))
	s.Handle("DELETE /api/v1/release/callbacks/{id}", s.Authed(h.delete))
	s.Handle("POST /api/v1/release/callbacks/{id}/test", s.Authed(h.test))
	s.Handle("POST /api/v1/release/callbacks/preview", s.Authed(h.preview))
	s.Handle("GET /api/v1/release/callbacks/history", s.Authed(h.history))
	s.Handle("POST /api/v1/release/callbacks/history/{id}/redeliver", s.Authed(h.redeliver))
	s.Handle("GET /api/v1/release/tasks/{id}/callbacks", s.Authed(h.taskHistory))
	s.Handle("GET /api/v1/release/callbacks/{id}/history", s.Authed(h.configHistory))
}

type callbackHandlers struct{ hub *notify.Hub }

func writeConfigs(w http.ResponseWriter, cs []*notify.Config) {
	out := make([]*notify.Config, len(cs))
	for i, c := range cs {
		out[i] = c.Masked()
	}
	WriteJSON(w, http.StatusOK, page.Page[*notify.Config]{Items: out})
}

func (h callbackHandlers) listAll(w http.ResponseWriter, r *http.Request, _ *identity.User) error {
	cs, err := h.hub.ListConfigs(r.Context(), "")
	if err != nil {
		return err
	}
	writeConfigs(w, cs)
	return nil
}

func (h callbackHandlers) listProject(w http.ResponseWriter, r *http.Request, _ *identity.User) error {
	cs, err := h.hub.ListConfigs(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeConfigs(w, cs)
	return nil
}

func (h callbackHandlers) create(w http.ResponseWriter, r *http.Request, projectID string) error {
	var in notify.ConfigInput
	if err := Decode(r, &in); err != nil {
		return err
	}
	c, err := h.hub.CreateConfig(r.Context(), projectID, in)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusCreated, c.Masked())
	return nil
}

func (h callbackHandlers) createGlobal(w http.ResponseWriter, r *http.Request, _ *identity.User) error {
	return h.create(w, r, "")
}

func (h callbackHandlers) createProject(w http.ResponseWriter, r *http.Request, _ *identity.User) error {
	return h.create(w, r, r.PathValue("id"))
}

func (h callbackHandlers) get(w http.ResponseWriter, r *http.Request, _ *identity.User) error {
	c, err := h.hub.GetConfig(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, c.Masked())
	return nil
}

func (h callbackHandlers) update(w http.ResponseWriter, r *http.Request, _ *identity.User) error {
	var in notify.ConfigInput
	if err := Decode(r, &in); err != nil {
		return err
	}
	c, err := h.hub.UpdateConfig(r.Context(), r.PathValue("id"), in)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, c.Masked())
	return nil
}

func (h callbackHandlers) delete(w http.ResponseWriter, r *http.Request, _ *identity.User) error {
	if err := h.hub.DeleteConfig(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h callbackHandlers) test(w http.ResponseWriter, r *http.Request, u *identity.User) error {
	rep, err := h.hub.Test(r.Context(), r.PathValue("id"), Actor(u))
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, rep)
	return nil
}

// preview renders one channel's message for a sample event, as the form
// holds it, without sending anything.
func (h callbackHandlers) preview(w http.ResponseWriter, r *http.Request, u *identity.User) error {
	var in notify.PreviewInput
	if err := Decode(r, &in); err != nil {
		return err
	}
	p, err := h.hub.Preview(r.Context(), in, Actor(u))
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, p)
	return nil
}

func (h callbackHandlers) list(w http.ResponseWriter, r *http.Request, f notify.Filter) error {
	p, err := page.Parse(r.URL.Query())
	if err != nil {
		return err
	}
	out, err := h.hub.History(r.Context(), f, p)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

func (h callbackHandlers) history(w http.ResponseWriter, r *http.Request, _ *identity.User) error {
	f, err := notify.ParseFilter(r.URL.Query())
	if err != nil {
		return err
	}
	return h.list(w, r, f)
}

func (h callbackHandlers) taskHistory(w http.ResponseWriter, r *http.Request, _ *identity.User) error {
	f, err := notify.ParseFilter(r.URL.Query())
	if err != nil {
		return err
	}
	f.TaskID = r.PathValue("id")
	return h.list(w, r, f)
}

func (h callbackHandlers) configHistory(w http.ResponseWriter, r *http.Request, _ *identity.User) error {
	f, err := notify.ParseFilter(r.URL.Query())
	if err != nil {
		return err
	}
	if _, err := h.hub.GetConfig(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	f.ConfigID = r.PathValue("id")
	return h.list(w, r, f)
}

func (h callbackHandlers) redeliver(w http.ResponseWriter, r *http.Request, _ *identity.User) error {
	deliveryID, err := h.hub.Redeliver(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusAccepted, map[string]string{"delivery_id": deliveryID, "status": "pending"})
	return nil
}
