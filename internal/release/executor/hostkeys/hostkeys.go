// Package hostkeys checks SSH host keys against known_hosts text held in
// memory. golang.org/x/crypto/ssh/knownhosts only reads files, and Herald
// keeps known_hosts in the (encrypted) executor config, so writing it to a
// temporary file for every run would be both slow and one more place for
// config to leak. Matching follows sshd(8): comma-separated patterns with
// `*`/`?` wildcards, `!` negation, hashed `|1|salt|hash` names, `[host]:port`
// for ports other than 22, and `@revoked` lines.
package hostkeys

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"path"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

type entry struct {
	revoked  bool
	patterns []string
	key      ssh.PublicKey
}

// DB is parsed known_hosts text.
type DB struct {
	entries []entry
}

// Parse reads known_hosts text. Errors name the line but never repeat it:
// the text is the user's, and a garbled paste might hold something private.
func Parse(text string) (*DB, error) {
	db := &DB{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		marker, hosts, key, _, _, err := ssh.ParseKnownHosts([]byte(line))
		if err != nil {
			if errors.Is(err, io.EOF) {
				continue
			}
			return nil, fmt.Errorf("line %d is not a known_hosts entry: expected `host[,host…] key-type base64-key`, as printed by ssh-keyscan", i+1)
		}
		switch marker {
		case "":
		case "revoked":
		case "cert-authority":
			return nil, fmt.Errorf("line %d: @cert-authority entries are not supported; list the host keys themselves", i+1)
		default:
			return nil, fmt.Errorf("line %d: unknown marker @%s", i+1, marker)
		}
		for _, h := range hosts {
			if strings.HasPrefix(h, "|") {
				if _, _, err := decodeHashed(h); err != nil {
					return nil, fmt.Errorf("line %d: hashed host name is malformed: %v", i+1, err)
				}
			}
		}
		db.entries = append(db.entries, entry{revoked: marker == "revoked", patterns: hosts, key: key})
	}
	return db, nil
}

// Error is why a host key was refused. The run fails without sending
// anything to the host, so the message says what to fix.
type Error struct {
	Address string
	Offered ssh.PublicKey
	// Listed is false when known_hosts has no line for the address at all
	// (as opposed to a line with another key: a possible attack).
	Listed  bool
	Revoked bool
}

func (e *Error) Error() string {
	offered := e.Offered.Type() + " " + ssh.FingerprintSHA256(e.Offered)
	switch {
	case e.Revoked:
		return fmt.Sprintf("the host key of %s (%s) is marked @revoked in known_hosts", e.Address, offered)
	case !e.Listed:
		return fmt.Sprintf("%s is not listed in known_hosts (the server offered %s): add a line for %s, e.g. from `ssh-keyscan`, or leave known_hosts empty to accept any host key",
			e.Address, offered, knownhosts.Normalize(e.Address))
	default:
		return fmt.Sprintf("the host key of %s does not match known_hosts (the server offered %s): if the host was reinstalled, update known_hosts; otherwise the connection may be intercepted",
			e.Address, offered)
	}
}

// Callback returns a HostKeyCallback for ssh.ClientConfig. The hostname it
// receives is the address as dialed (host:port), which is what known_hosts
// lines name; the resolved IP is not consulted, like OpenSSH's default
// CheckHostIP=no.
func (db *DB) Callback() ssh.HostKeyCallback {
	return func(hostname string, _ net.Addr, key ssh.PublicKey) error {
		return db.Check(hostname, key)
	}
}

// Check accepts key for address (host:port) or returns an *Error.
func (db *DB) Check(address string, key ssh.PublicKey) error {
	plain := key
	if cert, ok := key.(*ssh.Certificate); ok {
		// Without @cert-authority support a certificate is trusted only
		// through its listed key.
		plain = cert.Key
	}
	name := strings.ToLower(knownhosts.Normalize(address))
	listed := false
	for _, e := range db.entries {
		if e.revoked {
			if keysEqual(e.key, plain) {
				return &Error{Address: address, Offered: key, Listed: true, Revoked: true}
			}
			continue
		}
		if !matches(e.patterns, name) {
			continue
		}
		listed = true
		if keysEqual(e.key, plain) {
			return nil
		}
	}
	return &Error{Address: address, Offered: key, Listed: listed}
}

// Algorithms lists the host key algorithms known for address, to offer in
// ssh.ClientConfig.HostKeyAlgorithms. Without it a server with several host
// keys may present a type that is not listed, and a correct known_hosts
// would look like a mismatch.
func (db *DB) Algorithms(address string) []string {
	name := strings.ToLower(knownhosts.Normalize(address))
	var algos []string
	seen := map[string]bool{}
	add := func(a string) {
		if !seen[a] {
			seen[a] = true
			algos = append(algos, a)
		}
	}
	for _, e := range db.entries {
		if e.revoked || !matches(e.patterns, name) {
			continue
		}
		if e.key.Type() == ssh.KeyAlgoRSA {
			// An RSA key signs with SHA-2 on modern servers; the key type
			// alone would force the deprecated ssh-rsa (SHA-1) signature.
			add(ssh.KeyAlgoRSASHA512)
			add(ssh.KeyAlgoRSASHA256)
		}
		add(e.key.Type())
	}
	return algos
}

func keysEqual(a, b ssh.PublicKey) bool {
	return bytes.Equal(a.Marshal(), b.Marshal())
}

// matches applies one line's patterns to a normalized name: some positive
// pattern must match and no negated one may.
func matches(patterns []string, name string) bool {
	ok := false
	for _, p := range patterns {
		negated := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(p, "!")
		if !matchOne(p, name) {
			continue
		}
		if negated {
			return false
		}
		ok = true
	}
	return ok
}

func matchOne(pattern, name string) bool {
	if strings.HasPrefix(pattern, "|") {
		salt, hash, err := decodeHashed(pattern)
		if err != nil {
			return false
		}
		mac := hmac.New(sha1.New, salt)
		mac.Write([]byte(name))
		return hmac.Equal(mac.Sum(nil), hash)
	}
	pattern = strings.ToLower(pattern)
	if !strings.ContainsAny(pattern, "*?") {
		return pattern == name
	}
	// path.Match's `*` and `?` are sshd's wildcards; its `[` classes are
	// escaped so that `[host]:port` stays literal.
	escaped := strings.NewReplacer("[", `\[`, "]", `\]`, `\`, `\\`).Replace(pattern)
	m, err := path.Match(escaped, name)
	return err == nil && m
}

// decodeHashed splits `|1|base64salt|base64hash`.
func decodeHashed(s string) (salt, hash []byte, err error) {
	parts := strings.Split(s, "|")
	if len(parts) != 4 || parts[0] != "" || parts[1] != "1" {
		return nil, nil, errors.New("expected |1|salt|hash")
	}
	if salt, err = base64.StdEncoding.DecodeString(parts[2]); err != nil {
		return nil, nil, errors.New("salt is not base64")
	}
	if hash, err = base64.StdEncoding.DecodeString(parts[3]); err != nil {
		return nil, nil, errors.New("hash is not base64")
	}
	return salt, hash, nil
}
