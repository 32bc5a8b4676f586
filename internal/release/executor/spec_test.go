package executor_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/herald-release/herald/internal/duration"
	"github.com/herald-release/herald/internal/release/executor"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	key := testKeyPEM(t, "")
	locked := testKeyPEM(t, "hunter2")
	hostLine := "host.example.com " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(mustSigner(t, key).PublicKey())))
	sshSpec := func(mod func(*executor.Spec)) executor.Spec {
		s := executor.Spec{Type: "ssh", Script: "deploy", User: "deploy", PrivateKey: key}
		if mod != nil {
			mod(&s)
		}
		return s
	}
	tests := []struct {
		name   string
		spec   executor.Spec
		fields []string // the fields expected to be reported, sorted
	}{
		{"local ok", executor.Spec{Type: "local", Script: "echo hi"}, nil},
		{"local with env and timeout", executor.Spec{Type: "local", Script: "x", Timeout: duration.Duration(24 * time.Hour), Env: map[string]string{"FOO": "1", "_bar2": ""}}, nil},
		{"ssh ok", sshSpec(nil), nil},
		{"ssh ok with port and known_hosts", sshSpec(func(s *executor.Spec) { s.Port = 2222; s.KnownHosts = "# comment\n\n" + hostLine + "\n" }), nil},
		{"missing type and script", executor.Spec{}, []string{"script", "type"}},
		{"unknown type", executor.Spec{Type: "docker", Script: "x"}, []string{"type"}},
		{"blank script", executor.Spec{Type: "local", Script: "  \n"}, []string{"script"}},
		{"timeout too long", executor.Spec{Type: "local", Script: "x", Timeout: duration.Duration(25 * time.Hour)}, []string{"timeout"}},
		{"negative timeout", executor.Spec{Type: "local", Script: "x", Timeout: -1}, []string{"timeout"}},
		{"bad env names", executor.Spec{Type: "local", Script: "x", Env: map[string]string{"1X": "", "A-B": "", "HERALD_HOST": "", "OK": "a\x00b"}}, []string{"env.1X", "env.A-B", "env.HERALD_HOST", "env.OK"}},
		{"ssh missing user and key", sshSpec(func(s *executor.Spec) { s.User = ""; s.PrivateKey = "" }), []string{"private_key", "user"}},
		{"ssh bad port", sshSpec(func(s *executor.Spec) { s.Port = 70000 }), []string{"port"}},
		{"ssh garbage key", sshSpec(func(s *executor.Spec) {
			s.PrivateKey = "-----BEGIN OPENSSH PRIVATE KEY-----\nTOPSECRET\n-----END OPENSSH PRIVATE KEY-----\n"
		}), []string{"private_key"}},
		{"ssh encrypted key", sshSpec(func(s *executor.Spec) { s.PrivateKey = locked }), []string{"private_key"}},
		{"ssh bad known_hosts", sshSpec(func(s *executor.Spec) { s.KnownHosts = hostLine + "\nnot a line\n" }), []string{"known_hosts"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			errs := executor.Validate(tt.spec)
			var got []string
			for _, e := range errs {
				got = append(got, e.Field)
				if strings.Contains(e.Message, "TOPSECRET") || (tt.spec.PrivateKey != "" && strings.Contains(e.Message, tt.spec.PrivateKey[40:60])) {
					t.Errorf("%s: message echoes the key: %s", e.Field, e.Message)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.fields) {
				t.Fatalf("fields = %v, want %v (%v)", got, tt.fields, errs)
			}
		})
	}
}

func TestValidateMessages(t *testing.T) {
	t.Parallel()
	errs := executor.Validate(executor.Spec{Type: "ssh", Script: "x", User: "u", PrivateKey: testKeyPEM(t, "pw"), KnownHosts: "h ssh-ed25519 AAAA\n"})
	msgs := map[string]string{}
	for _, e := range errs {
		msgs[e.Field] = e.Message
	}
	if !strings.Contains(msgs["private_key"], "passphrase") {
		t.Errorf("private_key: %q should mention the passphrase", msgs["private_key"])
	}
	if !strings.Contains(msgs["known_hosts"], "line 1") {
		t.Errorf("known_hosts: %q should name the line", msgs["known_hosts"])
	}
}

func TestWithDefaults(t *testing.T) {
	t.Parallel()
	got := executor.Spec{Type: "ssh"}.WithDefaults()
	if got.Timeout.D() != 10*time.Minute || got.Port != 22 {
		t.Fatalf("ssh defaults: timeout %s, port %d", got.Timeout, got.Port)
	}
	if got := (executor.Spec{Type: "local"}).WithDefaults(); got.Port != 0 {
		t.Fatalf("local got a port: %d", got.Port)
	}
	kept := executor.Spec{Type: "ssh", Timeout: duration.Duration(time.Second), Port: 2222}.WithDefaults()
	if kept.Timeout.D() != time.Second || kept.Port != 2222 {
		t.Fatalf("explicit values overwritten: %+v", kept)
	}
}

func TestTimeoutErrorMessage(t *testing.T) {
	t.Parallel()
	err := error(&executor.TimeoutError{After: executor.DefaultTimeout})
	if want := "timed out after 10m0s: raise the executor timeout or speed up the script"; err.Error() != want {
		t.Fatalf("got %q, want %q", err, want)
	}
}

func TestMergedEnvVarsWin(t *testing.T) {
	t.Parallel()
	env, err := executor.MergedEnv(
		executor.Spec{Env: map[string]string{"A": "spec", "B": "spec"}},
		executor.Run{Vars: map[string]string{"B": "run", "HERALD_HOST": "h1"}})
	if err != nil {
		t.Fatal(err)
	}
	if env["A"] != "spec" || env["B"] != "run" || env["HERALD_HOST"] != "h1" || len(env) != 3 {
		t.Fatalf("env = %v", env)
	}
	if _, err := executor.MergedEnv(executor.Spec{Env: map[string]string{"X;rm -rf /": ""}}, executor.Run{}); err == nil {
		t.Fatal("an invalid name was accepted")
	}
}

func TestByType(t *testing.T) {
	t.Parallel()
	called := ""
	b := executor.ByType{"local": fakeExec(func() { called = "local" })}
	if _, err := b.Run(context.Background(), executor.Spec{Type: "local"}, executor.Run{}); err != nil || called != "local" {
		t.Fatalf("dispatch: called %q, err %v", called, err)
	}
	res, err := b.Run(context.Background(), executor.Spec{Type: "ssh"}, executor.Run{})
	if err == nil || res.ExitCode != -1 {
		t.Fatalf("unknown type: %v, %v", res, err)
	}
}

type fakeExec func()

func (f fakeExec) Run(context.Context, executor.Spec, executor.Run) (executor.Result, error) {
	f()
	return executor.Result{}, nil
}

func testKeyPEM(t *testing.T, passphrase string) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var block *pem.Block
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(block))
}

func mustSigner(t *testing.T, key string) ssh.Signer {
	t.Helper()
	s, err := ssh.ParsePrivateKey([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
