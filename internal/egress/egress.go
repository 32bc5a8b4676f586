// Package egress decides where Herald's outgoing connections may go. Every
// channel and executor dials through it, so a callback URL or a host address
// cannot be turned against the machine Herald runs on (SSRF).
//
// The check runs on the resolved address at connect time, so a DNS name that
// resolves to a refused address, and a redirect to one, are refused too.
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// refused are the targets denied unless explicitly allowed: loopback,
// link-local (which includes the 169.254.169.254 metadata service), the
// unspecified address, and the well-known cloud metadata addresses.
var refused = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("::/128"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("100.100.100.200/32"), // Alibaba Cloud metadata
	netip.MustParsePrefix("fd00:ec2::254/128"),  // AWS IPv6 metadata
}

// ErrRefused is wrapped by every refusal so callers can tell policy from
// network failures (a refusal is never worth retrying).
var ErrRefused = errors.New("egress refused")

// Policy holds the extra networks allowed as targets (HERALD_EGRESS_ALLOW).
type Policy struct {
	allow []netip.Prefix
}

// New builds a policy from CIDRs or bare addresses.
func New(allow []string) (*Policy, error) {
	p := &Policy{}
	for _, a := range allow {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if !strings.Contains(a, "/") {
			addr, err := netip.ParseAddr(a)
			if err != nil {
				return nil, fmt.Errorf("egress allow %q: not a CIDR or address", a)
			}
			p.allow = append(p.allow, netip.PrefixFrom(addr, addr.BitLen()))
			continue
		}
		pref, err := netip.ParsePrefix(a)
		if err != nil {
			return nil, fmt.Errorf("egress allow %q: %v", a, err)
		}
		p.allow = append(p.allow, pref.Masked())
	}
	return p, nil
}

// AllowAll is a policy for tests that must reach loopback servers.
func AllowAll() *Policy {
	return &Policy{allow: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}}
}

// CheckAddr reports whether ip may be a target.
func (p *Policy) CheckAddr(ip netip.Addr) error {
	// A zoned address (fe80::1%eth0) never matches a netip.Prefix: drop
	// the zone, or every link-local target with a zone would pass.
	ip = ip.Unmap().WithZone("")
	for _, a := range p.allow {
		if a.Contains(ip) {
			return nil
		}
	}
	for _, r := range refused {
		if r.Contains(ip) {
			return fmt.Errorf("%w: %s is a loopback, link-local or metadata address; add it to HERALD_EGRESS_ALLOW if it is meant", ErrRefused, ip)
		}
	}
	return nil
}

// CheckURL validates a target URL before it is saved: an http(s) scheme, a
// host, and, when the host is a literal address, an allowed one. Names are
// checked again at connect time, where their resolved address counts.
func (p *Policy) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a valid URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%w: scheme %q is not allowed; use http or https", ErrRefused, u.Scheme)
	}
	if u.Hostname() == "" {
		return errors.New("the URL has no host")
	}
	return p.CheckHost(u.Hostname())
}

// CheckHost refuses literal addresses the policy denies and the names that
// always mean this machine.
func (p *Policy) CheckHost(host string) error {
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if ip, err := netip.ParseAddr(host); err == nil {
		return p.CheckAddr(ip)
	}
	if ip, ok := parseInetAton(host); ok {
		return p.CheckAddr(ip)
	}
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return p.CheckAddr(netip.MustParseAddr("127.0.0.1"))
	}
	return nil
}

// parseInetAton reads the other spellings of an IPv4 address that
// inet_aton, and so getaddrinfo (the cgo resolver, curl, most tools),
// accepts: one to four parts, each decimal, octal (leading 0) or hex (0x),
// the last filling the bytes left ("127.1", "0x7f000001", "0177.0.0.1",
// "2130706433" are all 127.0.0.1).
func parseInetAton(host string) (netip.Addr, bool) {
	parts := strings.Split(host, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var ip uint64
	for i, part := range parts {
		base := 10
		switch {
		case len(part) > 2 && (part[:2] == "0x" || part[:2] == "0X"):
			part, base = part[2:], 16
		case len(part) > 1 && part[0] == '0':
			part, base = part[1:], 8
		}
		v, err := strconv.ParseUint(part, base, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		if i < len(parts)-1 {
			if v > 0xff {
				return netip.Addr{}, false
			}
			ip |= v << (24 - 8*i)
			continue
		}
		if v >= 1<<(8*(5-len(parts))) {
			return netip.Addr{}, false
		}
		ip |= v
	}
	return netip.AddrFrom4([4]byte{byte(ip >> 24), byte(ip >> 16), byte(ip >> 8), byte(ip)}), true
}

// control runs after DNS resolution, just before connect: the one place a
// name that resolves to a refused address can be caught.
func (p *Policy) control(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("%w: unparsable address %q", ErrRefused, host)
	}
	return p.CheckAddr(ip)
}

// Dialer returns a dialer that refuses denied targets at connect time.
func (p *Policy) Dialer(timeout time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: p.control}
}

// DialContext dials through the policy; for SSH and other raw connections.
func (p *Policy) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return p.Dialer(10*time.Second).DialContext(ctx, network, address)
}

// Transport returns an HTTP transport whose every connection is checked.
// Proxies from the environment are not used: they would hide the target.
func (p *Policy) Transport() *http.Transport {
	return &http.Transport{
		DialContext:           p.Dialer(10 * time.Second).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256, // above the delivery workers: many endpoints share one host
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// Client returns an HTTP client that never follows redirects: a webhook that
// answers 3xx has failed (DESIGN.md), and following it could lead anywhere.
// Per-request timeouts come from the caller's context.
func (p *Policy) Client() *http.Client {
	return &http.Client{
		Transport: p.Transport(),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// IsRefused reports whether err comes from the policy.
func IsRefused(err error) bool { return errors.Is(err, ErrRefused) }
