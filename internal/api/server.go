// Package api serves the JSON API of CONTRACT §2–§8, health and metrics.
// Each domain's handlers live in their own file; they decode, call the
// domain package, and encode. Rules live in the domain packages.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/herald-release/herald/internal/apperr"
	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/identity"
	"github.com/herald-release/herald/internal/inventory"
)

// SessionCookie is the console's session cookie; the API accepts it too, so
// the console's scripts can call the API, with a CSRF header on writes.
const SessionCookie = "herald_session"

// CSRFHeader carries the session's CSRF token on cookie-authenticated writes.
const CSRFHeader = "X-CSRF-Token"

// Deps are the services the API serves.
type Deps struct {
	DB        *db.DB
	Identity  *identity.Store
	Inventory *inventory.Service
	Registry  *prometheus.Registry
	Log       *slog.Logger
	Version   string
}

// Server routes requests.
type Server struct {
	Deps
	mux     *http.ServeMux
	metrics *Metrics
	routes  []string
}

// New builds the server with the foundation's routes; other domains add
// theirs with Handle before serving starts.
func New(d Deps) *Server {
	s := &Server{Deps: d, mux: http.NewServeMux(), metrics: NewMetrics(d.Registry)}
	s.Handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": d.Version})
	}))
	s.Handle("GET /readyz", http.HandlerFunc(s.ready))
	s.Handle("GET /metrics", promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{}))
	s.Handle("GET /api/openapi.json", OpenAPIHandler())
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, r, apperr.NotFound("no route %s %s: see CONTRACT.md for the API", r.Method, r.URL.Path))
	})
	s.routeUsers()
	s.routeInventory()
	return s
}

// Handler is the server with its middleware.
func (s *Server) Handler() http.Handler { return observe(s.mux, s.metrics, s.Log) }

// Handle adds a route.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, h)
	s.routes = append(s.routes, pattern)
}

// Routes lists the patterns added with Handle, in order: the API, health
// and metrics, and the console's pages (the OpenAPI test checks the API's
// against the description).
func (s *Server) Routes() []string { return slices.Clone(s.routes) }

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.DB.Ping(ctx); err != nil {
		WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "database unreachable", "error": err.Error()})
		return
	}
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// AuthedFunc is a handler that knows its caller.
type AuthedFunc func(w http.ResponseWriter, r *http.Request, u *identity.User) error

// Authed requires a valid bearer token (or a console session with its CSRF
// token on writes) and turns the handler's error into the §2 shape.
func (s *Server) Authed(h AuthedFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := s.authenticate(r)
		if err != nil {
			if e := apperr.From(err); e != nil && e.Status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="herald"`)
			}
			WriteError(w, r, err)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), userKey, u))
		if err := h(w, r, u); err != nil {
			WriteError(w, r, err)
		}
	})
}

// Admin is Authed for admins only.
func (s *Server) Admin(h AuthedFunc) http.Handler {
	return s.Authed(func(w http.ResponseWriter, r *http.Request, u *identity.User) error {
		if !u.IsAdmin() {
			return apperr.Forbidden("only admins may do this")
		}
		return h(w, r, u)
	})
}

func (s *Server) authenticate(r *http.Request) (*identity.User, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			return nil, apperr.Unauthorized("use the header Authorization: Bearer <token>")
		}
		return s.Identity.Authenticate(r.Context(), strings.TrimSpace(token))
	}
	if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		sess, err := s.Identity.GetSession(r.Context(), c.Value)
		if err != nil {
			return nil, err
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead &&
			!identity.SameToken(r.Header.Get(CSRFHeader), sess.CSRFToken) {
			return nil, apperr.Forbidden("missing or wrong %s header for a session write: reload the page", CSRFHeader)
		}
		return sess.User, nil
	}
	return nil, apperr.Unauthorized("missing credentials: send Authorization: Bearer <token>")
}

// Actor turns a user into an event actor.
func Actor(u *identity.User) event.Actor { return event.Actor{ID: u.ID, Name: u.Name} }
