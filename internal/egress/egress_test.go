package egress_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-release/herald/internal/egress"
)

func mustPolicy(t *testing.T, allow ...string) *egress.Policy {
	t.Helper()
	p, err := egress.New(allow)
	if err != nil {
		t.Fatalf("egress.New(%q): %v", allow, err)
	}
	return p
}

func TestCheckURLDefaultPolicy(t *testing.T) {
	t.Parallel()
	p := mustPolicy(t)
	tests := []struct {
		url     string
		refused bool // an ErrRefused refusal
		invalid bool // refused, but as a malformed URL rather than by policy
	}{
		{url: "http://127.0.0.1/hook", refused: true},
		{url: "http://127.8.9.10:8080/", refused: true},
		{url: "http://[::1]/", refused: true},
		{url: "http://[::ffff:127.0.0.1]/", refused: true},
		{url: "http://169.254.169.254/latest/meta-data/", refused: true},
		{url: "http://169.254.1.1/", refused: true},
		{url: "http://[fe80::1]/", refused: true},
		{url: "http://[fe80::1%25eth0]/", refused: true},
		{url: "http://0.0.0.0:9000/", refused: true},
		{url: "http://[::]/", refused: true},
		{url: "http://100.100.100.200/latest/meta-data", refused: true},
		{url: "http://[fd00:ec2::254]/", refused: true},
		{url: "http://localhost/", refused: true},
		{url: "http://LOCALHOST:8080/", refused: true},
		{url: "http://localhost./", refused: true},
		{url: "http://api.localhost/", refused: true},
		{url: "ftp://example.com/file", refused: true},
		{url: "file:///etc/passwd", refused: true},
		{url: "gopher://example.com/", refused: true},
		{url: "javascript:alert(1)", refused: true},
		{url: "http:///no-host", invalid: true},
		{url: "http://%zz/", invalid: true},

		{url: "http://10.0.0.1/hook"},
		{url: "https://192.168.1.20:8443/x"},
		{url: "http://172.16.0.1/"},
		{url: "http://100.64.0.1/"},
		{url: "https://8.8.8.8/"},
		{url: "https://[2001:4860:4860::8888]/"},
		{url: "https://open.feishu.cn/open-apis/bot/v2/hook/abc"},
		{url: "HTTPS://example.com/"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			t.Parallel()
			err := p.CheckURL(tt.url)
			switch {
			case tt.refused:
				if !egress.IsRefused(err) {
					t.Fatalf("CheckURL(%q) = %v, want a refusal", tt.url, err)
				}
			case tt.invalid:
				if err == nil {
					t.Fatalf("CheckURL(%q) accepted a URL without a usable host", tt.url)
				}
			default:
				if err != nil {
					t.Fatalf("CheckURL(%q) = %v, want allowed", tt.url, err)
				}
			}
		})
	}
}

func TestCheckAddrAndHost(t *testing.T) {
	t.Parallel()
	p := mustPolicy(t)
	for _, tt := range []struct {
		host    string
		refused bool
	}{
		{"127.0.0.1", true},
		{"[::1]", true},
		{"::1", true},
		{"169.254.169.254", true},
		{"fe80::1", true},
		{"fe80::1%eth0", true},
		{"0.0.0.0", true},
		{"100.100.100.200", true},
		{"localhost", true},
		{"10.0.0.1", false},
		{"1.1.1.1", false},
		{"100.100.100.201", false},
		{"deploy-01.internal", false}, // names are checked at connect time
	} {
		err := p.CheckHost(tt.host)
		if got := egress.IsRefused(err); got != tt.refused {
			t.Errorf("CheckHost(%q) = %v, refused %v; want refused %v", tt.host, err, got, tt.refused)
		}
		if ip, perr := netip.ParseAddr(strings.Trim(tt.host, "[]")); perr == nil {
			if got := egress.IsRefused(p.CheckAddr(ip)); got != tt.refused {
				t.Errorf("CheckAddr(%s) refused %v, want %v", ip, got, tt.refused)
			}
		}
	}
}

func TestAllowReallows(t *testing.T) {
	t.Parallel()
	tests := []struct {
		allow   []string
		target  string
		refused bool
	}{
		{[]string{"127.0.0.0/8"}, "http://127.0.0.1:9000/", false},
		{[]string{"127.0.0.0/8"}, "http://127.3.2.1/", false},
		{[]string{"127.0.0.0/8"}, "http://[::1]/", true},
		{[]string{"127.0.0.0/8"}, "http://169.254.169.254/", true},
		{[]string{"127.0.0.1"}, "http://127.0.0.1/", false},
		{[]string{"127.0.0.1"}, "http://127.0.0.2/", true},
		{[]string{"::1/128"}, "http://[::1]/", false},
		{[]string{" 169.254.169.254/32 ", ""}, "http://169.254.169.254/", false},
		{[]string{"169.254.169.254/32"}, "http://169.254.169.253/", true},
		{[]string{"127.0.0.1/8"}, "http://127.9.9.9/", false}, // host bits are masked off
		{[]string{"127.0.0.0/8"}, "http://localhost/", false},
		{[]string{"fe80::/10"}, "http://[fe80::1]/", false},
	}
	for _, tt := range tests {
		p := mustPolicy(t, tt.allow...)
		err := p.CheckURL(tt.target)
		if got := egress.IsRefused(err); got != tt.refused || (!tt.refused && err != nil) {
			t.Errorf("allow %q: CheckURL(%s) = %v; want refused %v", tt.allow, tt.target, err, tt.refused)
		}
	}
}

func TestNewRejectsBadAllowEntries(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"notacidr", "10.0.0.0/33", "10.0.0/8", "::1/129", "example.com", "127.0.0.1/-1"} {
		if _, err := egress.New([]string{"10.0.0.0/8", bad}); err == nil {
			t.Errorf("egress.New accepted %q", bad)
		} else if !strings.Contains(err.Error(), bad) {
			t.Errorf("egress.New(%q) = %v: the error does not name the entry", bad, err)
		}
	}
}

// loopbackServer answers every request with 200 "ok" and counts them.
func loopbackServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	hits := new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	return srv, hits
}

func TestClientRefusesLoopbackAtConnect(t *testing.T) {
	t.Parallel()
	srv, hits := loopbackServer(t)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	client := mustPolicy(t).Client()
	for _, target := range []string{
		srv.URL,                          // the literal 127.0.0.1
		"http://localhost:" + port + "/", // a name that resolves to loopback
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader("{}"))
		resp, err := client.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			t.Fatalf("POST %s reached the loopback server: %s", target, resp.Status)
		}
		if !egress.IsRefused(err) {
			t.Errorf("POST %s: error %v is not a refusal", target, err)
		}
	}
	if hits.Load() != 0 {
		t.Fatalf("the loopback server saw %d requests", hits.Load())
	}
}

func TestDialContextRefusesNamesResolvingToLoopback(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- struct{}{}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	p := mustPolicy(t)
	for _, addr := range []string{"localhost:" + port, "127.0.0.1:" + port, "[::ffff:127.0.0.1]:" + port,
		"[fe80::1%lo]:" + port, "169.254.169.254:80", "[::]:" + port} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := p.DialContext(ctx, "tcp", addr)
		cancel()
		if err == nil {
			c.Close()
			t.Fatalf("DialContext(%s) connected", addr)
		}
		if !egress.IsRefused(err) {
			t.Errorf("DialContext(%s) = %v, not a refusal", addr, err)
		}
	}
	select {
	case <-accepted:
		t.Fatal("the listener accepted a connection")
	default:
	}

	// The same listener is reachable once loopback is allowed: the refusal
	// above was the policy, not the network.
	ok := mustPolicy(t, "127.0.0.0/8", "::1/128")
	c, err := ok.DialContext(context.Background(), "tcp", "localhost:"+port)
	if err != nil {
		t.Fatalf("allowed dial: %v", err)
	}
	c.Close()
	select {
	case <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("the allowed connection never arrived")
	}
}

func TestClientAllowedLoopbackAndNoRedirects(t *testing.T) {
	t.Parallel()
	target, targetHits := loopbackServer(t)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/landed", http.StatusFound)
	}))
	t.Cleanup(redirector.Close)

	client := mustPolicy(t, "127.0.0.0/8").Client()

	resp, err := client.Get(target.URL)
	if err != nil {
		t.Fatalf("allowed GET: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || targetHits.Load() != 1 {
		t.Fatalf("allowed GET: %s, %d hits", resp.Status, targetHits.Load())
	}

	for _, method := range []string{http.MethodGet, http.MethodPost} {
		req, _ := http.NewRequest(method, redirector.URL, strings.NewReader("{}"))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s to a redirector: %v", method, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound || !strings.HasSuffix(resp.Header.Get("Location"), "/landed") {
			t.Fatalf("%s to a redirector: %s, Location %q; want the 302 itself", method, resp.Status, resp.Header.Get("Location"))
		}
	}
	if targetHits.Load() != 1 {
		t.Fatalf("the redirect was followed: the target saw %d requests", targetHits.Load())
	}
}

func TestTransportIgnoresProxyEnvironment(t *testing.T) {
	// Not parallel: it sets process environment variables.
	t.Setenv("HTTP_PROXY", "http://10.255.255.1:3128")
	t.Setenv("HTTPS_PROXY", "http://10.255.255.1:3128")
	tr := mustPolicy(t).Transport()
	if tr.Proxy != nil {
		req, _ := http.NewRequest(http.MethodGet, "http://example.com/", nil)
		if u, _ := tr.Proxy(req); u != nil {
			t.Fatalf("the transport sends requests through the proxy %s, hiding the target from the policy", u)
		}
	}
}
