package egress_test

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-release/herald/internal/egress"
)

// SSRF cases the policy tests in egress_test.go leave out: the other
// spellings of an address that resolvers accept (127.1, 0x7f000001,
// 0177.0.0.1, 2130706433), more IPv4-mapped and userinfo tricks, every
// redirect status towards a refused target, and names that a DNS server
// (not /etc/hosts) resolves to refused addresses, caught when connecting.

func TestCheckURLRefusesEveryAddressSpelling(t *testing.T) {
	t.Parallel()
	p := mustPolicy(t)
	refused := []string{
		// inet_aton forms: getaddrinfo (the cgo resolver, macOS, curl)
		// reads them as 127.0.0.1, so they must be refused as it is.
		"http://127.1/",
		"http://127.0.1/",
		"http://0x7f000001/",
		"http://0X7F000001:8080/x",
		"http://0x7f.1/",
		"http://0x7f.0.0.1/",
		"http://0177.0.0.1/",
		"http://0177.1/",
		"http://017700000001/",
		"http://2130706433/",
		"http://2130706433./",
		"http://0/",
		"http://0x0/",
		"http://0xa9fea9fe/latest/meta-data/", // 169.254.169.254
		"http://2852039166/latest/meta-data/", // 169.254.169.254
		"http://0251.0376.0251.0376/",         // 169.254.169.254
		"http://169.254.43518/",               // 169.254.169.254
		// IPv6 spellings.
		"http://[::ffff:7f00:1]/",
		"http://[0:0:0:0:0:ffff:127.0.0.1]/",
		"http://[::ffff:169.254.169.254]/",
		"http://[::ffff:a9fe:a9fe]/",
		"http://[0000:0000:0000:0000:0000:0000:0000:0001]/",
		"http://[FD00:EC2::254]/latest/meta-data/",
		"http://[fd00:ec2:0::254]/",
		"http://[fe80::a9fe:a9fe%25en0]/",
		// The host after the userinfo is the target, whatever the userinfo
		// looks like; a fragment, query or path cannot hide it either.
		"http://hooks.example.com@127.0.0.1/",
		"http://user:pass@169.254.169.254/latest/meta-data/",
		"http://hooks.example.com:443@[::1]/",
		"http://127.0.0.1#@hooks.example.com/",
		"http://127.0.0.1?@hooks.example.com/",
		"http://127.0.0.1/@hooks.example.com/",
		// Schemes other than http(s), in any case, and none at all.
		"FILE:///etc/passwd",
		"file://localhost/etc/passwd",
		"Gopher://127.0.0.1:6379/_FLUSHALL",
		"ftp://anonymous@hooks.example.com/",
		"dict://127.0.0.1:11211/stats",
		"ldap://127.0.0.1/",
		"data:text/plain,hi",
		"//127.0.0.1/x",
	}
	for _, u := range refused {
		if err := p.CheckURL(u); !egress.IsRefused(err) {
			t.Errorf("CheckURL(%q) = %v, want an egress refusal", u, err)
		}
	}
	// Go does not decode percent-escaped ASCII in a host: such a URL is
	// not a URL, so it never gets as far as a resolver.
	for _, u := range []string{"http://%31%32%37.0.0.1/", "http://%6c%6f%63%61%6c%68%6f%73%74/", "http://127.0.0.1\\@hooks.example.com/"} {
		if err := p.CheckURL(u); err == nil {
			t.Errorf("CheckURL(%q) allowed it", u)
		}
	}
	for _, u := range []string{
		"http://10.1/",                             // 10.0.0.1: private, allowed
		"http://0xa000001/",                        // 10.0.0.1
		"http://127.0.0.1@hooks.example.com/",      // the target is hooks.example.com
		"http://localhost:pass@hooks.example.com/", // same
		"https://127.0.0.1.nip.io.example.com/",    // a name: checked when it resolves
		"https://0x7f000001.example.com/",          // a name
		"https://1.2.3.4.5/",                       // not an address: a name
		"https://hooks.example.com/?next=http://127.0.0.1/",
	} {
		if err := p.CheckURL(u); err != nil {
			t.Errorf("CheckURL(%q) = %v, want allowed", u, err)
		}
	}
}

// fakeDNS is a tiny authoritative DNS server on loopback: it answers A and
// AAAA questions for the names it knows and NXDOMAIN for the rest, so a
// test can make a name resolve anywhere without touching /etc/hosts.
type fakeDNS struct {
	conn    net.PacketConn
	records map[string][]netip.Addr // lower-case name with the final dot
	asked   atomic.Int64
}

func newFakeDNS(t *testing.T, records map[string][]string) *fakeDNS {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &fakeDNS{conn: conn, records: map[string][]netip.Addr{}}
	for name, addrs := range records {
		for _, a := range addrs {
			d.records[strings.ToLower(name)+"."] = append(d.records[strings.ToLower(name)+"."], netip.MustParseAddr(a))
		}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			if out := d.answer(buf[:n]); out != nil {
				_, _ = conn.WriteTo(out, from)
			}
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		wg.Wait()
	})
	return d
}

// answer builds the reply to one query; nil drops a malformed one.
func (d *fakeDNS) answer(q []byte) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:6]) != 1 {
		return nil
	}
	d.asked.Add(1)
	// The question: labels up to the root, then type and class.
	i, name := 12, ""
	for {
		if i >= len(q) {
			return nil
		}
		l := int(q[i])
		i++
		if l == 0 {
			break
		}
		if l > 63 || i+l > len(q) {
			return nil
		}
		name += strings.ToLower(string(q[i:i+l])) + "."
		i += l
	}
	if i+4 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i : i+2])
	question := q[12 : i+4]

	addrs, known := d.records[name]
	var answers [][]byte
	for _, a := range addrs {
		var rtype uint16 = 1
		if !a.Is4() {
			rtype = 28
		}
		if rtype != qtype {
			continue
		}
		rr := []byte{0xc0, 12} // the name: a pointer to the question's
		rr = binary.BigEndian.AppendUint16(rr, rtype)
		rr = binary.BigEndian.AppendUint16(rr, 1)  // class IN
		rr = binary.BigEndian.AppendUint32(rr, 60) // TTL
		data := a.AsSlice()
		rr = binary.BigEndian.AppendUint16(rr, uint16(len(data)))
		answers = append(answers, append(rr, data...))
	}
	out := append([]byte{}, q[0:2]...)                // id
	flags := uint16(0x8000 | 0x0400 | 0x0080)         // response, authoritative, recursion available
	flags |= binary.BigEndian.Uint16(q[2:4]) & 0x0100 // recursion desired, as asked
	if !known {
		flags |= 3 // NXDOMAIN
	}
	out = binary.BigEndian.AppendUint16(out, flags)
	out = binary.BigEndian.AppendUint16(out, 1)
	out = binary.BigEndian.AppendUint16(out, uint16(len(answers)))
	out = binary.BigEndian.AppendUint16(out, 0)
	out = binary.BigEndian.AppendUint16(out, 0)
	out = append(out, question...)
	for _, a := range answers {
		out = append(out, a...)
	}
	return out
}

// resolver asks only this server.
func (d *fakeDNS) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var nd net.Dialer
		return nd.DialContext(ctx, "udp", d.conn.LocalAddr().String())
	}}
}

// client is the policy's client with its dialer resolving through d: the
// policy's own dialer (and so its connect-time check), another resolver.
func (d *fakeDNS) client(p *egress.Policy) *http.Client {
	dialer := p.Dialer(5 * time.Second)
	dialer.Resolver = d.resolver()
	c := p.Client()
	tr := c.Transport.(*http.Transport)
	tr.DialContext = dialer.DialContext
	return c
}

// acceptCounter listens on addr and counts the connections it accepts.
func acceptCounter(t *testing.T, addr string) (net.Listener, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	n := new(atomic.Int64)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}), ConnState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			n.Add(1)
		}
	}}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln, n
}

func TestNamesResolvingToRefusedAddressesAreRefusedAtConnect(t *testing.T) {
	t.Parallel()
	ln, hits := acceptCounter(t, "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	dns := newFakeDNS(t, map[string][]string{
		"loopback.ssrf.test":          {"127.0.0.1"},
		"loopback6.ssrf.test":         {"::1"},
		"mapped.ssrf.test":            {"::ffff:127.0.0.1"},
		"metadata.ssrf.test":          {"169.254.169.254"},
		"metadata6.ssrf.test":         {"fd00:ec2::254"},
		"alibaba.ssrf.test":           {"100.100.100.200"},
		"linklocal.ssrf.test":         {"169.254.1.1", "fe80::1"},
		"unspecified.ssrf.test":       {"0.0.0.0", "::"},
		"all-refused.ssrf.test":       {"169.254.169.254", "127.0.0.1", "::1", "fd00:ec2::254"},
		"hooks.example.com.ssrf.test": {"127.0.0.1"},
	})
	client := dns.client(mustPolicy(t))
	for _, name := range []string{"loopback", "loopback6", "mapped", "metadata", "metadata6", "alibaba", "linklocal",
		"unspecified", "all-refused", "hooks.example.com"} {
		target := "http://" + name + ".ssrf.test:" + port + "/hook"
		// The name passes the save-time check: only its address tells.
		if err := mustPolicy(t).CheckURL(target); err != nil {
			t.Fatalf("CheckURL(%s) = %v: a name is checked when it resolves", target, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader("{}"))
		resp, err := client.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			t.Errorf("POST %s reached %s", target, resp.Status)
			continue
		}
		if !egress.IsRefused(err) {
			t.Errorf("POST %s: %v, want an egress refusal", target, err)
		}
	}
	if dns.asked.Load() == 0 {
		t.Fatal("the fake DNS server was never asked: the names did not resolve through it")
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the loopback listener accepted %d connections", n)
	}
}

// TestEveryResolvedAddressIsChecked: a name with a refused and an allowed
// address reaches only the allowed one. The check is per connection, so a
// name cannot pass with one address and connect to another (DNS
// rebinding).
func TestEveryResolvedAddressIsChecked(t *testing.T) {
	t.Parallel()
	allowed, allowedHits := acceptCounter(t, "127.0.0.2:0")
	_, port, _ := net.SplitHostPort(allowed.Addr().String())
	refused, refusedHits := acceptCounterOrSkip(t, "127.0.0.1:"+port)
	if refused == nil {
		t.Skipf("port %s is taken on 127.0.0.1", port)
	}
	dns := newFakeDNS(t, map[string][]string{"mixed.ssrf.test": {"127.0.0.1", "127.0.0.2"}})
	client := dns.client(mustPolicy(t, "127.0.0.2/32"))
	for i := range 3 {
		resp, err := client.Get("http://mixed.ssrf.test:" + port + "/")
		if err != nil {
			t.Fatalf("GET %d: %v", i, err)
		}
		resp.Body.Close()
		client.CloseIdleConnections()
	}
	if refusedHits.Load() != 0 || allowedHits.Load() != 3 {
		t.Fatalf("127.0.0.1 (refused) saw %d connections, 127.0.0.2 (allowed) %d; want 0 and 3", refusedHits.Load(), allowedHits.Load())
	}
}

func acceptCounterOrSkip(t *testing.T, addr string) (net.Listener, *atomic.Int64) {
	t.Helper()
	probe, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil
	}
	probe.Close()
	return acceptCounter(t, addr)
}

// TestRedirectsToRefusedTargetsAreNotFollowed: whatever the status and the
// Location, the client hands back the 3xx itself and never dials the
// target.
func TestRedirectsToRefusedTargetsAreNotFollowed(t *testing.T) {
	t.Parallel()
	inner, innerHits := acceptCounter(t, "127.0.0.2:0")
	dns := newFakeDNS(t, map[string][]string{"inner.ssrf.test": {"127.0.0.2"}})
	var location atomic.Value
	redirector := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", location.Load().(string))
		status, _ := strconv.Atoi(r.URL.Query().Get("status"))
		w.WriteHeader(status)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = redirector.Serve(ln) }()
	t.Cleanup(func() { _ = redirector.Close() })

	// Only the redirector is allowed; following would be refused, or
	// reach the inner listener when the policy is wrong.
	client := dns.client(mustPolicy(t, "127.0.0.1/32"))
	_, innerPort, _ := net.SplitHostPort(inner.Addr().String())
	for _, loc := range []string{
		"http://169.254.169.254/latest/meta-data/iam/security-credentials/",
		"http://[fd00:ec2::254]/latest/meta-data/",
		"http://127.0.0.2:" + innerPort + "/",
		"http://inner.ssrf.test:" + innerPort + "/",
		"http://0x7f000002:" + innerPort + "/",
		"file:///etc/passwd",
		"gopher://127.0.0.2:" + innerPort + "/_x",
		"//127.0.0.2:" + innerPort + "/",
	} {
		location.Store(loc)
		for _, status := range []int{301, 302, 303, 307, 308} {
			for _, method := range []string{http.MethodPost, http.MethodPut} {
				req, _ := http.NewRequest(method, "http://"+ln.Addr().String()+"/hook?status="+strconv.Itoa(status), strings.NewReader("{}"))
				resp, err := client.Do(req)
				if err != nil {
					t.Errorf("%s, %d to %s: %v; want the %d itself", method, status, loc, err, status)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != status || resp.Header.Get("Location") != loc {
					t.Errorf("%s, %d to %s: got %s, Location %q", method, status, loc, resp.Status, resp.Header.Get("Location"))
				}
			}
		}
	}
	if n := innerHits.Load(); n != 0 {
		t.Fatalf("a redirect was followed: the inner listener accepted %d connections", n)
	}
}

// TestDialContextRefusesEveryRefusedRange dials raw (the SSH executor's
// way) to a literal of every refused range.
func TestDialContextRefusesEveryRefusedRange(t *testing.T) {
	t.Parallel()
	p := mustPolicy(t)
	for _, addr := range []string{"127.0.0.1:22", "127.255.255.254:22", "[::1]:22", "0.0.0.0:22", "[::]:22",
		"169.254.169.254:80", "[fd00:ec2::254]:80", "100.100.100.200:80", "[fe80::1]:22", "[::ffff:169.254.169.254]:80"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := p.DialContext(ctx, "tcp", addr)
		cancel()
		if err == nil {
			c.Close()
			t.Errorf("DialContext(%s) connected", addr)
			continue
		}
		var opErr *net.OpError
		if !egress.IsRefused(err) || !errors.As(err, &opErr) {
			t.Errorf("DialContext(%s) = %v, want an egress refusal", addr, err)
		}
	}
}
