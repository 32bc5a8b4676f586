package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/herald-release/herald/internal/apperr"
	"github.com/herald-release/herald/internal/identity"
	"github.com/herald-release/herald/internal/page"
	"github.com/herald-release/herald/internal/plan"
)

// RoutePlans adds the release plan routes of CONTRACT §7: the plans, the
// hook settings, and the external system's callback, which authenticates
// with X-Herald-Token instead of a bearer token.
func (s *Server) RoutePlans(svc *plan.Service) {
	h := planHandlers{svc: svc}
	const p = "/api/v1/release/plans"
	s.Handle("POST "+p, s.Authed(h.create))
	s.Handle("GET "+p, s.Authed(h.list))
	s.Handle("GET "+p+"/{id}", s.Authed(h.get))
	s.Handle("PUT "+p+"/{id}", s.Authed(h.update))
	s.Handle("DELETE "+p+"/{id}", s.Authed(h.delete))
	s.Handle("POST "+p+"/{id}/finish-planning", s.Authed(h.status(svc.FinishPlanning)))
	s.Handle("POST "+p+"/{id}/submit-approval", s.Authed(h.status(svc.SubmitApproval)))
	s.Handle("POST "+p+"/{id}/approve", s.Authed(h.approve))
	s.Handle("POST "+p+"/{id}/execute", s.Authed(h.status(svc.Execute)))
	s.Handle("POST "+p+"/{id}/replan", s.Authed(h.status(svc.Replan)))
	s.Handle("POST "+p+"/{id}/cancel", s.Authed(h.status(svc.Cancel)))
	s.Handle("POST "+p+"/{id}/jobs/{job_id}/execute", s.Authed(h.executeJob))
	s.Handle("POST "+p+"/{id}/jobs/{job_id}/skip", s.Authed(h.skipJob))
	s.Handle("POST "+p+"/{id}/jobs/{job_id}/retry", s.Authed(h.retryJob))
	s.Handle("GET "+p+"/{id}/logs", s.Authed(h.logs))
	s.Handle("GET "+p+"/{id}/hooks", s.Authed(h.hooks))
	s.Handle("GET /api/v1/release/settings/plan-hook", s.Authed(h.getSettings))
	s.Handle("PUT /api/v1/release/settings/plan-hook", s.Admin(h.putSettings))
	s.Handle("POST /api/callback/release_plan", http.HandlerFunc(h.callback))
}

type planHandlers struct{ svc *plan.Service }

func caller(u *identity.User) plan.Caller { return plan.Caller{Actor: Actor(u), Admin: u.IsAdmin()} }

func (h planHandlers) create(w http.ResponseWriter, r *http.Request, u *identity.User) error {
	var raw json.RawMessage
	if err := Decode(r, &raw); err != nil {
		return err
	}
	in, err := plan.DecodeInput(raw)
	if err != nil {
		return err
	}
	p, err := h.svc.Create(r.Context(), caller(u), in)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusCreated, p)
	return nil
}

func (h planHandlers) list(w http.ResponseWriter, r *http.Request, _ *identity.User) error {
	q := r.URL.Query()
	pp, err := page.Parse(q)
	if err != nil {
		return err
	}
	out, err := h.svc.List(r.Context(), plan.Filter{Status: q.Get("status"), ManagerID: q.Get("manager_id")}, pp)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

func (h planHandlers) get(w http.ResponseWriter, r *http.Request, _ *identity.User) error {
	p, err := h.svc.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, p)
	return nil
}

func (h planHandlers) update(w http.ResponseWriter, r *http.Request, u *identity.User) error {
	var body map[string]json.RawMessage
	if err := Decode(r, &body); err != nil {
		return err
	}
	p, err := h.svc.Update(r.Context(), caller(u), r.PathValue("id"), body)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, p)
	return nil
}

func (h planHandlers) delete(w http.ResponseWriter, r *http.Request, u *identity.User) error {
	if err := h.svc.Delete(r.Context(), caller(u), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// status serves the status actions, whose bodies are empty (or {}).
func (h planHandlers) status(fn func(ctx context.Context, c plan.Caller, id string) (*plan.Plan, error)) AuthedFunc {
	return func(w http.ResponseWriter, r *http.Request, u *identity.User) error {
		var empty struct{}
		if err := optionalBody(r, &empty); err != nil {
			return err
		}
		p, err := fn(r.Context(), caller(u), r.PathValue("id"))
		if err != nil {
			return err
		}
		WriteJSON(w, http.StatusOK, p)
		return nil
	}
}

func (h planHandlers) approve(w http.ResponseWriter, r *http.Request, u *identity.User) error {
	var in struct {
		Approve *bool  `json:"approve"`
		Comment string `json:"comment"`
	}
	if err := Decode(r, &in); err != nil {
		return err
	}
	if in.Approve == nil {
		return apperr.Field("approve", "is required: true to approve, false to deny")
	}
	p, err := h.svc.Approve(r.Context(), caller(u), r.PathValue("id"), *in.Approve, in.Comment)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, p)
	return nil
}

// optionalBody decodes a body that may be absent or empty.
func optionalBody(r *http.Request, dst any) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return decodeError(err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(b))
	return Decode(r2, dst)
}

func (h planHandlers) executeJob(w http.ResponseWriter, r *http.Request, u *identity.User) error {
	var in struct {
		Remark string `json:"remark"`
	}
	if err := optionalBody(r, &in); err != nil {
		return err
	}
	p, err := h.svc.ExecuteJob(r.Context(), caller(u), r.PathValue("id"), r.PathValue("job_id"), in.Remark)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, p)
	return nil
}

func (h planHandlers) skipJob(w http.ResponseWriter, r *http.Request, u *identity.User) error {
	p, err := h.svc.SkipJob(r.Context(), caller(u), r.PathValue("id"), r.PathValue("job_id"))
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, p)
	return nil
}

func (h planHandlers) retryJob(w http.ResponseWriter, r *http.Request, u *identity.User) error {
	p, err := h.svc.RetryJob(r.Context(), caller(u), r.PathValue("id"), r.PathValue("job_id"))
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, p)
	return nil
}

func (h planHandlers) logs(w http.ResponseWriter, r *http.Request, _ *identity.User) error {
	pp, err := page.Parse(r.URL.Query())
	if err != nil {
		return err
	}
	out, err := h.svc.Logs(r.Context(), r.PathValue("id"), pp)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

func (h planHandlers) hooks(w http.ResponseWriter, r *http.Request, _ *identity.User) error {
	out, err := h.svc.Hooks(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, map[string]any{"items": out, "next_cursor": ""})
	return nil
}

func (h planHandlers) getSettings(w http.ResponseWriter, r *http.Request, _ *identity.User) error {
	out, err := h.svc.HookSettings(r.Context())
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

func (h planHandlers) putSettings(w http.ResponseWriter, r *http.Request, u *identity.User) error {
	var in plan.HookSettings
	if err := Decode(r, &in); err != nil {
		return err
	}
	out, err := h.svc.PutHookSettings(r.Context(), Actor(u), in)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

// callback is the external system's answer to a hook (CONTRACT §7),
// authenticated by the hook secret in X-Herald-Token.
func (h planHandlers) callback(w http.ResponseWriter, r *http.Request) {
	if err := h.svc.CheckToken(r.Context(), r.Header.Get(plan.HeaderToken)); err != nil {
		WriteError(w, r, err)
		return
	}
	var in plan.CallbackInput
	if err := Decode(r, &in); err != nil {
		WriteError(w, r, err)
		return
	}
	if err := h.svc.Callback(r.Context(), in); err != nil {
		WriteError(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]string{"id": strings.TrimSpace(in.ReleasePlanID)})
}
