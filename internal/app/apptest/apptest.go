// Package apptest starts a whole Herald in-process for tests: a fresh
// database of the chosen dialect, the API on an httptest server, the queue
// running, and an admin token to call it with.
package apptest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/herald-release/herald/internal/app"
	"github.com/herald-release/herald/internal/config"
	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/db/dbtest"
)

// AdminToken is the admin's API token in every test server.
const AdminToken = "hrd_test_admin_token_0123456789"

// Env is a running test Herald.
type Env struct {
	App    *app.App
	Server *httptest.Server
	URL    string
	Token  string
}

// Option adjusts the configuration before start.
type Option func(*config.Config)

// New starts Herald on a fresh database of dialect; it stops with the test.
// Outgoing requests may reach loopback, where test fakes listen.
func New(t testing.TB, dialect db.Dialect, opts ...Option) *Env {
	t.Helper()
	cfg, err := config.Load("test", []string{
		"--database-url", dbtest.URL(t, dialect),
		"--data-dir", t.TempDir(),
		"--secret-key", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
		"--admin-token", AdminToken,
		"--admin-password", "test-password",
		"--egress-allow", "127.0.0.0/8,::1/128",
		"--retry-schedule", "10ms,20ms,40ms",
	}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatalf("test config: %v", err)
	}
	for _, o := range opts {
		o(cfg)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	ctx := context.Background()
	a, err := app.Open(ctx, cfg, log)
	if err != nil {
		t.Fatalf("open test Herald: %v", err)
	}
	if err := a.StartWork(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	srv := httptest.NewServer(a.Handler())
	cfg.PublicURL = srv.URL
	t.Cleanup(func() {
		srv.Close()
		_ = a.StopWork(5 * time.Second)
		a.Close()
	})
	return &Env{App: a, Server: srv, URL: srv.URL, Token: AdminToken}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// Do calls the API with the admin token; body may be nil, a string (sent
// as is) or a value (sent as JSON). It returns the status and raw body.
func (e *Env) Do(t testing.TB, method, path string, body any) (int, []byte) {
	t.Helper()
	return e.DoAs(t, e.Token, method, path, body)
}

// DoAs is Do with another token ("" for none).
func (e *Env) DoAs(t testing.TB, token, method, path string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = bytes.NewBufferString(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, e.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// JSON is Do that expects status want and decodes the body into out.
func (e *Env) JSON(t testing.TB, method, path string, body any, want int, out any) {
	t.Helper()
	status, raw := e.Do(t, method, path, body)
	if status != want {
		t.Fatalf("%s %s: status %d, want %d; body %s", method, path, status, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
}
