// Package sshexec runs release scripts on a host over SSH with key
// authentication.
//
// Host keys: when the spec has known_hosts, the server's key must be listed
// there for the address dialed. When known_hosts is empty, any host key is
// accepted: the connection is encrypted but not protected against a
// machine-in-the-middle. That default keeps first setup simple (hosts are
// often re-imaged); set known_hosts (ssh-keyscan output) for production.
package sshexec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/herald-release/herald/internal/egress"
	"github.com/herald-release/herald/internal/release/executor"
	"github.com/herald-release/herald/internal/release/executor/hostkeys"
)

// handshakeTimeout bounds the SSH handshake on its own: a port that accepts
// TCP but never speaks SSH should fail in seconds, not after the script
// timeout.
const handshakeTimeout = 30 * time.Second

// DialFunc opens the TCP connection; Herald passes its egress-checked dialer.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

type runner struct {
	dial             DialFunc
	handshakeTimeout time.Duration
}

// New returns the ssh executor. Every connection goes through dial, so the
// egress policy (CONTRACT §1) applies to host addresses too.
func New(dial func(ctx context.Context, network, addr string) (net.Conn, error)) executor.Executor {
	return &runner{dial: dial, handshakeTimeout: handshakeTimeout}
}

// Run implements executor.Executor. One connection per run: runs are
// minutes apart and connection reuse would tie hosts' failures together.
func (r *runner) Run(ctx context.Context, spec executor.Spec, run executor.Run) (executor.Result, error) {
	spec = spec.WithDefaults()
	fail := executor.Result{ExitCode: -1}

	command, err := buildCommand(spec, run)
	if err != nil {
		return fail, err
	}
	addr, err := targetAddress(run, spec.Port)
	if err != nil {
		return fail, err
	}
	signer, err := ssh.ParsePrivateKey([]byte(spec.PrivateKey))
	if err != nil {
		return fail, fmt.Errorf("ssh: private_key %v", executor.CheckPrivateKey(spec.PrivateKey))
	}
	config := &ssh.ClientConfig{
		User:            spec.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), // see the package comment
	}
	if spec.KnownHosts != "" {
		db, err := hostkeys.Parse(spec.KnownHosts)
		if err != nil {
			return fail, fmt.Errorf("ssh: known_hosts: %v", err)
		}
		config.HostKeyCallback = db.Callback()
		config.HostKeyAlgorithms = db.Algorithms(addr)
	}

	timeout := spec.Timeout.D()
	runCtx, cancel := context.WithTimeoutCause(ctx, timeout, &executor.TimeoutError{After: timeout})
	defer cancel()
	stopped := func() error {
		var te *executor.TimeoutError
		if errors.As(context.Cause(runCtx), &te) {
			return te
		}
		return executor.Cancelled(runCtx)
	}

	conn, err := r.dial(runCtx, "tcp", addr)
	if err != nil {
		if runCtx.Err() != nil && !egress.IsRefused(err) {
			return fail, stopped()
		}
		return fail, dialError(addr, err)
	}
	// Closing the connection is the one way to interrupt the handshake and
	// a running session alike when the run is stopped.
	stopWatch := context.AfterFunc(runCtx, func() { conn.Close() })
	defer stopWatch()
	defer conn.Close()

	_ = conn.SetDeadline(time.Now().Add(r.handshakeTimeout))
	sshConn, chans, reqs, err := ssh.NewClientConn(conn, addr, config)
	if err != nil {
		if runCtx.Err() != nil {
			return fail, stopped()
		}
		return fail, handshakeError(addr, spec.User, signer, r.handshakeTimeout, err)
	}
	_ = conn.SetDeadline(time.Time{})
	client := ssh.NewClient(sshConn, chans, reqs)
	defer client.Close()

	session, err := client.NewSession()
	if err != nil {
		if runCtx.Err() != nil {
			return fail, stopped()
		}
		return fail, fmt.Errorf("ssh: %s accepted the login but refused a session: %v: check sshd's MaxSessions and the user's shell", addr, err)
	}
	defer session.Close()
	out := &lockedWriter{w: run.Output}
	if run.Output == nil {
		out.w = io.Discard
	}
	// x/crypto copies stdout and stderr in two goroutines; one lock keeps
	// writes to Output serialized.
	session.Stdout = out
	session.Stderr = out

	if err := session.Start(command); err != nil {
		if runCtx.Err() != nil {
			return fail, stopped()
		}
		return fail, fmt.Errorf("ssh: starting the script on %s: %v", addr, err)
	}
	done := make(chan error, 1)
	go func() { done <- session.Wait() }()

	select {
	case err := <-done:
		return exitResult(addr, err)
	case <-runCtx.Done():
		select {
		case err := <-done:
			// Finished in the same instant: the exit status is the truth.
			return exitResult(addr, err)
		default:
		}
		// Recent OpenSSH answers a KILL request with killpg on the command's
		// process group; older or other servers ignore it, so the connection
		// is closed too. Closing alone does not stop a non-pty command: it
		// dies only on its next write (SIGPIPE).
		_ = session.Signal(ssh.SIGKILL)
		_ = session.Close()
		_ = client.Close()
		// Wait for the copiers so nothing writes to Output after Run returns.
		<-done
		return fail, stopped()
	}
}

func exitResult(addr string, err error) (executor.Result, error) {
	var exitErr *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case err == nil:
		return executor.Result{ExitCode: 0}, nil
	case errors.As(err, &exitErr):
		if sig := exitErr.Signal(); sig != "" {
			return executor.Result{ExitCode: -1}, fmt.Errorf("ssh: the script on %s was killed by signal %s", addr, sig)
		}
		return executor.Result{ExitCode: exitErr.ExitStatus()}, nil
	case errors.As(err, &missing):
		return executor.Result{ExitCode: -1}, fmt.Errorf("ssh: the session on %s ended without an exit status: the script or its shell was killed, or sshd dropped it; check the host's logs", addr)
	default:
		return executor.Result{ExitCode: -1}, fmt.Errorf("ssh: the connection to %s broke while the script ran: %v; the script may still be running there", addr, err)
	}
}

// buildCommand puts the variables in front of the script as exports. SSH's
// own env requests are refused by sshd unless AcceptEnv lists each name,
// which no one configures for HERALD_*.
func buildCommand(spec executor.Spec, run executor.Run) (string, error) {
	vars, err := executor.MergedEnv(spec, run)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		b.WriteString("export ")
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(shellQuote(vars[k]))
		b.WriteString("; ")
	}
	if b.Len() > 0 {
		// The script starts on its own line so that its first line parses
		// exactly as written.
		b.WriteByte('\n')
	}
	b.WriteString(spec.Script)
	return b.String(), nil
}

// shellQuote quotes s for any POSIX shell: inside single quotes nothing is
// special except the quote itself, which is closed, escaped and reopened.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// targetAddress is run.Address with the spec's port when it has none.
func targetAddress(run executor.Run, port int) (string, error) {
	a := strings.TrimSpace(run.Address)
	if a == "" {
		return "", fmt.Errorf("ssh: host %q has no address: set its address to a host name or IP", run.Host)
	}
	if host, p, err := net.SplitHostPort(a); err == nil {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("ssh: host %q address %q has an invalid port", run.Host, a)
		}
		return net.JoinHostPort(host, p), nil
	}
	// No port (or a bare IPv6 address, which SplitHostPort refuses).
	return net.JoinHostPort(strings.Trim(a, "[]"), strconv.Itoa(port)), nil
}

func dialError(addr string, err error) error {
	if egress.IsRefused(err) {
		return fmt.Errorf("ssh: connecting to %s: %w", addr, err)
	}
	return fmt.Errorf("ssh: dial %s: %w: check the host address and port, that sshd is running and that a firewall lets Herald through", addr, err)
}

func handshakeError(addr, user string, signer ssh.Signer, limit time.Duration, err error) error {
	var hk *hostkeys.Error
	var ne net.Error
	switch {
	case errors.As(err, &hk):
		return fmt.Errorf("ssh: host key check failed: %w", hk)
	case strings.Contains(err.Error(), "unable to authenticate"):
		// The fingerprint lets the user find which public key to install
		// without Herald ever showing the private key.
		return fmt.Errorf("ssh: %s refused the key for user %q: add the public key of private_key (%s %s) to ~%s/.ssh/authorized_keys on the host",
			addr, user, signer.PublicKey().Type(), ssh.FingerprintSHA256(signer.PublicKey()), user)
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("ssh: handshake with %s did not finish within %s: check that the port is an SSH server", addr, limit)
	default:
		return fmt.Errorf("ssh: handshake with %s failed: %v: check that the port is an SSH server and that it supports modern key exchange", addr, err)
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
