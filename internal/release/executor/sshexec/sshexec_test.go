package sshexec_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/herald-release/herald/internal/duration"
	"github.com/herald-release/herald/internal/egress"
	"github.com/herald-release/herald/internal/release/executor"
	"github.com/herald-release/herald/internal/release/executor/internal/proctest"
	"github.com/herald-release/herald/internal/release/executor/sshexec"
	"github.com/herald-release/herald/internal/testsupport"
)

// allowLoopback is the egress policy tests need to reach the fake server.
var allowLoopback = egress.AllowAll().DialContext

func specFor(srv *testsupport.SSHServer, script string) executor.Spec {
	return executor.Spec{
		Type:       executor.TypeSSH,
		Script:     script,
		User:       "deploy",
		Port:       srv.Port(),
		PrivateKey: srv.PrivateKeyPEM(),
		KnownHosts: srv.KnownHosts(),
	}
}

func runOn(ctx context.Context, e executor.Executor, spec executor.Spec, address string, vars map[string]string) (executor.Result, string, error) {
	var out executor.Tail
	res, err := e.Run(ctx, spec, executor.Run{Host: "h1", Address: address, Vars: vars, Output: &out})
	return res, out.String(), err
}

// assertNoKey checks an error never carries key material.
func assertNoKey(t *testing.T, err error, key string) {
	t.Helper()
	if err == nil {
		return
	}
	body := strings.TrimSpace(key)
	body = strings.Join(strings.Split(body, "\n")[1:3], "")
	if strings.Contains(err.Error(), body[:20]) {
		t.Fatalf("the error echoes the private key: %v", err)
	}
}

func TestRunsScriptWithVariables(t *testing.T) {
	t.Parallel()
	srv := testsupport.NewSSHServer(t)
	spec := specFor(srv, `echo "host=$HERALD_HOST version=$HERALD_VERSION foo=$FOO"
echo to-stderr >&2`)
	spec.Env = map[string]string{"FOO": "it's spec", "HERALD_VERSION": "overridden"}
	nasty := `v1 'q' "d" $(touch /tmp/herald-pwned) ; \ end`
	// Address without a port: the spec's port is used.
	res, out, err := runOn(context.Background(), sshexec.New(allowLoopback), spec, srv.Host(),
		map[string]string{"HERALD_HOST": "h1", "HERALD_VERSION": nasty})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("Run = %v, %v\n%s", res, err, out)
	}
	for _, want := range []string{"host=h1 version=" + nasty + " foo=it's spec\n", "to-stderr\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	cmds := srv.Commands()
	if len(cmds) != 1 || !strings.HasPrefix(cmds[0], "export FOO='it'\\''s spec'; export HERALD_HOST='h1'; ") {
		t.Fatalf("commands = %q", cmds)
	}
	if users := srv.Users(); len(users) != 1 || users[0] != "deploy" {
		t.Fatalf("users = %q", users)
	}
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	srv := testsupport.NewSSHServer(t)
	e := sshexec.New(allowLoopback)
	for _, code := range []int{0, 1, 3, 255} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			t.Parallel()
			res, out, err := runOn(context.Background(), e, specFor(srv, "echo out; exit "+strconv.Itoa(code)), srv.Addr(), nil)
			if err != nil || res.ExitCode != code {
				t.Fatalf("Run = %v, %v; want exit %d", res, err, code)
			}
			if out != "out\n" {
				t.Fatalf("output %q", out)
			}
		})
	}
}

func TestAcceptsAnyHostKeyWithoutKnownHosts(t *testing.T) {
	t.Parallel()
	srv := testsupport.NewSSHServer(t)
	spec := specFor(srv, "true")
	spec.KnownHosts = ""
	res, _, err := runOn(context.Background(), sshexec.New(allowLoopback), spec, srv.Addr(), nil)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("Run = %v, %v", res, err)
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	srv := testsupport.NewSSHServer(t)
	otherKey := newPrivateKeyPEM(t)
	otherSigner, err := ssh.ParsePrivateKey([]byte(otherKey))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		mod  func(*executor.Spec)
		want []string
	}{
		{"wrong key", func(s *executor.Spec) { s.PrivateKey = otherKey },
			[]string{`refused the key for user "deploy"`, "authorized_keys", ssh.FingerprintSHA256(otherSigner.PublicKey())}},
		{"host key mismatch", func(s *executor.Spec) {
			s.KnownHosts = knownhosts.Line([]string{srv.Addr()}, otherSigner.PublicKey())
		}, []string{"host key check failed", "does not match known_hosts", ssh.FingerprintSHA256(srv.HostPublicKey())}},
		{"host not listed", func(s *executor.Spec) {
			s.KnownHosts = knownhosts.Line([]string{"other.example.com"}, srv.HostPublicKey())
		}, []string{"not listed in known_hosts", "[" + srv.Host() + "]:" + strconv.Itoa(srv.Port())}},
		{"unparsable key", func(s *executor.Spec) {
			s.PrivateKey = "-----BEGIN OPENSSH PRIVATE KEY-----\nTOPSECRETTOPSECRETTOPSECRET\n-----END OPENSSH PRIVATE KEY-----\n"
		}, []string{"private_key cannot be parsed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spec := specFor(srv, "touch /tmp/herald-should-not-run")
			tt.mod(&spec)
			res, _, err := runOn(context.Background(), sshexec.New(allowLoopback), spec, srv.Addr(), nil)
			if err == nil || res.ExitCode != -1 {
				t.Fatalf("Run = %v, %v; want a refusal", res, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			assertNoKey(t, err, spec.PrivateKey)
			if strings.Contains(err.Error(), "TOPSECRET") {
				t.Fatalf("error echoes the key: %v", err)
			}
		})
	}
	t.Cleanup(func() {
		if cmds := srv.Commands(); len(cmds) != 0 {
			t.Errorf("a refused run reached the shell: %q", cmds)
		}
	})
}

func TestTimeoutKillsTheRemoteScript(t *testing.T) {
	t.Parallel()
	srv := testsupport.NewSSHServer(t)
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	spec := specFor(srv, `sleep 30 & echo $! > "$PID_FILE"; sleep 30`)
	spec.Env = map[string]string{"PID_FILE": pidFile}
	spec.Timeout = duration.Duration(200 * time.Millisecond)
	start := time.Now()
	res, _, err := runOn(context.Background(), sshexec.New(allowLoopback), spec, srv.Addr(), nil)
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Fatalf("Run took %s after a 200ms timeout", elapsed)
	}
	var te *executor.TimeoutError
	if res.ExitCode != -1 || !errors.As(err, &te) || err.Error() != "timed out after 200ms: raise the executor timeout or speed up the script" {
		t.Fatalf("Run = %v, %v", res, err)
	}
	proctest.WaitGone(t, proctest.ReadPID(t, pidFile))
}

func TestCancelKillsTheRemoteScript(t *testing.T) {
	t.Parallel()
	srv := testsupport.NewSSHServer(t)
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	spec := specFor(srv, `sleep 30 & echo $! > "$PID_FILE"; wait`)
	spec.Env = map[string]string{"PID_FILE": pidFile}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pid := make(chan int, 1)
	go func() {
		pid <- proctest.ReadPID(t, pidFile)
		cancel()
	}()
	res, _, err := runOn(ctx, sshexec.New(allowLoopback), spec, srv.Addr(), nil)
	if res.ExitCode != -1 || !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, %v; want -1 and context.Canceled", res, err)
	}
	proctest.WaitGone(t, <-pid)
}

func TestUnreachablePort(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	srv := testsupport.NewSSHServer(t)
	res, _, err := runOn(context.Background(), sshexec.New(allowLoopback), specFor(srv, "true"), addr, nil)
	if res.ExitCode != -1 || err == nil {
		t.Fatalf("Run = %v, %v", res, err)
	}
	for _, w := range []string{"ssh: dial " + addr, "connection refused", "check the host address and port"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
}

func TestEgressRefusalIsSurfaced(t *testing.T) {
	t.Parallel()
	srv := testsupport.NewSSHServer(t)
	policy, err := egress.New(nil) // the default policy refuses loopback
	if err != nil {
		t.Fatal(err)
	}
	res, _, err := runOn(context.Background(), sshexec.New(policy.DialContext), specFor(srv, "true"), srv.Addr(), nil)
	if res.ExitCode != -1 || !egress.IsRefused(err) {
		t.Fatalf("Run = %v, %v; want an egress refusal", res, err)
	}
	if !strings.Contains(err.Error(), "HERALD_EGRESS_ALLOW") {
		t.Errorf("error %q does not say how to allow the target", err)
	}
	if n := srv.Connections(); n != 0 {
		t.Fatalf("the server saw %d connections", n)
	}
}

func TestAddressWithoutHostIsRefused(t *testing.T) {
	t.Parallel()
	srv := testsupport.NewSSHServer(t)
	_, _, err := runOn(context.Background(), sshexec.New(allowLoopback), specFor(srv, "true"), "", nil)
	if err == nil || !strings.Contains(err.Error(), "has no address") {
		t.Fatalf("err = %v", err)
	}
}

func newPrivateKeyPEM(t *testing.T) string {
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
