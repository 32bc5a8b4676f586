package testsupport

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math/big"
	"mime"
	"net"
	"net/mail"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// SMTP is a fake mail server (emersion/go-smtp) on 127.0.0.1 that records
// the messages it accepts. It speaks plain SMTP, STARTTLS or implicit TLS
// with a self-signed certificate (SMTPRootCAs trusts it), can require AUTH
// PLAIN, and can be scripted to refuse or stall at a given step.
type SMTP struct {
	srv    *smtp.Server
	addr   *net.TCPAddr
	mode   string
	user   string
	pass   string
	done   chan struct{} // closed at cleanup: stalled sessions let go
	served chan struct{} // closed when Serve returns

	mu      sync.Mutex
	msgs    []SMTPMessage
	auths   []SMTPAuthAttempt
	script  map[string][]smtpReply
	changed chan struct{} // closed and replaced on every new message
}

// SMTPMessage is one message the server accepted.
type SMTPMessage struct {
	From string   // MAIL FROM
	To   []string // RCPT TO, in order
	Data []byte   // the message as received (headers and body)
	TLS  bool     // the session was encrypted
	User string   // the authenticated user, if any
	At   time.Time
}

// SMTPAuthAttempt is one AUTH the server saw.
type SMTPAuthAttempt struct {
	User string
	OK   bool
	TLS  bool
}

// The modes of NewSMTP, named as the email channel's tls setting.
const (
	SMTPNoTLS    = "none"
	SMTPStartTLS = "starttls"
	SMTPTLS      = "tls"
)

// The steps a failure can be scripted at (FailNext, StallNext).
const (
	// SMTPStageConnect is the server's greeting: a failure there is what a
	// server at capacity sends (421) before closing.
	SMTPStageConnect = "connect"
	SMTPStageMail    = "MAIL"
	SMTPStageRcpt    = "RCPT"
	// SMTPStageData answers after the whole message was sent.
	SMTPStageData = "DATA"
)

type smtpReply struct {
	code  int
	msg   string
	stall bool
}

// SMTPOption configures NewSMTP.
type SMTPOption func(*SMTP)

// SMTPWithTLS sets the mode: SMTPNoTLS (the default), SMTPStartTLS or
// SMTPTLS. In STARTTLS mode, like a submission server, it refuses AUTH and
// MAIL until the client has started TLS.
func SMTPWithTLS(mode string) SMTPOption { return func(s *SMTP) { s.mode = mode } }

// SMTPWithAuth requires AUTH PLAIN with this user and password before
// MAIL.
func SMTPWithAuth(user, password string) SMTPOption {
	return func(s *SMTP) { s.user, s.pass = user, password }
}

// NewSMTP starts a fake mail server; it stops when t ends.
func NewSMTP(t testing.TB, opts ...SMTPOption) *SMTP {
	t.Helper()
	s := &SMTP{
		mode:    SMTPNoTLS,
		done:    make(chan struct{}),
		served:  make(chan struct{}),
		script:  map[string][]smtpReply{},
		changed: make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	cert, err := smtpCert()
	if err != nil {
		t.Fatalf("fake smtp: certificate: %v", err)
	}
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fake smtp: %v", err)
	}
	s.addr = ln.Addr().(*net.TCPAddr)

	s.srv = smtp.NewServer(smtp.BackendFunc(s.newSession))
	s.srv.Domain = "localhost"
	s.srv.ReadTimeout = 30 * time.Second
	s.srv.WriteTimeout = 30 * time.Second
	s.srv.MaxMessageBytes = 10 << 20
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	switch s.mode {
	case SMTPNoTLS:
		// Plain relays on port 25 take AUTH in the clear, if at all.
		s.srv.AllowInsecureAuth = true
	case SMTPStartTLS:
		s.srv.TLSConfig = tlsConfig
	case SMTPTLS:
		s.srv.TLSConfig = tlsConfig
		ln = tls.NewListener(ln, tlsConfig)
	default:
		ln.Close()
		t.Fatalf("fake smtp: unknown mode %q", s.mode)
	}
	go func() {
		defer close(s.served)
		_ = s.srv.Serve(&smtpListener{Listener: ln, srv: s})
	}()
	t.Cleanup(func() {
		close(s.done)
		_ = s.srv.Close()
		// Close only closes the listeners Serve has registered; when the
		// test ends before Serve got going, this is what stops it.
		_ = ln.Close()
		<-s.served
	})
	return s
}

// Host is the server's address, 127.0.0.1.
func (s *SMTP) Host() string { return s.addr.IP.String() }

// Port is the server's port.
func (s *SMTP) Port() int { return s.addr.Port }

// Addr is host:port.
func (s *SMTP) Addr() string { return net.JoinHostPort(s.Host(), strconv.Itoa(s.Port())) }

// Mode is the TLS mode the server was started with.
func (s *SMTP) Mode() string { return s.mode }

// FailNext makes the next time the server reaches stage answer code
// (4xx or 5xx) with msg, once per call.
func (s *SMTP) FailNext(stage string, code int, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script[stage] = append(s.script[stage], smtpReply{code: code, msg: msg})
}

// StallNext makes the next time the server reaches stage never answer,
// so the client's timeout is what ends the session.
func (s *SMTP) StallNext(stage string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script[stage] = append(s.script[stage], smtpReply{stall: true})
}

// Messages returns the messages accepted so far.
func (s *SMTP) Messages() []SMTPMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SMTPMessage(nil), s.msgs...)
}

// Auths returns the AUTH attempts seen so far.
func (s *SMTP) Auths() []SMTPAuthAttempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SMTPAuthAttempt(nil), s.auths...)
}

// WaitMessages waits until at least n messages were accepted and returns
// them; it fails the test after 10 seconds.
func (s *SMTP) WaitMessages(t testing.TB, n int) []SMTPMessage {
	t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		s.mu.Lock()
		if len(s.msgs) >= n {
			out := append([]SMTPMessage(nil), s.msgs...)
			s.mu.Unlock()
			return out
		}
		changed, got := s.changed, len(s.msgs)
		s.mu.Unlock()
		select {
		case <-changed:
		case <-timeout.C:
			t.Fatalf("fake smtp: %d messages after 10s, want %d", got, n)
		}
	}
}

// scripted returns the error scripted for stage, stalling first when
// asked to.
func (s *SMTP) scripted(stage string) error {
	s.mu.Lock()
	q := s.script[stage]
	if len(q) == 0 {
		s.mu.Unlock()
		return nil
	}
	r := q[0]
	s.script[stage] = q[1:]
	s.mu.Unlock()
	if r.stall {
		select {
		case <-s.done:
		case <-time.After(time.Minute):
		}
		return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "stalled"}
	}
	return &smtp.SMTPError{Code: r.code, EnhancedCode: smtp.EnhancedCode{r.code / 100, 0, 0}, Message: r.msg}
}

// smtpListener answers scripted greetings itself: go-smtp always greets
// with 220.
type smtpListener struct {
	net.Listener
	srv *SMTP
}

func (l *smtpListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		s := l.srv
		s.mu.Lock()
		q := s.script[SMTPStageConnect]
		if len(q) == 0 {
			s.mu.Unlock()
			return c, nil
		}
		r := q[0]
		s.script[SMTPStageConnect] = q[1:]
		s.mu.Unlock()
		go func() {
			defer c.Close()
			if r.stall {
				select {
				case <-s.done:
				case <-time.After(time.Minute):
				}
				return
			}
			_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			_, _ = io.WriteString(c, strconv.Itoa(r.code)+" "+r.msg+"\r\n")
		}()
	}
}

func (s *SMTP) newSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	sess := &smtpSession{srv: s, tls: isTLS}
	if s.user != "" {
		return &smtpAuthSession{sess}, nil
	}
	return sess, nil
}

// smtpSession is one client session; go-smtp starts a new one after
// STARTTLS, so tls is fixed for its life.
type smtpSession struct {
	srv    *SMTP
	tls    bool
	user   string
	authed bool
	from   string
	to     []string
}

var (
	smtpErrTLSFirst = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Must issue a STARTTLS command first"}
	smtpErrAuthReq  = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
)

func (x *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if x.srv.mode == SMTPStartTLS && !x.tls {
		return smtpErrTLSFirst
	}
	if x.srv.user != "" && !x.authed {
		return smtpErrAuthReq
	}
	if err := x.srv.scripted(SMTPStageMail); err != nil {
		return err
	}
	x.from = from
	return nil
}

func (x *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := x.srv.scripted(SMTPStageRcpt); err != nil {
		return err
	}
	x.to = append(x.to, to)
	return nil
}

func (x *smtpSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := x.srv.scripted(SMTPStageData); err != nil {
		return err
	}
	s := x.srv
	s.mu.Lock()
	s.msgs = append(s.msgs, SMTPMessage{
		From: x.from, To: append([]string(nil), x.to...), Data: data,
		TLS: x.tls, User: x.user, At: time.Now(),
	})
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	return nil
}

func (x *smtpSession) Reset() { x.from, x.to = "", nil }

func (x *smtpSession) Logout() error { return nil }

// smtpAuthSession offers AUTH PLAIN; a plain smtpSession offers no AUTH
// at all, like a relay that trusts its network.
type smtpAuthSession struct{ *smtpSession }

func (x *smtpAuthSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (x *smtpAuthSession) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(_, user, pass string) error {
		ok := user == x.srv.user && pass == x.srv.pass
		x.srv.mu.Lock()
		x.srv.auths = append(x.srv.auths, SMTPAuthAttempt{User: user, OK: ok, TLS: x.tls})
		x.srv.mu.Unlock()
		if !ok {
			return smtp.ErrAuthFailed
		}
		x.user, x.authed = user, true
		return nil
	}), nil
}

// Header returns a header of the message, decoded from RFC 2047 when it
// is encoded.
func (m SMTPMessage) Header(name string) string {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		return ""
	}
	v := msg.Header.Get(name)
	if dec, err := new(mime.WordDecoder).DecodeHeader(v); err == nil {
		return dec
	}
	return v
}

// Parse parses the message (headers and body) for closer checks.
func (m SMTPMessage) Parse() (*mail.Message, error) {
	return mail.ReadMessage(bytes.NewReader(m.Data))
}

var (
	smtpCertOnce sync.Once
	smtpCertVal  tls.Certificate
	smtpCertPool *x509.CertPool
	smtpCertErr  error
)

// SMTPRootCAs trusts the certificate of every fake SMTP server. There is
// one certificate per test binary, so that a client under test can be
// told to trust it once, before tests run in parallel.
func SMTPRootCAs() *x509.CertPool {
	if _, err := smtpCert(); err != nil {
		panic("fake smtp: certificate: " + err.Error())
	}
	return smtpCertPool
}

// smtpCert makes a self-signed certificate for 127.0.0.1, ::1 and
// localhost, once.
func smtpCert() (tls.Certificate, error) {
	smtpCertOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			smtpCertErr = err
			return
		}
		now := time.Now()
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(now.UnixNano()),
			Subject:               pkix.Name{CommonName: "herald fake smtp"},
			NotBefore:             now.Add(-time.Hour),
			NotAfter:              now.Add(7 * 24 * time.Hour),
			KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
			ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			BasicConstraintsValid: true,
			IsCA:                  true,
			IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
			DNSNames:              []string{"localhost"},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			smtpCertErr = err
			return
		}
		leaf, err := x509.ParseCertificate(der)
		if err != nil {
			smtpCertErr = err
			return
		}
		smtpCertVal = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
		smtpCertPool = x509.NewCertPool()
		smtpCertPool.AddCert(leaf)
	})
	if smtpCertErr != nil {
		return tls.Certificate{}, smtpCertErr
	}
	return smtpCertVal, nil
}
