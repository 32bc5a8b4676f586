package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/herald-release/herald/internal/app"
	"github.com/herald-release/herald/internal/app/apptest"
	"github.com/herald-release/herald/internal/config"
	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/db/dbtest"
)

// The fuzz targets of this package send hostile JSON bodies to the real
// handlers of a whole in-process Herald and check what CONTRACT §2 promises
// for every one of them: never a 5xx (a panic shows as one), a 4xx is the
// §2 error shape, a validation error names its fields, and a refused body
// changes nothing.
//
// One Herald serves every input of a fuzzing process. Its job queue is
// built but never started: nothing changes behind the fuzzer's back (so a
// "nothing changed" check cannot be fooled by a worker), and no task script
// an input could smuggle in ever runs.

// quietHerald is apptest.New without the queue running and with the default
// egress policy (loopback, link-local and metadata targets refused).
func quietHerald(t testing.TB, dialect db.Dialect) *apptest.Env {
	t.Helper()
	cfg, err := config.Load("test", []string{
		"--database-url", dbtest.URL(t, dialect),
		"--data-dir", t.TempDir(),
		"--secret-key", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
		"--admin-token", apptest.AdminToken,
		"--admin-password", "test-password",
	}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatalf("test config: %v", err)
	}
	a, err := app.Open(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("open test Herald: %v", err)
	}
	srv := httptest.NewServer(a.Handler())
	cfg.PublicURL = srv.URL
	t.Cleanup(func() {
		srv.Close()
		a.Close()
	})
	return &apptest.Env{App: a, Server: srv, URL: srv.URL, Token: apptest.AdminToken}
}

// fuzzHeralds starts one quiet Herald per available database.
func fuzzHeralds(f *testing.F) []*apptest.Env {
	f.Helper()
	var out []*apptest.Env
	for _, d := range dbtest.Dialects() {
		out = append(out, quietHerald(f, d))
	}
	return out
}

// post sends a raw body with the admin token (and extra headers) and
// returns the status, the headers and the body.
func sendRaw(t testing.TB, e *apptest.Env, method, path string, body []byte, header ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.Token)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, raw
}

// checkAnswer is the §2 promise for any body: no 5xx; JSON in every
// answer; an error is {"error": {"code", "message", "details"?}} and a
// validation_failed error names at least one field. It reports whether the
// body was refused.
func checkAnswer(t testing.TB, what string, body []byte, status int, h http.Header, raw []byte) (refused bool) {
	t.Helper()
	if status >= 500 || status < 200 || (status >= 300 && status < 400) {
		t.Fatalf("%s: status %d for body %q\nanswer: %s", what, status, clipBody(body), raw)
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s: status %d with Content-Type %q: %s", what, status, ct, raw)
	}
	if status < 300 {
		if !json.Valid(raw) {
			t.Fatalf("%s: status %d with a body that is not JSON: %q", what, status, raw)
		}
		return false
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil || len(top) != 1 || top["error"] == nil {
		t.Fatalf("%s: status %d, the error is not {\"error\": {...}}: %s", what, status, raw)
	}
	var b errBody
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatalf("%s: status %d, error body %s: %v", what, status, raw, err)
	}
	if b.Error.Code == "" || b.Error.Message == "" {
		t.Fatalf("%s: status %d, error without code or message: %s", what, status, raw)
	}
	if b.Error.Code == "validation_failed" && len(b.Error.Details) == 0 {
		t.Fatalf("%s: validation_failed names no field: %s", what, raw)
	}
	for _, d := range b.Error.Details {
		if d.Field == "" || d.Message == "" {
			t.Fatalf("%s: a detail without field or message: %s", what, raw)
		}
	}
	if status == http.StatusRequestEntityTooLarge && b.Error.Code != "payload_too_large" {
		t.Fatalf("%s: 413 with code %q", what, b.Error.Code)
	}
	if len(raw) > 64<<10 {
		t.Fatalf("%s: a %d-byte error answer: the input is echoed back", what, len(raw))
	}
	return true
}

// state reads what a request could have changed, as text to compare: the
// row counts of tables, and the rows the queries select.
func rowState(t testing.TB, e *apptest.Env, tables []string, queries ...string) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	for _, table := range tables {
		var n int
		if err := e.App.DB.QueryRow(ctx, `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
			t.Fatalf("count %s: %v", table, err)
		}
		fmt.Fprintf(&b, "%s: %d\n", table, n)
	}
	for _, q := range queries {
		rows, err := e.App.DB.Query(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				rows.Close()
				t.Fatalf("%s: %v", q, err)
			}
			fmt.Fprintf(&b, "%s\n", s)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	return b.String()
}

// sameState fails when a refused body changed something.
func sameRowState(t testing.TB, what string, body []byte, before, after string) {
	t.Helper()
	if before != after {
		t.Fatalf("%s: a refused body changed the state\nbody: %q\nbefore:\n%s\nafter:\n%s", what, clipBody(body), before, after)
	}
}

// expand fills the placeholders a seed uses for ids only known at run time.
func fillVars(body []byte, vars map[string]string) []byte {
	for k, v := range vars {
		body = bytes.ReplaceAll(body, []byte(k), []byte(v))
	}
	return body
}

func clipBody(b []byte) string {
	if len(b) > 2048 {
		return string(b[:2048]) + fmt.Sprintf("… (%d bytes)", len(b))
	}
	return string(b)
}

// mustDo is a setup call that must answer want.
func mustCall(t testing.TB, e *apptest.Env, method, path string, body any, want int) []byte {
	t.Helper()
	status, raw := e.Do(t, method, path, body)
	if status != want {
		t.Fatalf("setup %s %s: %d, want %d: %s", method, path, status, want, raw)
	}
	return raw
}

// idOf reads "id" from a JSON answer.
func answerID(t testing.TB, raw []byte) string {
	t.Helper()
	var v struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(raw, &v); err != nil || v.ID == "" {
		t.Fatalf("no id in %s", raw)
	}
	return v.ID
}
