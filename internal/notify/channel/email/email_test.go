package email_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herald-release/herald/internal/egress"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify/channel"
	"github.com/herald-release/herald/internal/notify/channel/channeltest"
	"github.com/herald-release/herald/internal/notify/channel/email"
	"github.com/herald-release/herald/internal/testsupport"
)

const (
	testUser     = "herald-bot"
	testPassword = "s3cret-passw0rd"
)

func deps() channel.Deps {
	return channel.Deps{HTTP: egress.AllowAll().Client(), Version: "1.2.3"}
}

func sampleEvent() *event.Envelope {
	return &event.Envelope{
		ID: "evt_01HXYZ", Sequence: 3,
		EventType: event.ReleaseFailed, ObjectKind: event.KindReleaseTask, Action: event.ReleaseFailed,
		Project:     &event.ProjectRef{ID: "my-app", Name: "<b>My App</b>"},
		Version:     &event.VersionRef{ID: "ver_1", Name: "v1.2.3"},
		Task:        &event.TaskRef{ID: "task_1", Type: "deploy", Strategy: "rolling", Status: "failed"},
		Deployment:  &event.Deployment{TotalCount: 4, CompletedCount: 2, FailedCount: 1, Hosts: []string{"h1", "h2", "h3", "h4"}},
		Timestamp:   time.Date(2026, 1, 6, 20, 0, 0, 0, time.UTC),
		Duration:    "1m30s",
		Environment: "production",
		Actor:       &event.Actor{ID: "u1", Name: "alice"},
		URL:         "https://herald.example.com/tasks/task_1",
	}
}

// config builds a config for srv, overridden by extra (nil values delete).
func config(srv *testsupport.SMTP, extra map[string]any) json.RawMessage {
	cfg := map[string]any{
		"smtp_host": srv.Host(),
		"smtp_port": srv.Port(),
		"tls":       srv.Mode(),
		"from":      "Herald <herald@example.com>",
		"to":        []string{"alice@example.com", "Bob <bob@example.org>"},
	}
	for k, v := range extra {
		if v == nil {
			delete(cfg, k)
		} else {
			cfg[k] = v
		}
	}
	b, _ := json.Marshal(cfg)
	return b
}

func newSender(t testing.TB, cfg json.RawMessage, d channel.Deps) channel.Sender {
	t.Helper()
	s, err := email.Kind.New(cfg, d)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return email.TrustRoots(s, testsupport.SMTPRootCAs())
}

func noPassword(t testing.TB, att channel.Attempt, err error) {
	t.Helper()
	blob, _ := json.Marshal(att)
	if strings.Contains(string(blob), testPassword) {
		t.Errorf("the password leaks into the attempt: %s", blob)
	}
	if err != nil && strings.Contains(err.Error(), testPassword) {
		t.Errorf("the password leaks into the error: %v", err)
	}
}

func TestKind(t *testing.T) {
	t.Parallel()
	if email.Kind.Type() != "email" {
		t.Errorf("Type() = %q", email.Kind.Type())
	}
	if got := strings.Join(email.Kind.SecretFields(), ","); got != "password" {
		t.Errorf("SecretFields() = %q", got)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	refusing, _ := egress.New(nil)
	const base = `"smtp_host":"smtp.example.com","from":"herald@example.com","to":["a@example.com"]`
	tests := []struct {
		name  string
		cfg   string
		deps  channel.Deps
		wants map[string]string
	}{
		{name: "minimal", cfg: `{` + base + `}`},
		{name: "everything", cfg: `{` + base + `,"smtp_port":2525,"username":"u","password":"p","tls":"tls","lang":"en"}`},
		{name: "ip host", cfg: `{"smtp_host":"10.0.0.5","from":"h@example.com","to":["a@example.com"],"tls":"none"}`},
		{name: "ipv6 host", cfg: `{"smtp_host":"[2001:db8::1]","from":"h@example.com","to":["a@example.com"]}`},
		{name: "display names", cfg: `{"smtp_host":"smtp.example.com","from":"Herald 发布 <h@example.com>","to":["\"Ops, Team\" <ops@example.com>"]}`},
		{name: "empty", cfg: `{}`, wants: map[string]string{"smtp_host": "required", "from": "required", "to": "at least one"}},
		{name: "not an object", cfg: `"x"`, wants: map[string]string{"": "JSON object"}},
		{name: "host with port", cfg: `{"smtp_host":"smtp.example.com:587","from":"h@example.com","to":["a@example.com"]}`, wants: map[string]string{"smtp_host": "without scheme or port"}},
		{name: "host with scheme", cfg: `{"smtp_host":"smtp://smtp.example.com","from":"h@example.com","to":["a@example.com"]}`, wants: map[string]string{"smtp_host": "without scheme"}},
		{name: "host with space", cfg: `{"smtp_host":"smtp example.com","from":"h@example.com","to":["a@example.com"]}`, wants: map[string]string{"smtp_host": "host name"}},
		{name: "loopback refused", cfg: `{"smtp_host":"127.0.0.1","from":"h@example.com","to":["a@example.com"]}`, deps: channel.Deps{CheckURL: refusing.CheckURL}, wants: map[string]string{"smtp_host": "HERALD_EGRESS_ALLOW"}},
		{name: "localhost refused", cfg: `{"smtp_host":"localhost","from":"h@example.com","to":["a@example.com"]}`, deps: channel.Deps{CheckURL: refusing.CheckURL}, wants: map[string]string{"smtp_host": "refused"}},
		{name: "metadata refused", cfg: `{"smtp_host":"169.254.169.254","from":"h@example.com","to":["a@example.com"]}`, deps: channel.Deps{CheckURL: refusing.CheckURL}, wants: map[string]string{"smtp_host": "refused"}},
		{name: "private allowed", cfg: `{"smtp_host":"10.1.2.3","from":"h@example.com","to":["a@example.com"]}`, deps: channel.Deps{CheckURL: refusing.CheckURL}},
		{name: "port zero", cfg: `{` + base + `,"smtp_port":0}`, wants: map[string]string{"smtp_port": "between 1 and 65535"}},
		{name: "port big", cfg: `{` + base + `,"smtp_port":70000}`, wants: map[string]string{"smtp_port": "between 1 and 65535"}},
		{name: "port string", cfg: `{` + base + `,"smtp_port":"587"}`, wants: map[string]string{"smtp_port": "integer"}},
		{name: "tls", cfg: `{` + base + `,"tls":"ssl"}`, wants: map[string]string{"tls": "starttls"}},
		{name: "password alone", cfg: `{` + base + `,"password":"p"}`, wants: map[string]string{"username": "required with password"}},
		{name: "username alone", cfg: `{` + base + `,"username":"u"}`, wants: map[string]string{"password": "required with username"}},
		{name: "from", cfg: `{"smtp_host":"smtp.example.com","from":"not an address","to":["a@example.com"]}`, wants: map[string]string{"from": "mail address"}},
		{name: "from list", cfg: `{"smtp_host":"smtp.example.com","from":"a@example.com, b@example.com","to":["a@example.com"]}`, wants: map[string]string{"from": "mail address"}},
		{name: "from injection", cfg: `{"smtp_host":"smtp.example.com","from":"a@example.com\r\nBcc: x@evil.com","to":["a@example.com"]}`, wants: map[string]string{"from": "mail address"}},
		{name: "to empty", cfg: `{"smtp_host":"smtp.example.com","from":"h@example.com","to":[]}`, wants: map[string]string{"to": "at least one"}},
		{name: "to not list", cfg: `{"smtp_host":"smtp.example.com","from":"h@example.com","to":"a@example.com"}`, wants: map[string]string{"to": "list"}},
		{name: "to bad entry", cfg: `{"smtp_host":"smtp.example.com","from":"h@example.com","to":["a@example.com","nobody","c@例子.cn",""]}`,
			wants: map[string]string{"to[1]": "mail address", "to[2]": "mail address", "to[3]": "non-empty"}},
		{name: "lang", cfg: `{` + base + `,"lang":"fr"}`, wants: map[string]string{"lang": "zh"}},
		{name: "unknown", cfg: `{` + base + `,"host":"x","ssl":true}`, wants: map[string]string{"host": "unknown", "ssl": "unknown"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			errs := email.Kind.Validate(json.RawMessage(tt.cfg), tt.deps)
			got := map[string]string{}
			for _, e := range errs {
				got[e.Field] = e.Message
			}
			for field, want := range tt.wants {
				if msg, ok := got[field]; !ok {
					t.Errorf("no error on %q; got %v", field, errs)
				} else if !strings.Contains(msg, want) {
					t.Errorf("%q: %q does not contain %q", field, msg, want)
				}
			}
			for field, msg := range got {
				if _, ok := tt.wants[field]; !ok {
					t.Errorf("unexpected error on %q: %q", field, msg)
				}
			}
		})
	}
}

func TestDefaultPorts(t *testing.T) {
	t.Parallel()
	// Seen in the attempt's URL; the default egress policy refuses the
	// loopback dial, so nothing leaves the process.
	strict, _ := egress.New(nil)
	d := deps()
	d.HTTP = strict.Client()
	for mode, port := range map[string]int{"": 587, "starttls": 587, "tls": 465, "none": 25} {
		cfg := `{"smtp_host":"127.0.0.1","from":"h@example.com","to":["a@example.com"],"tls":"` + mode + `"}`
		if mode == "" {
			cfg = `{"smtp_host":"127.0.0.1","from":"h@example.com","to":["a@example.com"]}`
		}
		s, err := email.Kind.New(json.RawMessage(cfg), d)
		if err != nil {
			t.Fatal(err)
		}
		att, err := s.Send(context.Background(), sampleEvent())
		if want := "smtp://127.0.0.1:" + strconv.Itoa(port); att.Request.URL != want {
			t.Errorf("tls %q: URL %q, want %q", mode, att.Request.URL, want)
		}
		if !egress.IsRefused(err) && !strings.Contains(fmt.Sprint(err), "egress refused") {
			t.Errorf("tls %q: %v", mode, err)
		}
	}
}

func TestSend(t *testing.T) {
	t.Parallel()
	tests := []struct {
		mode string
		auth bool
	}{
		{testsupport.SMTPNoTLS, false},
		{testsupport.SMTPNoTLS, true},
		{testsupport.SMTPStartTLS, false},
		{testsupport.SMTPStartTLS, true},
		{testsupport.SMTPTLS, false},
		{testsupport.SMTPTLS, true},
	}
	for _, tt := range tests {
		t.Run(tt.mode+"/auth="+strconv.FormatBool(tt.auth), func(t *testing.T) {
			t.Parallel()
			opts := []testsupport.SMTPOption{testsupport.SMTPWithTLS(tt.mode)}
			extra := map[string]any{}
			if tt.auth {
				opts = append(opts, testsupport.SMTPWithAuth(testUser, testPassword))
				extra["username"], extra["password"] = testUser, testPassword
			}
			srv := testsupport.NewSMTP(t, opts...)
			ev := sampleEvent()
			att, err := newSender(t, config(srv, extra), deps()).Send(context.Background(), ev)
			noPassword(t, att, err)
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			msg := srv.WaitMessages(t, 1)[0]

			if wantTLS := tt.mode != testsupport.SMTPNoTLS; msg.TLS != wantTLS {
				t.Errorf("delivered with TLS=%v", msg.TLS)
			}
			if tt.auth {
				if msg.User != testUser {
					t.Errorf("delivered as %q, want %q", msg.User, testUser)
				}
				auths := srv.Auths()
				if len(auths) != 1 || !auths[0].OK || auths[0].TLS != (tt.mode != testsupport.SMTPNoTLS) {
					t.Errorf("auths %+v", auths)
				}
			}
			if msg.From != "herald@example.com" || strings.Join(msg.To, ",") != "alice@example.com,bob@example.org" {
				t.Errorf("envelope from %q to %v", msg.From, msg.To)
			}

			sum := channel.Summarize(ev, "zh")
			checks := map[string]string{
				"Subject":          sum.Title,
				"Message-Id":       "<herald.evt_01HXYZ@example.com>",
				"From":             `"Herald" <herald@example.com>`,
				"X-Herald-Event":   "release_task",
				"X-Herald-Action":  "release_failed",
				"X-Herald-Project": "my-app",
				"Auto-Submitted":   "auto-generated",
				"User-Agent":       "Herald/1.2.3",
			}
			for h, want := range checks {
				if got := msg.Header(h); got != want {
					t.Errorf("header %s = %q, want %q", h, got, want)
				}
			}
			if to := msg.Header("To"); !strings.Contains(to, "alice@example.com") || !strings.Contains(to, "bob@example.org") {
				t.Errorf("To = %q", to)
			}

			text, html := parts(t, msg)
			if text != email.RenderText(sum, "zh") {
				t.Errorf("text part\n%s\nwant\n%s", text, email.RenderText(sum, "zh"))
			}
			for _, want := range []string{"&lt;b&gt;My App&lt;/b&gt;", "v1.2.3", "production", "2/4", `href="https://herald.example.com/tasks/task_1"`, "#d93026"} {
				if !strings.Contains(html, want) {
					t.Errorf("HTML part lacks %q", want)
				}
			}
			if strings.Contains(html, "<b>My App") {
				t.Error("HTML part does not escape the project name")
			}

			if att.Request.Method != "SMTP" || att.Request.URL != "smtp://"+srv.Addr() {
				t.Errorf("attempt request %s %s", att.Request.Method, att.Request.URL)
			}
			if att.Request.Headers["Subject"] != sum.Title || att.Request.Headers["To"] != `alice@example.com, "Bob" <bob@example.org>` ||
				att.Request.Headers["From"] != `"Herald" <herald@example.com>` {
				t.Errorf("attempt headers %v", att.Request.Headers)
			}
			if att.Request.Body != text {
				t.Errorf("attempt body is not the text part")
			}
			if att.StatusCode != 250 || !strings.Contains(att.Response, "OK") {
				t.Errorf("attempt status %d response %q", att.StatusCode, att.Response)
			}
		})
	}
}

// parts returns the text and HTML parts of a multipart/alternative message.
func parts(t testing.TB, msg testsupport.SMTPMessage) (text, html string) {
	t.Helper()
	m, err := msg.Parse()
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type %q: %v", m.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart() // decodes quoted-printable
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		switch ct {
		case "text/plain":
			text = strings.ReplaceAll(string(b), "\r\n", "\n")
		case "text/html":
			html = string(b)
		}
	}
	if text == "" || html == "" {
		t.Fatalf("parts missing: text %d bytes, html %d bytes", len(text), len(html))
	}
	return text, html
}

func TestEnglish(t *testing.T) {
	t.Parallel()
	srv := testsupport.NewSMTP(t)
	if _, err := newSender(t, config(srv, map[string]any{"lang": "en"}), deps()).Send(context.Background(), sampleEvent()); err != nil {
		t.Fatal(err)
	}
	msg := srv.WaitMessages(t, 1)[0]
	if got := msg.Header("Subject"); got != "Release: release failed" {
		t.Errorf("Subject %q", got)
	}
	text, html := parts(t, msg)
	if !strings.Contains(text, "View in Herald: https://herald.example.com/tasks/task_1") || !strings.Contains(html, "View in Herald") {
		t.Errorf("English link missing:\n%s", text)
	}
}

func TestSameMessageIDOnRetry(t *testing.T) {
	t.Parallel()
	srv := testsupport.NewSMTP(t)
	srv.FailNext(testsupport.SMTPStageData, 451, "try again later")
	s := newSender(t, config(srv, nil), deps())
	ev := sampleEvent()
	first, err := s.Send(context.Background(), ev)
	if err == nil || !channeltest.AsError(t, err).Retry {
		t.Fatalf("first attempt: %v", err)
	}
	second, err := s.Send(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if first.Request.Headers["Message-ID"] != second.Request.Headers["Message-ID"] {
		t.Errorf("Message-ID changed between attempts: %q, %q", first.Request.Headers["Message-ID"], second.Request.Headers["Message-ID"])
	}
	if got := srv.WaitMessages(t, 1)[0].Header("Message-ID"); got != second.Request.Headers["Message-ID"] {
		t.Errorf("delivered Message-ID %q", got)
	}
}

func TestMessageID(t *testing.T) {
	t.Parallel()
	if got := email.MessageID("evt_01HX", "herald@example.com"); got != "herald.evt_01HX@example.com" {
		t.Errorf("MessageID = %q", got)
	}
	odd := email.MessageID("evt <1>@x", "herald@example.com")
	if strings.ContainsAny(strings.TrimSuffix(odd, "@example.com"), "<>@ ") || odd != email.MessageID("evt <1>@x", "herald@example.com") {
		t.Errorf("odd id gives %q", odd)
	}
}

func TestAuthFailure(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{testsupport.SMTPStartTLS, testsupport.SMTPTLS, testsupport.SMTPNoTLS} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			srv := testsupport.NewSMTP(t, testsupport.SMTPWithTLS(mode), testsupport.SMTPWithAuth(testUser, "the-right-one"))
			att, err := newSender(t, config(srv, map[string]any{"username": testUser, "password": testPassword}), deps()).Send(context.Background(), sampleEvent())
			noPassword(t, att, err)
			ce := channeltest.AsError(t, err)
			if ce.Retry || ce.Code != "535" || !strings.Contains(ce.Error(), "check username and password") {
				t.Errorf("error %q retry=%v code=%q", ce, ce.Retry, ce.Code)
			}
			if att.StatusCode != 535 {
				t.Errorf("attempt status %d", att.StatusCode)
			}
			if len(srv.Messages()) != 0 {
				t.Error("a message got through")
			}
			if a := srv.Auths(); len(a) != 1 || a[0].OK {
				t.Errorf("auths %+v", a)
			}
		})
	}
}

func TestServerReplies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		stage string
		code  int
		retry bool
		hint  string
	}{
		{testsupport.SMTPStageConnect, 421, true, ""},
		{testsupport.SMTPStageConnect, 554, false, ""},
		{testsupport.SMTPStageMail, 451, true, ""},
		{testsupport.SMTPStageMail, 550, false, "check the addresses"},
		{testsupport.SMTPStageRcpt, 452, true, ""},
		{testsupport.SMTPStageRcpt, 550, false, "check the addresses"},
		{testsupport.SMTPStageData, 451, true, ""},
		{testsupport.SMTPStageData, 552, false, ""},
		{testsupport.SMTPStageData, 554, false, "check from"},
	}
	for _, tt := range tests {
		t.Run(tt.stage+"/"+strconv.Itoa(tt.code), func(t *testing.T) {
			t.Parallel()
			srv := testsupport.NewSMTP(t, testsupport.SMTPWithTLS(testsupport.SMTPStartTLS))
			srv.FailNext(tt.stage, tt.code, "scripted refusal "+strconv.Itoa(tt.code))
			att, err := newSender(t, config(srv, nil), deps()).Send(context.Background(), sampleEvent())
			ce := channeltest.AsError(t, err)
			if ce.Retry != tt.retry {
				t.Errorf("retry=%v, want %v: %v", ce.Retry, tt.retry, ce)
			}
			// What the server said is in the error, for the user to read.
			if !strings.Contains(ce.Error(), "scripted refusal") || !strings.HasPrefix(ce.Error(), "email: smtp://") {
				t.Errorf("error %q does not quote the server", ce)
			}
			if !strings.Contains(ce.Error(), tt.hint) {
				t.Errorf("error %q lacks hint %q", ce, tt.hint)
			}
			if ce.Code != strconv.Itoa(tt.code) || att.StatusCode != tt.code {
				t.Errorf("code %q, attempt status %d; want %d", ce.Code, att.StatusCode, tt.code)
			}
			if att.Response != ce.Error() {
				t.Errorf("attempt response %q", att.Response)
			}
			if len(srv.Messages()) != 0 {
				t.Error("a message got through")
			}
		})
	}
}

func TestTLSMistakes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		serverMode string
		clientTLS  string
		auth       bool
		roots      *x509.CertPool
		want       string
	}{
		{"implicit TLS to a plain server", testsupport.SMTPNoTLS, "tls", false, nil, "does not speak TLS"},
		{"STARTTLS to a server without it", testsupport.SMTPNoTLS, "starttls", false, nil, "does not offer STARTTLS"},
		{"plain to a server that wants STARTTLS", testsupport.SMTPStartTLS, "none", false, nil, `requires TLS; use tls "starttls"`},
		{"auth without TLS where it is only offered after STARTTLS", testsupport.SMTPStartTLS, "none", true, nil, "no usable AUTH"},
		{"untrusted certificate, STARTTLS", testsupport.SMTPStartTLS, "starttls", false, x509.NewCertPool(), "not trusted"},
		{"untrusted certificate, implicit TLS", testsupport.SMTPTLS, "tls", false, x509.NewCertPool(), "not trusted"},
		{"auth where the server offers none", testsupport.SMTPNoTLS, "none", true, nil, "no usable AUTH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := testsupport.NewSMTP(t, testsupport.SMTPWithTLS(tt.serverMode))
			extra := map[string]any{"tls": tt.clientTLS}
			if tt.auth {
				extra["username"], extra["password"] = testUser, testPassword
			}
			s := newSender(t, config(srv, extra), deps())
			if tt.roots != nil {
				s = email.TrustRoots(s, tt.roots)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			att, err := s.Send(ctx, sampleEvent())
			noPassword(t, att, err)
			ce := channeltest.AsError(t, err)
			if ce.Retry || !strings.Contains(ce.Error(), tt.want) {
				t.Errorf("error %q retry=%v, want permanent with %q", ce, ce.Retry, tt.want)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	for _, stage := range []string{testsupport.SMTPStageConnect, testsupport.SMTPStageData} {
		t.Run(stage, func(t *testing.T) {
			t.Parallel()
			srv := testsupport.NewSMTP(t, testsupport.SMTPWithTLS(testsupport.SMTPStartTLS))
			srv.StallNext(stage)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := newSender(t, config(srv, nil), deps()).Send(ctx, sampleEvent())
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %v despite a 300ms deadline", took)
			}
			ce := channeltest.AsError(t, err)
			if !ce.Retry || !strings.Contains(ce.Error(), "timeout") {
				t.Errorf("error %q retry=%v, want a retryable timeout", ce, ce.Retry)
			}
		})
	}
}

func TestConnectionRefused(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cfg := json.RawMessage(`{"smtp_host":"127.0.0.1","smtp_port":` + strconv.Itoa(port) + `,"tls":"none","from":"h@example.com","to":["a@example.com"]}`)
	_, err = newSender(t, cfg, deps()).Send(context.Background(), sampleEvent())
	if ce := channeltest.AsError(t, err); !ce.Retry {
		t.Errorf("connection refused not retryable: %v", ce)
	}
}

func TestEgressRefusedAtConnect(t *testing.T) {
	t.Parallel()
	srv := testsupport.NewSMTP(t)
	strict, _ := egress.New(nil)
	d := deps()
	d.HTTP = strict.Client()
	_, err := newSender(t, config(srv, nil), d).Send(context.Background(), sampleEvent())
	ce := channeltest.AsError(t, err)
	if ce.Retry || !strings.Contains(ce.Error(), "egress refused") {
		t.Errorf("loopback under the default policy: %v retry=%v", ce, ce.Retry)
	}
	if len(srv.Messages()) != 0 {
		t.Error("the message reached a refused address")
	}
}

func TestRender(t *testing.T) {
	t.Parallel()
	sum := channel.Summary{
		Title: "Release: <x>", Status: "failed", Color: channel.ColorRed,
		Fields: []channel.Field{{Label: "Project", Value: `a "quoted" & <tagged> name`}},
		URL:    "javascript:alert(1)",
	}
	html := email.RenderHTML(sum, "en")
	if strings.Contains(html, "<tagged>") || strings.Contains(html, "<x>") {
		t.Error("values are not escaped")
	}
	if strings.Contains(html, "javascript:") {
		t.Error("a javascript: link survived")
	}
	if !strings.Contains(html, "#d93026") {
		t.Error("status colour missing")
	}
	sum.URL = ""
	if html := email.RenderHTML(sum, "en"); strings.Contains(html, "View in Herald") {
		t.Error("link button without a URL")
	}
	if text := email.RenderText(sum, "en"); !strings.HasPrefix(text, "Release: <x>\n\nProject: a \"quoted\" & <tagged> name\n") {
		t.Errorf("text part:\n%s", text)
	}
}
