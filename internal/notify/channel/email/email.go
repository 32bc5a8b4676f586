// Package email sends events as mail through the user's SMTP server
// (CONTRACT §8): one multipart/alternative message per event, an HTML part
// for people and a text part for everything else.
package email

import (
	"crypto/x509"
	"encoding/json"
	"net"
	"net/mail"
	"net/netip"
	"strconv"
	"strings"

	"github.com/herald-release/herald/internal/notify/channel"
	"github.com/herald-release/herald/internal/validate"
)

// Kind is the "email" channel type.
var Kind = channel.NewKind("email", []string{"password"}, parse,
	func(c config, deps channel.Deps) channel.Sender { return &sender{cfg: c, deps: deps} })

// TLS modes.
const (
	TLSStartTLS = "starttls" // submission, port 587: upgrade, and insist on it
	TLSImplicit = "tls"      // SMTPS, port 465: TLS from the first byte
	TLSNone     = "none"     // a relay inside the network, port 25
)

// maxRecipients keeps one event from turning into a mass mailing; lists
// belong in a mailing list address.
const maxRecipients = 50

type config struct {
	host     string // a name or a bare IP address (no brackets)
	port     int
	username string
	password string
	from     *mail.Address
	to       []*mail.Address
	// recipients are roles (task_creator, plan_manager) whose users'
	// addresses are added to to when an event is sent.
	recipients []string
	tls        string
	look       channel.Look
}

func parse(raw json.RawMessage, deps channel.Deps) (config, validate.Errors) {
	r := channel.ReadConfig(raw)
	c := config{
		username:   r.String("username"),
		password:   r.String("password"),
		recipients: r.Recipients("recipients"),
		look:       r.Look(),
	}

	c.tls = strings.ToLower(r.String("tls"))
	switch c.tls {
	case "":
		c.tls = TLSStartTLS
	case TLSStartTLS, TLSImplicit, TLSNone:
	default:
		r.Errs.Add("tls", `must be "starttls", "tls" or "none"`)
	}

	if host := r.String("smtp_host"); host == "" {
		if !r.Has("smtp_host") {
			r.Errs.Add("smtp_host", "is required")
		}
	} else if h, msg := checkHost(host); msg != "" {
		r.Errs.Add("smtp_host", "%s", msg)
	} else {
		c.host = h
		// The egress policy speaks URLs; its host check is what applies
		// here (refusing loopback, link-local and metadata addresses).
		if deps.CheckURL != nil {
			if err := deps.CheckURL("http://" + net.JoinHostPort(h, "1")); err != nil {
				r.Errs.Add("smtp_host", "%v", err)
			}
		}
	}

	if n, ok := r.Int("smtp_port"); ok {
		if n < 1 || n > 65535 {
			r.Errs.Add("smtp_port", "must be between 1 and 65535")
		}
		c.port = int(n)
	} else if !r.Has("smtp_port") {
		c.port = defaultPort(c.tls)
	}

	switch {
	case c.username != "" && c.password == "":
		r.Errs.Add("password", "is required with username")
	case c.username == "" && c.password != "":
		r.Errs.Add("username", "is required with password")
	}

	if from := r.String("from"); from == "" {
		if !r.Has("from") {
			r.Errs.Add("from", "is required")
		}
	} else if a, err := parseAddress(from); err != nil {
		r.Errs.Add("from", "is not a mail address (herald@example.com or Herald <herald@example.com>)")
	} else {
		c.from = a
	}

	to := r.Strings("to", maxRecipients)
	if len(to) == 0 && len(c.recipients) == 0 && !hasErr(r.Errs, "to") && !hasErr(r.Errs, "recipients") {
		r.Errs.Add("to", "needs at least one address (or recipients: task_creator, plan_manager)")
	}
	for i, s := range to {
		a, err := parseAddress(s)
		if err != nil {
			r.Errs.Add("to["+strconv.Itoa(i)+"]", "is not a mail address")
			continue
		}
		c.to = append(c.to, a)
	}
	return c, r.Done()
}

func defaultPort(mode string) int {
	switch mode {
	case TLSImplicit:
		return 465
	case TLSNone:
		return 25
	}
	return 587
}

// parseAddress accepts one address, with or without a display name; a
// list or a group is one mistake away from mailing the wrong people.
func parseAddress(s string) (*mail.Address, error) {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, err
	}
	// Non-ASCII domains need IDNA, which servers handle unevenly; say so at
	// save time rather than at the first release.
	if _, domain, _ := strings.Cut(a.Address, "@"); domain == "" || !isASCII(domain) {
		return nil, &net.AddrError{Err: "domain must be ASCII", Addr: s}
	}
	return a, nil
}

// checkHost accepts a DNS name or an IP address, without scheme or port:
// smtp_port is its own field, and "smtp.example.com:587" here would be
// dialled as a name that does not exist.
func checkHost(s string) (string, string) {
	const want = "must be a host name or IP address, without scheme or port (smtp.example.com)"
	if ip, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		if ip.Zone() != "" {
			return "", want
		}
		return ip.String(), ""
	}
	h := strings.TrimSuffix(s, ".")
	if len(h) == 0 || len(h) > 253 {
		return "", want
	}
	for _, label := range strings.Split(h, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", want
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "", want
			}
		}
	}
	return strings.ToLower(h), ""
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func hasErr(errs validate.Errors, field string) bool {
	for _, e := range errs {
		if e.Field == field {
			return true
		}
	}
	return false
}

type sender struct {
	cfg  config
	deps channel.Deps
	// roots verifies the server's certificate; nil means the system's.
	// Only tests set it (export_test.go), to trust the fake server.
	roots *x509.CertPool
}

// RateLimits: SMTP servers throttle per account, and say so with 4xx
// replies, which are retried.
func (s *sender) RateLimits() (string, []channel.Limit) { return "", nil }
