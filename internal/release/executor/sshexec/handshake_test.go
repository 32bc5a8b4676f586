package sshexec

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/herald-release/herald/internal/egress"
	"github.com/herald-release/herald/internal/release/executor"
	"github.com/herald-release/herald/internal/testsupport"
)

// A port that accepts TCP but never speaks SSH must fail on its own limit,
// not after the script timeout.
func TestSilentServerFailsTheHandshake(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	srv := testsupport.NewSSHServer(t) // only for a valid key
	r := &runner{dial: egress.AllowAll().DialContext, handshakeTimeout: 200 * time.Millisecond}
	res, err := r.Run(context.Background(), executor.Spec{
		Type: executor.TypeSSH, Script: "true", User: "deploy", PrivateKey: srv.PrivateKeyPEM(),
	}, executor.Run{Host: "h1", Address: ln.Addr().String()})
	if res.ExitCode != -1 || err == nil || !strings.Contains(err.Error(), "did not finish within 200ms") {
		t.Fatalf("Run = %v, %v", res, err)
	}
}

func TestTargetAddress(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		addr, want string
		port       int
	}{
		{"web1", "web1:22", 22},
		{"web1", "web1:2222", 2222},
		{"web1:2200", "web1:2200", 22},
		{"10.0.0.1", "10.0.0.1:22", 22},
		{"fd00::1", "[fd00::1]:22", 22},
		{"[fd00::1]", "[fd00::1]:2222", 2222},
		{"[fd00::1]:2200", "[fd00::1]:2200", 22},
	} {
		got, err := targetAddress(executor.Run{Address: tt.addr}, tt.port)
		if err != nil || got != tt.want {
			t.Errorf("targetAddress(%q, %d) = %q, %v; want %q", tt.addr, tt.port, got, err, tt.want)
		}
	}
	if _, err := targetAddress(executor.Run{Host: "h", Address: "web1:99999"}, 22); err == nil {
		t.Error("an out-of-range port was accepted")
	}
}
