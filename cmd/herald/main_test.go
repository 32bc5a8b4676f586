package main_test

// These tests build the real binary once and run it as a user would: first
// start, restart, migrate, signals, and a crash in the middle of writes.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/db/dbtest"
)

var heraldBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "herald-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	heraldBin = filepath.Join(dir, "herald")
	build := exec.Command("go", "build", "-o", heraldBin, "-ldflags", "-X github.com/herald-release/herald/internal/buildinfo.Version=v9.8.7-test", ".")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const testSecretKey = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="

// cleanEnv is the test process's environment without any HERALD_ setting,
// so that only what a test passes reaches the binary.
func cleanEnv(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HERALD_") {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}

// syncBuffer collects stderr from the process's copying goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is a running herald.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	lines  chan string // stdout, line by line; closed at EOF
	seen   []string    // stdout lines read so far
	stderr *syncBuffer
	exited chan struct{}
	err    error // Wait's result, once exited is closed
}

func start(t *testing.T, dir string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(heraldBin, args...)
	cmd.Dir = dir
	cmd.Env = env
	p := &proc{t: t, cmd: cmd, lines: make(chan string, 1000), stderr: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		defer close(p.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
	}()
	go func() {
		<-copied // Wait closes the pipe: read it to the end first
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("herald %s stdout:\n%s\nstderr:\n%s", strings.Join(args, " "), strings.Join(p.seen, "\n"), p.stderr.String())
		}
	})
	return p
}

// waitLine reads stdout until a line matches re and returns its submatches.
func (p *proc) waitLine(re *regexp.Regexp, timeout time.Duration) []string {
	p.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				p.t.Fatalf("herald's stdout ended before a line matching %s; stderr:\n%s", re, p.stderr.String())
			}
			p.seen = append(p.seen, line)
			if m := re.FindStringSubmatch(line); m != nil {
				return m
			}
		case <-deadline:
			p.t.Fatalf("no line matching %s within %s; stdout so far:\n%s\nstderr:\n%s", re, timeout, strings.Join(p.seen, "\n"), p.stderr.String())
		}
	}
}

// wait waits for the exit, reads the rest of stdout, and returns the exit
// code.
func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(timeout):
		p.t.Fatalf("herald did not exit within %s", timeout)
	}
	for line := range p.lines {
		p.seen = append(p.seen, line)
	}
	var exitErr *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &exitErr):
		return exitErr.ExitCode()
	}
	p.t.Fatalf("wait: %v", p.err)
	return -1
}

func (p *proc) stdout() string { return strings.Join(p.seen, "\n") }

var (
	listeningRE = regexp.MustCompile(`listening on (http://[^\s]+)`)
	tokenRE     = regexp.MustCompile(`Admin API token \(shown once\): (\S+)`)
	passwordRE  = regexp.MustCompile(`Admin console password \(shown once\): (\S+)`)
)

// client talks to a running herald.
type client struct {
	t     *testing.T
	base  string
	token string
	http  *http.Client
}

func (c *client) do(method, path string, body any) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		return 0, nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, err
}

func (c *client) must(method, path string, body any, want int, out any) {
	c.t.Helper()
	status, raw, err := c.do(method, path, body)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	if status != want {
		c.t.Fatalf("%s %s: %d, want %d: %s", method, path, status, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
}

// versionNames lists every version of a project, following cursors.
func (c *client) versionNames(project string) map[string]bool {
	c.t.Helper()
	out := map[string]bool{}
	cursor := ""
	for {
		var p struct {
			Items      []struct{ Name string }
			NextCursor string `json:"next_cursor"`
		}
		c.must("GET", "/api/v1/release/projects/"+project+"/versions?limit=500&cursor="+url.QueryEscape(cursor), nil, 200, &p)
		for _, v := range p.Items {
			out[v.Name] = true
		}
		if p.NextCursor == "" {
			return out
		}
		cursor = p.NextCursor
	}
}

// setup is how a test runs herald on one database: the environment and
// the working folder.
type setup struct {
	dialect db.Dialect
	dir     string
	env     []string
}

func newSetup(t *testing.T, dialect db.Dialect, extra ...string) setup {
	s := setup{dialect: dialect, dir: t.TempDir()}
	if dialect == db.Postgres {
		extra = append(extra, "HERALD_DATABASE_URL="+dbtest.URL(t, db.Postgres), "HERALD_SECRET_KEY="+testSecretKey)
	}
	s.env = cleanEnv(extra...)
	return s
}

// eachDialect runs fn as parallel subtests per available database.
func eachDialect(t *testing.T, fn func(t *testing.T, dialect db.Dialect)) {
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			fn(t, d)
		})
	}
}

// serve starts herald serve on a free port and returns it with a client.
func (s setup) serve(t *testing.T, token string) (*proc, *client) {
	t.Helper()
	p := start(t, s.dir, s.env, "serve", "--addr", "127.0.0.1:0", "--shutdown-grace", "5s")
	base := p.waitLine(listeningRE, 60*time.Second)[1]
	return p, &client{t: t, base: base, token: token, http: &http.Client{Timeout: 10 * time.Second}}
}

func TestVersionAndUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args     []string
		code     int
		stdout   string
		stderr   string
		noStdout bool
	}{
		{args: []string{"version"}, code: 0, stdout: "herald v9.8.7-test\n"},
		{args: []string{"--version"}, code: 0, stdout: "herald v9.8.7-test\n"},
		{args: []string{"help"}, code: 0, stdout: "herald serve"},
		{args: nil, code: 2, stderr: "herald serve", noStdout: true},
		{args: []string{"frobnicate"}, code: 2, stderr: `unknown command "frobnicate"`, noStdout: true},
		{args: []string{"serve", "--no-such-flag"}, code: 2, stderr: "no-such-flag", noStdout: true},
		{args: []string{"serve", "--log-level", "loud"}, code: 2, stderr: "HERALD_LOG_LEVEL", noStdout: true},
		{args: []string{"serve", "--retry-schedule", "5s,later"}, code: 2, stderr: "HERALD_RETRY_SCHEDULE", noStdout: true},
		{args: []string{"serve", "--egress-allow", "10.0.0.0/99"}, code: 2, stderr: "HERALD_EGRESS_ALLOW", noStdout: true},
		{args: []string{"serve", "--database-url", "postgres://nobody@127.0.0.1:1/x"}, code: 2, stderr: "HERALD_SECRET_KEY", noStdout: true},
		{args: []string{"serve", "-h"}, code: 0, stderr: "HERALD_DATABASE_URL"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(heraldBin, tt.args...)
			cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, cleanEnv(), &stdout, &stderr
			err := cmd.Run()
			code := 0
			var exitErr *exec.ExitError
			if errors.As(err, &exitErr) {
				code = exitErr.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q", code, tt.code, stdout.String(), stderr.String())
			}
			if tt.stdout != "" && !strings.Contains(stdout.String(), tt.stdout) {
				t.Errorf("stdout %q lacks %q", stdout.String(), tt.stdout)
			}
			if tt.stderr != "" && !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tt.stderr)
			}
			if tt.noStdout && stdout.Len() != 0 {
				t.Errorf("an error printed to stdout: %q", stdout.String())
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("a command that should do nothing created %v in the working folder", entries)
			}
		})
	}
}

func TestServeFirstStartAndRestart(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, dialect db.Dialect) {
		s := newSetup(t, dialect)

		// First start: no settings but a free port.
		p, c := s.serve(t, "")
		c.token = p.waitLine(tokenRE, 10*time.Second)[1]
		password := p.waitLine(passwordRE, 10*time.Second)[1]
		if !strings.HasPrefix(c.token, "hrd_") || len(c.token) < 32 || len(password) < 12 {
			t.Fatalf("generated token %q / password %q look weak", c.token, password)
		}
		if !strings.Contains(p.stdout(), "Console: "+c.base+"/") {
			t.Errorf("no console URL in:\n%s", p.stdout())
		}
		if dialect == db.SQLite {
			if !strings.Contains(p.stdout(), "Generated the secret key") {
				t.Errorf("the generated key is not announced:\n%s", p.stdout())
			}
			for _, f := range []string{"herald-data/herald.db", "herald-data/secret.key"} {
				if _, err := os.Stat(filepath.Join(s.dir, f)); err != nil {
					t.Errorf("first start with no settings: %v", err)
				}
			}
			if fi, err := os.Stat(filepath.Join(s.dir, "herald-data/secret.key")); err == nil && fi.Mode().Perm()&0o077 != 0 {
				t.Errorf("secret.key mode %v: readable by others", fi.Mode().Perm())
			}
		}

		var me struct{ Name, Role string }
		c.must("GET", "/api/v1/me", nil, 200, &me)
		if me.Name != "admin" || me.Role != "admin" {
			t.Fatalf("/me = %+v", me)
		}
		for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
			c.must("GET", path, nil, 200, nil)
		}
		c.must("POST", "/api/v1/release/projects", map[string]any{"name": "Shop"}, 201, nil)
		c.must("POST", "/api/v1/release/projects/shop/environments", map[string]any{"name": "prod",
			"executor": map[string]any{"type": "local", "script": "echo deploy", "env": map[string]string{"TOKEN": "env-secret-value"}}}, 201, nil)
		key := privateKey(t)
		keyLine := strings.Split(key, "\n")[1]
		c.must("POST", "/api/v1/release/projects/shop/environments", map[string]any{"name": "edge",
			"executor": map[string]any{"type": "ssh", "user": "deploy", "private_key": key, "script": "x"}}, 201, nil)
		c.must("POST", "/api/v1/release/projects/shop/environments/prod/hosts", map[string]any{"name": "h1", "address": "10.0.0.1"}, 201, nil)
		var v1 struct{ ID string }
		c.must("POST", "/api/v1/release/projects/shop/versions", map[string]any{"name": "v1.0.0", "artifact": "s3://b/1"}, 201, &v1)

		start := time.Now()
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := p.wait(15 * time.Second); code != 0 {
			t.Fatalf("SIGTERM: exit %d; stderr:\n%s", code, p.stderr.String())
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("SIGTERM took %s to exit", d)
		}
		first := p.stdout()
		if n := strings.Count(first, c.token); n != 1 {
			t.Errorf("the token is printed %d times, want once:\n%s", n, first)
		}
		if n := strings.Count(first, password); n != 1 {
			t.Errorf("the password is printed %d times, want once", n)
		}
		logs := p.stderr.String()
		for _, secret := range []string{c.token, password, "env-secret-value", keyLine} {
			if strings.Contains(logs, secret) {
				t.Errorf("the log holds a secret %q:\n%s", secret, logs)
			}
		}

		// Second start on the same data: no credentials, everything kept.
		p2, c2 := s.serve(t, c.token)
		var got struct{ ID, Name string }
		c2.must("GET", "/api/v1/release/projects/shop", nil, 200, &got)
		c2.must("GET", "/api/v1/release/projects/shop/versions/"+v1.ID, nil, 200, nil)
		var hosts struct{ Items []struct{ Name string } }
		c2.must("GET", "/api/v1/release/projects/shop/environments/prod/hosts", nil, 200, &hosts)
		if got.Name != "Shop" || len(hosts.Items) != 1 {
			t.Fatalf("after restart: project %+v, hosts %+v", got, hosts)
		}
		c2.must("POST", "/api/v1/release/projects/shop/versions", map[string]any{"name": "v1.1.0"}, 201, nil)
		// The key survives the restart (sealed with the generated or given key).
		c2.must("PUT", "/api/v1/release/projects/shop/environments/edge", map[string]any{
			"executor": map[string]any{"type": "ssh", "user": "deploy", "private_key": "******", "script": "y"}}, 200, nil)
		if err := p2.cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		if code := p2.wait(15 * time.Second); code != 0 {
			t.Fatalf("SIGINT: exit %d", code)
		}
		second := p2.stdout()
		for _, leak := range []string{c.token, password, "shown once", "First start", "Generated the secret key"} {
			if strings.Contains(second, leak) {
				t.Errorf("the second start prints %q:\n%s", leak, second)
			}
		}
		if !strings.Contains(second, "listening on") {
			t.Errorf("the second start does not say where it listens:\n%s", second)
		}

		// A third start still has both versions.
		p3, c3 := s.serve(t, c.token)
		if names := c3.versionNames("shop"); !names["v1.0.0"] || !names["v1.1.0"] || len(names) != 2 {
			t.Fatalf("versions after two restarts: %v", names)
		}
		_ = p3.cmd.Process.Signal(syscall.SIGTERM)
		if code := p3.wait(15 * time.Second); code != 0 {
			t.Fatalf("exit %d", code)
		}
	})
}

func TestServeWithGivenCredentials(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, dialect db.Dialect) {
		const token = "hrd_given_token_0123456789abcdef"
		s := newSetup(t, dialect, "HERALD_ADMIN_TOKEN="+token, "HERALD_ADMIN_PASSWORD=given-password-1")
		p, c := s.serve(t, token)
		c.must("GET", "/api/v1/me", nil, 200, nil)
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		if code := p.wait(15 * time.Second); code != 0 {
			t.Fatalf("exit %d", code)
		}
		out := p.stdout()
		if strings.Contains(out, token) || strings.Contains(out, "given-password-1") || strings.Contains(out, "shown once") {
			t.Errorf("given credentials are printed:\n%s", out)
		}
		if !strings.Contains(out, `created the admin user "admin"`) {
			t.Errorf("first start is not announced:\n%s", out)
		}
	})
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, dialect db.Dialect) {
		s := newSetup(t, dialect)
		run := func() (int, string, string) {
			t.Helper()
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(heraldBin, "migrate")
			cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = s.dir, s.env, &stdout, &stderr
			err := cmd.Run()
			var exitErr *exec.ExitError
			if errors.As(err, &exitErr) {
				return exitErr.ExitCode(), stdout.String(), stderr.String()
			} else if err != nil {
				t.Fatal(err)
			}
			return 0, stdout.String(), stderr.String()
		}
		code, out, errOut := run()
		if code != 0 || !strings.Contains(out, "applied 0001_foundation.sql") {
			t.Fatalf("first migrate: exit %d\n%s\n%s", code, out, errOut)
		}
		for i := 0; i < 2; i++ {
			code, out, errOut = run()
			if code != 0 || strings.Contains(out, "applied") || !strings.Contains(out, "up to date") {
				t.Fatalf("migrate again: exit %d\n%s\n%s", code, out, errOut)
			}
		}
		// The migrated database serves, and first start still happens.
		p, c := s.serve(t, "")
		c.token = p.waitLine(tokenRE, 10*time.Second)[1]
		c.must("GET", "/api/v1/me", nil, 200, nil)
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		if code := p.wait(15 * time.Second); code != 0 {
			t.Fatalf("exit %d", code)
		}
		if code, out, _ := run(); code != 0 || !strings.Contains(out, "up to date") {
			t.Fatalf("migrate after serve: exit %d %s", code, out)
		}
	})
}

func TestServeAddressInUse(t *testing.T) {
	t.Parallel()
	s := newSetup(t, db.SQLite)
	p, c := s.serve(t, "")
	addr := strings.TrimPrefix(c.base, "http://")
	var stderr bytes.Buffer
	cmd := exec.Command(heraldBin, "serve", "--addr", addr, "--data-dir", t.TempDir())
	cmd.Dir, cmd.Env, cmd.Stderr = t.TempDir(), cleanEnv(), &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 || !strings.Contains(stderr.String(), "HERALD_ADDR") {
		t.Fatalf("a second server on %s: %v\n%s", addr, err, stderr.String())
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(15 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestKillDuringWrites kills herald with SIGKILL while a client writes
// versions one after another: every write that was acknowledged with a 201
// is there after a restart.
func TestKillDuringWrites(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, dialect db.Dialect) {
		const token = "hrd_kill_test_token_0123456789ab"
		s := newSetup(t, dialect, "HERALD_ADMIN_TOKEN="+token)
		p, c := s.serve(t, token)
		c.must("POST", "/api/v1/release/projects", map[string]any{"name": "Shop"}, 201, nil)

		const before = 150 // acknowledged writes to wait for before the kill
		var (
			mu      sync.Mutex
			acked   []string
			reached = make(chan struct{})
			done    = make(chan error, 1)
		)
		go func() {
			for i := 0; ; i++ {
				name := fmt.Sprintf("v0.%d.0", i)
				status, raw, err := c.do("POST", "/api/v1/release/projects/shop/versions",
					map[string]any{"name": name, "metadata": map[string]any{"i": i, "pad": strings.Repeat("x", 2000)}})
				if err != nil {
					done <- nil // the server is gone
					return
				}
				if status != 201 {
					done <- fmt.Errorf("POST %s: %d %s", name, status, raw)
					return
				}
				mu.Lock()
				acked = append(acked, name)
				if len(acked) == before {
					close(reached)
				}
				mu.Unlock()
			}
		}()
		select {
		case <-reached:
		case err := <-done:
			t.Fatalf("the writer stopped early: %v", err)
		case <-time.After(60 * time.Second):
			t.Fatal("no 150 writes within a minute")
		}
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if code := p.wait(15 * time.Second); code != -1 {
			t.Logf("exit code after SIGKILL: %d", code)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		written := append([]string(nil), acked...)
		mu.Unlock()
		if len(written) < before {
			t.Fatalf("only %d acknowledged writes", len(written))
		}

		p2, c2 := s.serve(t, token)
		c2.must("GET", "/readyz", nil, 200, nil)
		names := c2.versionNames("shop")
		var lost []string
		for _, n := range written {
			if !names[n] {
				lost = append(lost, n)
			}
		}
		if len(lost) > 0 {
			t.Fatalf("%d of %d acknowledged writes are gone after SIGKILL: %v", len(lost), len(written), lost)
		}
		if len(names) > len(written)+1 {
			t.Fatalf("%d versions stored, %d acknowledged: more than the one in flight", len(names), len(written))
		}
		// And the database takes writes again.
		c2.must("POST", "/api/v1/release/projects/shop/versions", map[string]any{"name": "after-crash"}, 201, nil)
		_ = p2.cmd.Process.Signal(syscall.SIGTERM)
		if code := p2.wait(15 * time.Second); code != 0 {
			t.Fatalf("exit %d", code)
		}
	})
}

// TestServersShareOnePostgres starts two herald serve at once on one fresh
// PostgreSQL database (CONTRACT §1): both migrate and start, exactly one
// creates the admin and prints its credentials, and each sees what the
// other writes.
func TestServersShareOnePostgres(t *testing.T) {
	t.Parallel()
	if len(dbtest.Dialects()) < 2 {
		t.Skipf("%s is not set", dbtest.EnvURL)
	}
	s := newSetup(t, db.Postgres)
	type started struct {
		p *proc
		c *client
	}
	var servers [2]started
	// start does not wait: both processes race through migration and
	// first start together.
	for i := range servers {
		servers[i].p = start(t, s.dir, s.env, "serve", "--addr", "127.0.0.1:0", "--shutdown-grace", "5s")
	}
	for i := range servers {
		base := servers[i].p.waitLine(listeningRE, 60*time.Second)[1]
		servers[i].c = &client{t: t, base: base, http: &http.Client{Timeout: 10 * time.Second}}
	}
	var token string
	for i := range servers {
		servers[i].c.must("GET", "/readyz", nil, 200, nil)
		_ = servers[i].p.cmd.Process.Signal(syscall.SIGTERM)
		if code := servers[i].p.wait(15 * time.Second); code != 0 {
			t.Fatalf("server %d: exit %d", i, code)
		}
		if m := tokenRE.FindStringSubmatch(servers[i].p.stdout()); m != nil {
			if token != "" {
				t.Fatal("both servers created the admin and printed a token")
			}
			token = m[1]
		}
	}
	if token == "" {
		t.Fatalf("neither server printed the admin token:\n%s\n--\n%s", servers[0].p.stdout(), servers[1].p.stdout())
	}

	// Both again, now to share data.
	a, ca := s.serve(t, token)
	b, cb := s.serve(t, token)
	ca.must("POST", "/api/v1/release/projects", map[string]any{"name": "Shared"}, 201, nil)
	cb.must("GET", "/api/v1/release/projects/shared", nil, 200, nil)
	cb.must("POST", "/api/v1/release/projects/shared/versions", map[string]any{"name": "v1"}, 201, nil)
	status, raw, err := ca.do("POST", "/api/v1/release/projects/shared/versions", map[string]any{"name": "v1"})
	if err != nil || status != 409 {
		t.Fatalf("the same version through the other server: %d %s %v", status, raw, err)
	}
	for _, p := range []*proc{a, b} {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		if code := p.wait(15 * time.Second); code != 0 {
			t.Fatalf("exit %d", code)
		}
	}
	var users int
	d, err := db.Open(context.Background(), envValue(s.env, "HERALD_DATABASE_URL"), "")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.QueryRow(context.Background(), `SELECT COUNT(*) FROM users`).Scan(&users); err != nil || users != 1 {
		t.Fatalf("%d users after two first starts at once (%v), want one admin", users, err)
	}
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

// privateKey is a fresh unencrypted ed25519 key in OpenSSH PEM.
func privateKey(t *testing.T) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(block))
}
