package email

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/mail"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/herald-release/herald/internal/egress"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify/channel"
)

// SendTimeout bounds one attempt, connection to QUIT (an earlier deadline
// of the caller's wins): a server that stops answering must not hold a
// delivery worker.
const SendTimeout = 30 * time.Second

// to is who gets ev: the fixed addresses and the users of recipients
// (task_creator, plan_manager), each address once.
func (s *sender) to(ctx context.Context, ev *event.Envelope) ([]*mail.Address, error) {
	to := slices.Clone(s.cfg.to)
	people, err := channel.ResolveRecipients(ctx, s.deps, "email", ev, s.cfg.recipients)
	if err != nil {
		return nil, err
	}
	for _, p := range people {
		a, err := parseAddress(p.Email)
		if err != nil {
			return nil, channel.Permanent("email: recipients: the email of user %s is not a mail address Herald can send to: fix it under Users", p.ID)
		}
		a.Name = p.Name
		if !slices.ContainsFunc(to, func(b *mail.Address) bool { return strings.EqualFold(b.Address, a.Address) }) {
			to = append(to, a)
		}
	}
	if len(to) == 0 {
		return nil, channel.NoRecipients("email", ev, s.cfg.recipients)
	}
	return to, nil
}

// compose builds the message for ev and what history records of it.
func (s *sender) compose(ev *event.Envelope, to []*mail.Address) (*gomail.Msg, channel.Request) {
	lang := s.cfg.look.Lang
	sum := s.cfg.look.Summarize(ev, nil)
	text := renderText(sum, lang)
	msgID := messageID(ev.ID, s.cfg.from.Address)
	rec := channel.Request{
		Method: "SMTP",
		URL:    "smtp://" + s.addr(),
		Headers: map[string]string{
			"From":       formatAddr(s.cfg.from),
			"To":         joinAddrs(to),
			"Subject":    sum.Title,
			"Message-ID": "<" + msgID + ">",
		},
		Body: text,
	}

	m := gomail.NewMsg()
	m.FromMailAddress(s.cfg.from)
	m.ToMailAddress(to...)
	m.Subject(sum.Title)
	// Derived from the event id: a retry that reaches a mailbox twice (the
	// first attempt was delivered but its answer lost) is recognisable,
	// and clients that thread or deduplicate by Message-ID do so.
	m.SetMessageIDWithValue(msgID)
	m.SetDateWithValue(channel.NowFunc(s.deps)())
	m.SetUserAgent(channel.UserAgent(s.deps))
	// RFC 3834: no vacation replies to a robot.
	m.SetGenHeader("Auto-Submitted", "auto-generated")
	// The same routing headers as a custom callback, for mail filters.
	m.SetGenHeader("X-Herald-Event", ev.ObjectKind)
	m.SetGenHeader("X-Herald-Action", ev.EventType)
	if ev.Project != nil && ev.Project.ID != "" {
		m.SetGenHeader("X-Herald-Project", ev.Project.ID)
	}
	m.SetBodyString(gomail.TypeTextPlain, text)
	m.AddAlternativeString(gomail.TypeTextHTML, renderHTML(sum, lang))
	return m, rec
}

// Preview implements channel.Previewer: the envelope and the text part.
func (s *sender) Preview(ctx context.Context, ev *event.Envelope) (channel.Request, error) {
	to, err := s.to(ctx, ev)
	if err != nil {
		return channel.Request{Method: "SMTP", URL: "smtp://" + s.addr()}, err
	}
	_, rec := s.compose(ev, to)
	return rec, nil
}

func (s *sender) Send(ctx context.Context, ev *event.Envelope) (channel.Attempt, error) {
	to, err := s.to(ctx, ev)
	if err != nil {
		return channel.Attempt{Request: channel.Request{Method: "SMTP", URL: "smtp://" + s.addr()}}, err
	}
	m, rec := s.compose(ev, to)
	att := channel.Attempt{Request: rec}

	ctx, cancel := context.WithTimeout(ctx, SendTimeout)
	defer cancel()
	err = s.deliver(ctx, m)
	if err != nil {
		ce := s.classify(ctx, err)
		if code, ok := smtpCode(err); ok {
			att.StatusCode = code
		}
		att.Response = ce.Error()
		return att, ce
	}
	// StatusCode is the SMTP reply here; the server's last words usually
	// carry its queue id, which is what a mail admin asks for.
	att.StatusCode = 250
	att.Response = channel.Truncate(m.ServerResponse(), channel.MaxResponse)
	return att, nil
}

// deliver runs one SMTP session. Connections are dialled here rather than
// by go-mail so that they go through the egress policy, and so that the
// context can cut a stalled session short: go-mail only uses it to dial.
func (s *sender) deliver(ctx context.Context, m *gomail.Msg) error {
	deadline, _ := ctx.Deadline()
	tlsConfig := &tls.Config{ServerName: s.cfg.host, RootCAs: s.roots, MinVersion: tls.VersionTLS12}

	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	closeAll := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	}
	dial := dialer(s.deps.HTTP)
	// go-mail joins host and port with a bare ":", which an IPv6 address
	// does not survive; the address is ours to build.
	dialTLS := func(ctx context.Context, network, _ string) (net.Conn, error) {
		conn, err := dial(ctx, network, s.addr())
		if err != nil {
			return nil, err
		}
		mu.Lock()
		conns = append(conns, conn)
		mu.Unlock()
		if s.cfg.tls != TLSImplicit {
			return conn, nil
		}
		tc := tls.Client(conn, tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, err
		}
		return tc, nil
	}

	opts := []gomail.Option{
		gomail.WithPort(s.cfg.port),
		gomail.WithTimeout(max(time.Until(deadline), time.Millisecond)),
		gomail.WithTLSConfig(tlsConfig),
		gomail.WithDialContextFunc(dialTLS),
	}
	switch s.cfg.tls {
	case TLSStartTLS:
		// Mandatory: a server that stops offering STARTTLS (or a network
		// that strips it) must not get the password in the clear.
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL()) // the handshake is dialTLS's
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if s.cfg.username != "" {
		opts = append(opts, gomail.WithUsername(s.cfg.username), gomail.WithPassword(s.cfg.password),
			gomail.WithOpportunisticSMTPAuth(authMechs(s.cfg.tls)...))
	}
	client, err := gomail.NewClient(s.cfg.host, opts...)
	if err != nil {
		return err
	}

	stop := context.AfterFunc(ctx, closeAll)
	defer stop()
	// go-mail leaves the connection open when the greeting, STARTTLS or
	// AUTH fails; closing here covers every path.
	defer closeAll()
	return client.DialAndSendWithContext(ctx, m)
}

// authMechs lists the mechanisms to use, strongest first. Over a plain
// connection PLAIN and LOGIN are only used because the user chose "none":
// the relay is theirs to trust.
func authMechs(mode string) []gomail.SMTPAuthType {
	if mode == TLSNone {
		return []gomail.SMTPAuthType{gomail.SMTPAuthSCRAMSHA256, gomail.SMTPAuthSCRAMSHA1, gomail.SMTPAuthCramMD5,
			gomail.SMTPAuthPlainNoEnc, gomail.SMTPAuthLoginNoEnc}
	}
	return []gomail.SMTPAuthType{gomail.SMTPAuthSCRAMSHA256, gomail.SMTPAuthSCRAMSHA1, gomail.SMTPAuthCramMD5,
		gomail.SMTPAuthPlain, gomail.SMTPAuthLogin}
}

// dialer returns the egress-checked dial function of Herald's HTTP
// client. Deps has no dialer of its own; borrowing the transport's keeps
// SMTP from being a way around the egress policy. Without one, the
// default policy applies, never none.
func dialer(c *http.Client) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if t, ok := channel.ClientOrDefault(c).Transport.(*http.Transport); ok && t.DialContext != nil {
		return t.DialContext
	}
	p, _ := egress.New(nil)
	return p.DialContext
}

func (s *sender) addr() string { return net.JoinHostPort(s.cfg.host, strconv.Itoa(s.cfg.port)) }

func joinAddrs(to []*mail.Address) string {
	parts := make([]string, len(to))
	for i, a := range to {
		parts[i] = formatAddr(a)
	}
	return strings.Join(parts, ", ")
}

// formatAddr writes an address as people do: bare, or with its name.
func formatAddr(a *mail.Address) string {
	if a.Name == "" {
		return a.Address
	}
	return a.String()
}

// messageID is "herald.<event id>@<sender's domain>"; an id with
// characters a msg-id cannot hold is hashed instead.
func messageID(eventID, from string) string {
	_, domain, _ := strings.Cut(from, "@")
	if domain == "" {
		domain = "herald.invalid"
	}
	local := eventID
	for i := 0; i < len(local); i++ {
		c := local[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			sum := sha256.Sum256([]byte(eventID))
			local = hex.EncodeToString(sum[:16])
			break
		}
	}
	if local == "" {
		local = "empty"
	}
	return "herald." + local + "@" + domain
}

// smtpCode finds the server's reply code in err, if it got that far.
func smtpCode(err error) (int, bool) {
	var se *gomail.SendError
	if errors.As(err, &se) && se.ErrorCode() != 0 {
		return se.ErrorCode(), true
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code, true
	}
	return 0, false
}

// classify decides whether a failed session is worth retrying and says
// what to do about it. 4xx replies and network failures are "later";
// 5xx replies and TLS or configuration mistakes are "never". Nothing here
// may carry the password: it is cut out of whatever the server said.
func (s *sender) classify(ctx context.Context, err error) *channel.Error {
	where := "smtp://" + s.addr()
	said := s.redact(oneLine(channel.Truncate(err.Error(), 300)))
	if ctx.Err() != nil {
		// Closing the connection on the deadline shows up as "use of
		// closed connection"; the deadline is the real cause.
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return channel.Temporary(0, "email: %s: no answer in time (timeout); will retry", where)
		}
		return channel.Temporary(0, "email: %s: cancelled: %s", where, said)
	}
	if egress.IsRefused(err) {
		return channel.Permanent("email: %s: %s", where, said)
	}

	if code, ok := smtpCode(err); ok {
		hint := codeHint(code, said, s.cfg.tls)
		e := &channel.Error{Code: strconv.Itoa(code)}
		if code >= 400 && code < 500 {
			e.Retry = true
			e.Err = fmt.Errorf("email: %s answered: %s; will retry", where, said)
		} else {
			e.Err = fmt.Errorf("email: %s refused: %s%s", where, said, hint)
		}
		return e
	}

	var (
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		certErr   x509.CertificateInvalidError
		recErr    tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &certErr):
		return channel.Permanent("email: %s: %s: the server's certificate is not trusted for %s; fix the certificate, or check smtp_host", where, said, s.cfg.host)
	case errors.As(err, &recErr):
		return channel.Permanent("email: %s: %s: the server does not speak TLS on this port; use tls \"starttls\" (port 587) or \"none\"", where, said)
	case strings.Contains(said, "does not support STARTTLS"):
		return channel.Permanent("email: %s: the server does not offer STARTTLS; use tls \"tls\" if it expects TLS from the start (port 465), or \"none\" for a relay without TLS", where)
	case strings.Contains(said, "does not support SMTP AUTH"), strings.Contains(said, "not able to detect a supported"):
		return channel.Permanent("email: %s: %s: the server offers no usable AUTH mechanism%s", where, said, noAuthHint(s.cfg.tls))
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return channel.Temporary(0, "email: %s: no answer in time (timeout); will retry", where)
	}
	// Anything else is the network: refused, reset, closed early.
	return channel.Temporary(0, "email: %s: %s; will retry", where, said)
}

func codeHint(code int, said, mode string) string {
	switch {
	case code == 535 || code == 534 || strings.Contains(said, "SMTP AUTH failed"):
		return ": check username and password"
	case code == 530 && strings.Contains(strings.ToUpper(said), "STARTTLS"):
		return `: the server requires TLS; use tls "starttls"`
	case code == 530:
		return ": the server requires authentication; set username and password"
	case code == 550 || code == 551 || code == 553:
		return ": check the addresses in from and to"
	case code == 554 && mode != TLSNone:
		return ": the server refused the message; check from (it may not be allowed to send as that address)"
	}
	return ""
}

func noAuthHint(mode string) string {
	if mode == TLSNone {
		return `; many servers offer AUTH only after STARTTLS: use tls "starttls", or remove username and password for a relay that needs none`
	}
	return "; remove username and password if the server needs none"
}

// redact cuts the password, and the AUTH PLAIN blob that carries it, out
// of text that came back from the server or the SMTP library.
func (s *sender) redact(text string) string {
	if s.cfg.password == "" {
		return text
	}
	plain := base64.StdEncoding.EncodeToString([]byte("\x00" + s.cfg.username + "\x00" + s.cfg.password))
	text = strings.ReplaceAll(text, plain, channel.Masked)
	if len(s.cfg.password) >= minRedact {
		text = strings.ReplaceAll(text, s.cfg.password, channel.Masked)
	}
	return text
}

// minRedact: below it, cutting the password out of every word would make
// the message unreadable; servers do not echo passwords anyway, this is the
// belt to their braces.
const minRedact = 4

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
