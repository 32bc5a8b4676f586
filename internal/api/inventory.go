package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/herald-release/herald/internal/apperr"
	"github.com/herald-release/herald/internal/identity"
	"github.com/herald-release/herald/internal/inventory"
	"github.com/herald-release/herald/internal/page"
)

func (s *Server) routeInventory() {
	const p = "/api/v1/release/projects"
	s.Handle("POST "+p, s.Authed(s.createProject))
	s.Handle("GET "+p, s.Authed(s.listProjects))
	s.Handle("GET "+p+"/{id}", s.Authed(s.getProject))
	s.Handle("PUT "+p+"/{id}", s.Authed(s.updateProject))
	s.Handle("DELETE "+p+"/{id}", s.Admin(s.deleteProject))

	s.Handle("POST "+p+"/{id}/environments", s.Authed(s.createEnvironment))
	s.Handle("GET "+p+"/{id}/environments", s.Authed(s.listEnvironments))
	s.Handle("GET "+p+"/{id}/environments/{env}", s.Authed(s.getEnvironment))
	s.Handle("PUT "+p+"/{id}/environments/{env}", s.Authed(s.updateEnvironment))
	s.Handle("DELETE "+p+"/{id}/environments/{env}", s.Admin(s.deleteEnvironment))

	s.Handle("POST "+p+"/{id}/environments/{env}/hosts", s.Authed(s.addHosts))
	s.Handle("GET "+p+"/{id}/environments/{env}/hosts", s.Authed(s.listHosts))
	s.Handle("DELETE "+p+"/{id}/environments/{env}/hosts/{name}", s.Authed(s.deleteHost))

	s.Handle("POST "+p+"/{id}/versions", s.Authed(s.createVersion))
	s.Handle("GET "+p+"/{id}/versions", s.Authed(s.listVersions))
	s.Handle("GET "+p+"/{id}/versions/{version_id}", s.Authed(s.getVersion))
}

func (s *Server) createProject(w http.ResponseWriter, r *http.Request, u *identity.User) error {
	var in inventory.ProjectInput
	if err := Decode(r, &in); err != nil {
		return err
	}
	out, err := s.Inventory.CreateProject(r.Context(), Actor(u), in)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusCreated, out)
	return nil
}

func (s *Server) listProjects(w http.ResponseWriter, r *http.Request, _ *identity.User) error {
	pp, err := page.Parse(r.URL.Query())
	if err != nil {
		return err
	}
	out, err := s.Inventory.ListProjects(r.Context(), pp)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getProject(w http.ResponseWriter, r *http.Request, _ *identity.User) error {
	out, err := s.Inventory.GetProject(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) updateProject(w http.ResponseWriter, r *http.Request, u *identity.User) error {
	var in inventory.ProjectInput
	if err := Decode(r, &in); err != nil {
		return err
	}
	out, err := s.Inventory.UpdateProject(r.Context(), Actor(u), r.PathValue("id"), in)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) deleteProject(w http.ResponseWriter, r *http.Request, u *identity.User) error {
	if err := s.Inventory.DeleteProject(r.Context(), Actor(u), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) createEnvironment(w http.ResponseWriter, r *http.Request, u *identity.User) error {
	var in inventory.EnvironmentInput
	if err := Decode(r, &in); err != nil {
		return err
	}
	out, err := s.Inventory.CreateEnvironment(r.Context(), Actor(u), r.PathValue("id"), in)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusCreated, out.Masked())
	return nil
}

func (s *Server) listEnvironments(w http.ResponseWriter, r *http.Request, _ *identity.User) error {
	pp, err := page.Parse(r.URL.Query())
	if err != nil {
		return err
	}
	envs, err := s.Inventory.ListEnvironments(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	masked := make([]*inventory.Environment, len(envs))
	for i, e := range envs {
		masked[i] = e.Masked()
	}
	WriteJSON(w, http.StatusOK, pageSlice(masked, pp, func(e *inventory.Environment) string { return e.Name }))
	return nil
}

// pageSlice pages a short list read whole, by key, with the §2 limit and
// cursor like the lists paged in SQL.
func pageSlice[T any](items []T, p page.Params, key func(T) string) page.Page[T] {
	sorted := slices.Clone(items)
	slices.SortStableFunc(sorted, func(a, b T) int { return strings.Compare(key(a), key(b)) })
	if p.After != "" {
		sorted = slices.DeleteFunc(sorted, func(it T) bool { return key(it) <= p.After })
	}
	if len(sorted) > p.Limit+1 {
		sorted = sorted[:p.Limit+1]
	}
	return page.Make(sorted, p, key)
}

func (s *Server) getEnvironment(w http.ResponseWriter, r *http.Request, _ *identity.User) error {
	e, err := s.Inventory.GetEnvironment(r.Context(), r.PathValue("id"), r.PathValue("env"))
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, e.Masked())
	return nil
}

func (s *Server) updateEnvironment(w http.ResponseWriter, r *http.Request, u *identity.User) error {
	var in inventory.EnvironmentInput
	if err := Decode(r, &in); err != nil {
		return err
	}
	e, err := s.Inventory.UpdateEnvironment(r.Context(), Actor(u), r.PathValue("id"), r.PathValue("env"), in)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, e.Masked())
	return nil
}

func (s *Server) deleteEnvironment(w http.ResponseWriter, r *http.Request, u *identity.User) error {
	if err := s.Inventory.DeleteEnvironment(r.Context(), Actor(u), r.PathValue("id"), r.PathValue("env")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// addHosts takes one host, or {"hosts": [...]} for many (CONTRACT §4).
func (s *Server) addHosts(w http.ResponseWriter, r *http.Request, u *identity.User) error {
	var raw map[string]json.RawMessage
	if err := Decode(r, &raw); err != nil {
		return err
	}
	var hosts []inventory.HostInput
	if list, ok := raw["hosts"]; ok {
		// Element by element, so that a type error names its host
		// ("hosts[3].address"), which encoding/json alone does not.
		var items []json.RawMessage
		if err := json.Unmarshal(list, &items); err != nil {
			return prefixField("hosts", decodeError(err))
		}
		hosts = make([]inventory.HostInput, len(items))
		for i, item := range items {
			if err := json.Unmarshal(item, &hosts[i]); err != nil {
				return prefixField(fmt.Sprintf("hosts[%d]", i), decodeError(err))
			}
			if err := CheckNUL(&hosts[i]); err != nil {
				return prefixField(fmt.Sprintf("hosts[%d]", i), err)
			}
		}
	} else {
		b, _ := json.Marshal(raw)
		var one inventory.HostInput
		if err := json.Unmarshal(b, &one); err != nil {
			return decodeError(err)
		}
		if err := CheckNUL(&one); err != nil {
			return err
		}
		hosts = []inventory.HostInput{one}
	}
	_, many := raw["hosts"]
	out, err := s.Inventory.AddHosts(r.Context(), Actor(u), r.PathValue("id"), r.PathValue("env"), hosts)
	if err != nil {
		if !many {
			// The client sent one host, not a "hosts" list: name its
			// fields as it sent them ("name", not "hosts[0].name").
			return unprefixField("hosts[0]", err)
		}
		return err
	}
	if many {
		WriteJSON(w, http.StatusCreated, page.Page[*inventory.Host]{Items: out})
	} else {
		WriteJSON(w, http.StatusCreated, out[0])
	}
	return nil
}

// prefixField places a decode error's field under prefix.
func prefixField(prefix string, err error) error {
	e := apperr.From(err)
	if e == nil || len(e.Details) == 0 {
		return err
	}
	for i := range e.Details {
		if e.Details[i].Field == "body" || e.Details[i].Field == "" {
			e.Details[i].Field = prefix
		} else if e.Details[i].Field[0] == '[' {
			e.Details[i].Field = prefix + e.Details[i].Field
		} else {
			e.Details[i].Field = prefix + "." + e.Details[i].Field
		}
	}
	e.Message = e.Details[0].Field + ": " + e.Details[0].Message
	return e
}

// unprefixField removes prefix from the fields of a validation error.
func unprefixField(prefix string, err error) error {
	e := apperr.From(err)
	if e == nil || len(e.Details) == 0 {
		return err
	}
	for i := range e.Details {
		f := e.Details[i].Field
		switch {
		case f == prefix:
			e.Details[i].Field = "body"
		case strings.HasPrefix(f, prefix+"."):
			e.Details[i].Field = f[len(prefix)+1:]
		}
	}
	if len(e.Details) == 1 {
		e.Message = e.Details[0].Field + ": " + e.Details[0].Message
	}
	return e
}

func (s *Server) listHosts(w http.ResponseWriter, r *http.Request, _ *identity.User) error {
	pp, err := page.Parse(r.URL.Query())
	if err != nil {
		return err
	}
	out, err := s.Inventory.ListHosts(r.Context(), r.PathValue("id"), r.PathValue("env"), pp)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) deleteHost(w http.ResponseWriter, r *http.Request, u *identity.User) error {
	if err := s.Inventory.DeleteHost(r.Context(), Actor(u), r.PathValue("id"), r.PathValue("env"), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) createVersion(w http.ResponseWriter, r *http.Request, u *identity.User) error {
	var in inventory.VersionInput
	if err := Decode(r, &in); err != nil {
		return err
	}
	out, err := s.Inventory.CreateVersion(r.Context(), Actor(u), r.PathValue("id"), in)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusCreated, out)
	return nil
}

func (s *Server) listVersions(w http.ResponseWriter, r *http.Request, _ *identity.User) error {
	pp, err := page.Parse(r.URL.Query())
	if err != nil {
		return err
	}
	out, err := s.Inventory.ListVersions(r.Context(), r.PathValue("id"), pp)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getVersion(w http.ResponseWriter, r *http.Request, _ *identity.User) error {
	out, err := s.Inventory.GetVersion(r.Context(), r.PathValue("id"), r.PathValue("version_id"))
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}
