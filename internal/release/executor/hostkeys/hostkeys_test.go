package hostkeys_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/herald-release/herald/internal/release/executor/hostkeys"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	key, other, revoked := newKey(t), newKey(t), newKey(t)
	line := func(hosts string, k ssh.PublicKey) string {
		return hosts + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
	}
	text := strings.Join([]string{
		"# a comment",
		"",
		line("plain.example.com,10.0.0.5", key),
		line("[alt.example.com]:2222", key),
		line(knownhosts.HashHostname("hashed.example.com"), key),
		line("*.web.example.com,!evil.web.example.com", key),
		line("evil.web.example.com", other),
		line("changed.example.com", other),
		"@revoked " + line("*", revoked),
		line("revoked.example.com", revoked),
	}, "\n")
	db, err := hostkeys.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr    string
		key     ssh.PublicKey
		listed  bool // when refused
		revoked bool
		ok      bool
	}{
		{addr: "plain.example.com:22", key: key, ok: true},
		{addr: "PLAIN.example.com:22", key: key, ok: true},
		{addr: "10.0.0.5:22", key: key, ok: true},
		{addr: "plain.example.com:2200", key: key}, // another port is another entry
		{addr: "alt.example.com:2222", key: key, ok: true},
		{addr: "alt.example.com:22", key: key},
		{addr: "hashed.example.com:22", key: key, ok: true},
		{addr: "a.web.example.com:22", key: key, ok: true},
		{addr: "evil.web.example.com:22", key: key, listed: true},
		{addr: "evil.web.example.com:22", key: other, ok: true},
		{addr: "changed.example.com:22", key: key, listed: true},
		{addr: "unknown.example.com:22", key: key},
		{addr: "revoked.example.com:22", key: revoked, listed: true, revoked: true},
	}
	for _, tt := range tests {
		err := db.Check(tt.addr, tt.key)
		if tt.ok {
			if err != nil {
				t.Errorf("%s: %v", tt.addr, err)
			}
			continue
		}
		var he *hostkeys.Error
		if !errors.As(err, &he) {
			t.Errorf("%s: got %v, want a *hostkeys.Error", tt.addr, err)
			continue
		}
		if he.Listed != tt.listed || he.Revoked != tt.revoked {
			t.Errorf("%s: listed=%v revoked=%v, want %v %v (%v)", tt.addr, he.Listed, he.Revoked, tt.listed, tt.revoked, err)
		}
	}
}

func TestErrorMessages(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	msg := (&hostkeys.Error{Address: "h:2222", Offered: key, Listed: true}).Error()
	if !strings.Contains(msg, "does not match known_hosts") || !strings.Contains(msg, ssh.FingerprintSHA256(key)) {
		t.Errorf("mismatch: %s", msg)
	}
	msg = (&hostkeys.Error{Address: "h:2222", Offered: key}).Error()
	if !strings.Contains(msg, "not listed") || !strings.Contains(msg, "[h]:2222") {
		t.Errorf("not listed: %s", msg)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	good := "h " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(newKey(t))))
	for _, tt := range []struct{ text, want string }{
		{good + "\nsecret-looking garbage\n", "line 2"},
		{"h ssh-ed25519 AAAAnotbase64!!", "line 1"},
		{"@cert-authority *.example.com " + good[2:], "not supported"},
		{"|1|bad|hash " + good[2:], "hashed"},
	} {
		_, err := hostkeys.Parse(tt.text)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) = %v, want it to mention %q", tt.text, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "garbage") {
			t.Errorf("error repeats the input: %v", err)
		}
	}
}

func TestAlgorithms(t *testing.T) {
	t.Parallel()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaPub, err := ssh.NewPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	edPub := newKey(t)
	text := "[h]:2222 " + string(ssh.MarshalAuthorizedKey(rsaPub)) + "[h]:2222 " + string(ssh.MarshalAuthorizedKey(edPub))
	db, err := hostkeys.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	got := db.Algorithms("h:2222")
	want := []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA, ssh.KeyAlgoED25519}
	if !slices.Equal(got, want) {
		t.Fatalf("Algorithms = %v, want %v", got, want)
	}
	if got := db.Algorithms("other:22"); got != nil {
		t.Fatalf("unlisted host: %v", got)
	}
}

func newKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
