package testsupport

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gliderssh "github.com/gliderlabs/ssh"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHServer is an in-process SSH server for executor tests. It really runs
// the commands it receives with /bin/sh -c, so tests see real exit codes,
// output and process lifetimes, and it behaves like sshd where the executor
// depends on it: public-key auth only, exit-status, and a KILL signal
// killing the command's whole process group (as OpenSSH's killpg does).
type SSHServer struct {
	srv        *gliderssh.Server
	addr       string
	hostKey    ssh.Signer
	clientPEM  string
	clientKey  ssh.PublicKey
	conns      atomic.Int64
	mu         sync.Mutex
	commands   []string
	users      []string
	sshWaitOut time.Duration
}

// NewSSHServer starts a server on 127.0.0.1:0 with fresh host and client
// keys; it is closed, and its running commands killed, when t ends.
func NewSSHServer(t testing.TB) *SSHServer {
	t.Helper()
	hostSigner := sshNewSigner(t)
	_, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("fakessh: client key: %v", err)
	}
	block, err := ssh.MarshalPrivateKey(clientPriv, "herald test key")
	if err != nil {
		t.Fatalf("fakessh: marshal client key: %v", err)
	}
	clientSigner, err := ssh.NewSignerFromKey(clientPriv)
	if err != nil {
		t.Fatalf("fakessh: client signer: %v", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fakessh: listen: %v", err)
	}
	s := &SSHServer{
		addr:       ln.Addr().String(),
		hostKey:    hostSigner,
		clientPEM:  string(pem.EncodeToMemory(block)),
		clientKey:  clientSigner.PublicKey(),
		sshWaitOut: time.Second,
	}
	s.srv = &gliderssh.Server{
		Handler: s.sshHandle,
		PublicKeyHandler: func(_ gliderssh.Context, key gliderssh.PublicKey) bool {
			return gliderssh.KeysEqual(key, s.clientKey)
		},
		ConnCallback: func(_ gliderssh.Context, c net.Conn) net.Conn {
			s.conns.Add(1)
			return c
		},
	}
	s.srv.AddHostKey(hostSigner)
	go func() { _ = s.srv.Serve(ln) }()
	t.Cleanup(func() { _ = s.srv.Close() })
	return s
}

func sshNewSigner(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("fakessh: host key: %v", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatalf("fakessh: host signer: %v", err)
	}
	return signer
}

// Addr is host:port.
func (s *SSHServer) Addr() string { return s.addr }

// Host is the IP the server listens on.
func (s *SSHServer) Host() string {
	h, _, _ := net.SplitHostPort(s.addr)
	return h
}

// Port is the port the server listens on.
func (s *SSHServer) Port() int {
	_, p, _ := net.SplitHostPort(s.addr)
	n, _ := strconv.Atoi(p)
	return n
}

// PrivateKeyPEM is the OpenSSH private key the server accepts.
func (s *SSHServer) PrivateKeyPEM() string { return s.clientPEM }

// HostPublicKey is the server's host key.
func (s *SSHServer) HostPublicKey() ssh.PublicKey { return s.hostKey.PublicKey() }

// KnownHosts is a known_hosts line for Addr, in the `[host]:port` form.
func (s *SSHServer) KnownHosts() string {
	return knownhosts.Line([]string{s.addr}, s.hostKey.PublicKey())
}

// Commands are the commands received so far, in order.
func (s *SSHServer) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commands...)
}

// Users are the user names of the sessions so far, in order.
func (s *SSHServer) Users() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.users...)
}

// Connections counts TCP connections accepted, including those whose
// handshake or authentication failed.
func (s *SSHServer) Connections() int { return int(s.conns.Load()) }

func (s *SSHServer) sshHandle(sess gliderssh.Session) {
	s.mu.Lock()
	s.commands = append(s.commands, sess.RawCommand())
	s.users = append(s.users, sess.User())
	s.mu.Unlock()

	// Like a fresh login: the test process's environment is not inherited.
	cmd := exec.Command("/bin/sh", "-c", sess.RawCommand())
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()}
	cmd.Stdout = sess
	cmd.Stderr = sess.Stderr()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = s.sshWaitOut
	if err := cmd.Start(); err != nil {
		_, _ = sess.Stderr().Write([]byte("fakessh: " + err.Error() + "\n"))
		_ = sess.Exit(127)
		return
	}
	pgid := cmd.Process.Pid
	kill := func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) }

	// Signals are set once and never reset: gliderlabs/ssh replays
	// signals that came before this call from a goroutine that reads the
	// session's channel without its lock, so a later Signals(nil) races
	// with it. The buffer takes what comes after the script ended.
	signals := make(chan gliderssh.Signal, 8)
	sess.Signals(signals)
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()

	var err error
wait:
	for {
		select {
		case err = <-waited:
			break wait
		case sig := <-signals:
			if sig == gliderssh.SIGKILL {
				kill()
			}
		case <-sess.Context().Done():
			// The client went away. Real sshd leaves a non-pty command
			// running; the fake kills it so tests cannot leak processes.
			kill()
			<-waited
			return
		}
	}
	code := 0
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
	} else if err != nil && !errors.Is(err, exec.ErrWaitDelay) {
		code = 255
	}
	_ = sess.Exit(code)
}
