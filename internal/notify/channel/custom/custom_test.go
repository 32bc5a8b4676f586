package custom_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/herald-release/herald/internal/egress"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify/channel"
	"github.com/herald-release/herald/internal/notify/channel/channeltest"
	"github.com/herald-release/herald/internal/notify/channel/custom"
	"github.com/herald-release/herald/internal/testsupport"
	"github.com/herald-release/herald/internal/validate"
)

// testSecret is whsec_ + base64 of 32 bytes.
var testSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

const testToken = "tok-7f3a9c2e51d84b06"

func deps() channel.Deps {
	return channel.Deps{HTTP: egress.AllowAll().Client(), Version: "1.2.3"}
}

func sampleEvent() *event.Envelope {
	return &event.Envelope{
		ID: "evt_01HXYZ", Sequence: 3,
		EventType: event.CanaryStarted, ObjectKind: event.KindReleaseTask, Action: event.CanaryStarted,
		Project:     &event.ProjectRef{ID: "my-app", Name: "My App", Description: "a <b> & c"},
		Version:     &event.VersionRef{ID: "ver_1", Name: "v1.2.3"},
		Task:        &event.TaskRef{ID: "task_1", Type: "deploy", Strategy: "canary", Status: "running"},
		Deployment:  &event.Deployment{TotalCount: 10, CanaryCount: 1, Hosts: []string{"h1"}},
		Timestamp:   time.Date(2026, 1, 6, 20, 0, 0, 0, time.UTC),
		Duration:    "30s",
		Environment: "production",
		Actor:       &event.Actor{ID: "u1", Name: "alice"},
		URL:         "https://herald.example.com/tasks/task_1",
	}
}

func cfgJSON(t testing.TB, m map[string]any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newSender(t testing.TB, cfg map[string]any, d channel.Deps) channel.Sender {
	t.Helper()
	s, err := custom.Kind.New(cfgJSON(t, cfg), d)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func TestKind(t *testing.T) {
	t.Parallel()
	if got := custom.Kind.Type(); got != "custom" {
		t.Errorf("Type() = %q", got)
	}
	if got := strings.Join(custom.Kind.SecretFields(), ","); got != "secret,token" {
		t.Errorf("SecretFields() = %q", got)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	refusing, _ := egress.New(nil)
	tests := []struct {
		name  string
		cfg   string
		deps  channel.Deps
		wants map[string]string // field → part of its message; empty: valid
	}{
		{name: "minimal", cfg: `{"url":"https://hooks.example.com/herald"}`},
		{name: "everything", cfg: `{"url":"https://hooks.example.com/h","method":"put","headers":{"X-Api-Key":"k","Authorization":"Bearer x"},"timeout":60,"retry_count":0,"retry_interval":3600,"secret":"` + testSecret + `","token":"t"}`},
		{name: "null headers", cfg: `{"url":"https://hooks.example.com/h","headers":null}`},
		{name: "not an object", cfg: `[1]`, wants: map[string]string{"": "JSON object"}},
		{name: "no url", cfg: `{}`, wants: map[string]string{"url": "required"}},
		{name: "ftp url", cfg: `{"url":"ftp://example.com/x"}`, wants: map[string]string{"url": "http"}},
		{name: "egress refused", cfg: `{"url":"http://127.0.0.1:9/x"}`, deps: channel.Deps{CheckURL: refusing.CheckURL}, wants: map[string]string{"url": "HERALD_EGRESS_ALLOW"}},
		{name: "metadata refused", cfg: `{"url":"http://169.254.169.254/latest"}`, deps: channel.Deps{CheckURL: refusing.CheckURL}, wants: map[string]string{"url": "refused"}},
		{name: "method", cfg: `{"url":"https://e.com","method":"GET"}`, wants: map[string]string{"method": "POST"}},
		{name: "method type", cfg: `{"url":"https://e.com","method":1}`, wants: map[string]string{"method": "string"}},
		{name: "headers not object", cfg: `{"url":"https://e.com","headers":["a"]}`, wants: map[string]string{"headers": "object"}},
		{name: "header not string", cfg: `{"url":"https://e.com","headers":{"X-N":1}}`, wants: map[string]string{"headers.X-N": "string"}},
		{name: "header bad name", cfg: `{"url":"https://e.com","headers":{"X Bad":"v"}}`, wants: map[string]string{"headers.X Bad": "header name"}},
		{name: "header injection", cfg: `{"url":"https://e.com","headers":{"X-A":"v\r\nX-Herald-Event: forged"}}`, wants: map[string]string{"headers.X-A": "line breaks"}},
		{name: "header duplicate", cfg: `{"url":"https://e.com","headers":{"X-A":"1","x-a":"2"}}`, wants: map[string]string{"headers.x-a": "same header"}},
		{name: "reserved herald", cfg: `{"url":"https://e.com","headers":{"X-Herald-Event":"x","x-herald-token":"y","X-Herald-Anything":"z"}}`,
			wants: map[string]string{"headers.X-Herald-Event": "X-Herald-*", "headers.x-herald-token": "X-Herald-*", "headers.X-Herald-Anything": "X-Herald-*"}},
		{name: "reserved webhook", cfg: `{"url":"https://e.com","headers":{"webhook-id":"x","Webhook-Signature":"v1,x","webhook-timestamp":"1"}}`,
			wants: map[string]string{"headers.webhook-id": "webhook-*", "headers.Webhook-Signature": "webhook-*", "headers.webhook-timestamp": "webhook-*"}},
		{name: "reserved http", cfg: `{"url":"https://e.com","headers":{"Content-Type":"text/plain","User-Agent":"x","Host":"evil","Content-Length":"1"}}`,
			wants: map[string]string{"headers.Content-Type": "JSON", "headers.User-Agent": "Herald/", "headers.Host": "HTTP client", "headers.Content-Length": "HTTP client"}},
		{name: "timeout zero", cfg: `{"url":"https://e.com","timeout":0}`, wants: map[string]string{"timeout": "between 1 and 60"}},
		{name: "timeout too long", cfg: `{"url":"https://e.com","timeout":61}`, wants: map[string]string{"timeout": "between 1 and 60"}},
		{name: "timeout string", cfg: `{"url":"https://e.com","timeout":"10s"}`, wants: map[string]string{"timeout": "integer"}},
		{name: "timeout fraction", cfg: `{"url":"https://e.com","timeout":1.5}`, wants: map[string]string{"timeout": "integer"}},
		{name: "retry_count", cfg: `{"url":"https://e.com","retry_count":11}`, wants: map[string]string{"retry_count": "between 0 and 10"}},
		{name: "retry_count negative", cfg: `{"url":"https://e.com","retry_count":-1}`, wants: map[string]string{"retry_count": "between 0 and 10"}},
		{name: "retry_interval", cfg: `{"url":"https://e.com","retry_interval":0}`, wants: map[string]string{"retry_interval": "between 1 and 3600"}},
		{name: "secret prefix", cfg: `{"url":"https://e.com","secret":"` + strings.TrimPrefix(testSecret, "whsec_") + `"}`, wants: map[string]string{"secret": "whsec_"}},
		{name: "secret not base64", cfg: `{"url":"https://e.com","secret":"whsec_not base64!"}`, wants: map[string]string{"secret": "24 to 64"}},
		{name: "secret short", cfg: `{"url":"https://e.com","secret":"whsec_` + base64.StdEncoding.EncodeToString(make([]byte, 23)) + `"}`, wants: map[string]string{"secret": "24 to 64"}},
		{name: "secret long", cfg: `{"url":"https://e.com","secret":"whsec_` + base64.StdEncoding.EncodeToString(make([]byte, 65)) + `"}`, wants: map[string]string{"secret": "24 to 64"}},
		{name: "secret 24", cfg: `{"url":"https://e.com","secret":"whsec_` + base64.StdEncoding.EncodeToString(make([]byte, 24)) + `"}`},
		{name: "secret 64", cfg: `{"url":"https://e.com","secret":"whsec_` + base64.StdEncoding.EncodeToString(make([]byte, 64)) + `"}`},
		{name: "token newline", cfg: `{"url":"https://e.com","token":"a\nb"}`, wants: map[string]string{"token": "line breaks"}},
		{name: "unknown field", cfg: `{"url":"https://e.com","webhook_url":"https://e.com","retries":3}`, wants: map[string]string{"webhook_url": "unknown", "retries": "unknown"}},
		{name: "several at once", cfg: `{"method":"DELETE","timeout":100}`, wants: map[string]string{"url": "required", "method": "POST", "timeout": "between"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			errs := custom.Kind.Validate(json.RawMessage(tt.cfg), tt.deps)
			got := map[string]string{}
			for _, e := range errs {
				if _, dup := got[e.Field]; dup {
					t.Errorf("field %q reported twice: %v", e.Field, errs)
				}
				got[e.Field] = e.Message
			}
			for field, want := range tt.wants {
				msg, ok := got[field]
				if !ok {
					t.Errorf("no error on %q; got %v", field, errs)
					continue
				}
				if !strings.Contains(msg, want) {
					t.Errorf("%q: message %q does not contain %q", field, msg, want)
				}
			}
			for field := range got {
				if _, ok := tt.wants[field]; !ok {
					t.Errorf("unexpected error on %q: %q", field, got[field])
				}
			}
			if strings.Contains(errs.Error(), strings.TrimPrefix(testSecret, "whsec_")) {
				t.Errorf("errors repeat the secret: %v", errs)
			}
			if len(tt.wants) == 0 {
				if _, err := custom.Kind.New(json.RawMessage(tt.cfg), tt.deps); err != nil {
					t.Errorf("New on a valid config: %v", err)
				}
			} else if tt.deps.CheckURL != nil {
				// New skips the save-time egress check (TestNewIgnoresEgressAtBuild).
			} else if _, err := custom.Kind.New(json.RawMessage(tt.cfg), tt.deps); err == nil {
				t.Errorf("New accepted an invalid config")
			} else if ve := (validate.Errors{}); !errors.As(err, &ve) {
				t.Errorf("New error is %T, want validate.Errors", err)
			}
		})
	}
}

func TestNewIgnoresEgressAtBuild(t *testing.T) {
	t.Parallel()
	// A config saved under an older, looser policy must still build; the
	// connect-time check is what protects.
	refusing, _ := egress.New(nil)
	if _, err := custom.Kind.New(json.RawMessage(`{"url":"http://127.0.0.1:9/"}`), channel.Deps{CheckURL: refusing.CheckURL}); err != nil {
		t.Fatal(err)
	}
}

func TestRetries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cfg      map[string]any
		count    int
		interval time.Duration
	}{
		{map[string]any{"url": "https://e.com"}, 3, 10 * time.Second},
		{map[string]any{"url": "https://e.com", "retry_count": 0, "retry_interval": 1}, 0, time.Second},
		{map[string]any{"url": "https://e.com", "retry_count": 10, "retry_interval": 90}, 10, 90 * time.Second},
	}
	for _, tt := range tests {
		s := newSender(t, tt.cfg, deps())
		rp, ok := s.(channel.RetryPolicy)
		if !ok {
			t.Fatal("custom sender does not implement channel.RetryPolicy")
		}
		if c, i := rp.Retries(); c != tt.count || i != tt.interval {
			t.Errorf("%v: Retries() = %d, %v; want %d, %v", tt.cfg, c, i, tt.count, tt.interval)
		}
		if key, limits := s.RateLimits(); key != "" || limits != nil {
			t.Errorf("RateLimits() = %q, %v; want none", key, limits)
		}
	}
}

func TestSendHeadersAndBody(t *testing.T) {
	t.Parallel()
	for _, method := range []string{"", "POST", "PUT"} {
		t.Run("method="+method, func(t *testing.T) {
			t.Parallel()
			rcv := testsupport.NewReceiver(t)
			cfg := map[string]any{
				"url":     rcv.URL() + "/hooks/herald?team=ops",
				"headers": map[string]string{"x-api-key": "k-123", "Accept": "application/json"},
			}
			if method != "" {
				cfg["method"] = method
			}
			ev := sampleEvent()
			att, err := newSender(t, cfg, deps()).Send(context.Background(), ev)
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			want := method
			if want == "" {
				want = http.MethodPost
			}
			req := rcv.WaitRequests(t, 1)[0]
			if req.Method != want || req.Path != "/hooks/herald" || req.RawQuery != "team=ops" {
				t.Errorf("request %s %s?%s", req.Method, req.Path, req.RawQuery)
			}
			wantHeaders := map[string]string{
				"Content-Type":     "application/json",
				"User-Agent":       "Herald/1.2.3",
				"X-Herald-Event":   "release_task",
				"X-Herald-Action":  "canary_started",
				"X-Herald-Project": "my-app",
				"X-Api-Key":        "k-123",
				"Accept":           "application/json",
			}
			for k, v := range wantHeaders {
				if got := req.Header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			for _, k := range []string{"X-Herald-Token", "Webhook-Id", "Webhook-Timestamp", "Webhook-Signature"} {
				if v, ok := req.Header[k]; ok {
					t.Errorf("header %s = %q sent without token/secret", k, v)
				}
			}

			// The body is the standard message, exactly.
			wantBody, _ := custom.Body(ev)
			if string(req.Body) != string(wantBody) {
				t.Errorf("body\n%s\nwant\n%s", req.Body, wantBody)
			}
			var back event.Envelope
			if err := json.Unmarshal(req.Body, &back); err != nil {
				t.Fatal(err)
			}
			if back.ID != ev.ID || back.Project.Description != "a <b> & c" || back.Deployment.Hosts[0] != "h1" {
				t.Errorf("decoded body %+v", back)
			}
			var fields map[string]any
			_ = json.Unmarshal(req.Body, &fields)
			for _, k := range []string{"id", "sequence", "event_type", "object_kind", "action", "project", "version", "task", "deployment", "timestamp", "duration", "environment", "actor", "url"} {
				if _, ok := fields[k]; !ok {
					t.Errorf("body lacks %q", k)
				}
			}

			if att.Request.Method != want || att.StatusCode != 200 || att.Response != "{}" {
				t.Errorf("attempt %+v", att)
			}
			if att.Request.Body != string(wantBody) {
				t.Errorf("attempt body differs from the body sent")
			}
			if att.Request.Headers["X-Api-Key"] != channel.Masked {
				t.Errorf("attempt shows X-Api-Key %q; a *key* header is a credential", att.Request.Headers["X-Api-Key"])
			}
		})
	}
}

func TestNoProjectHeaderWithoutProject(t *testing.T) {
	t.Parallel()
	rcv := testsupport.NewReceiver(t)
	ev := sampleEvent()
	ev.Project = nil
	if _, err := newSender(t, map[string]any{"url": rcv.URL()}, deps()).Send(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if _, ok := rcv.WaitRequests(t, 1)[0].Header["X-Herald-Project"]; ok {
		t.Error("X-Herald-Project sent for an event without a project")
	}
}

func TestSignature(t *testing.T) {
	t.Parallel()
	rcv := testsupport.NewReceiver(t)
	if err := rcv.RequireSignature(testSecret); err != nil {
		t.Fatal(err)
	}
	s := newSender(t, map[string]any{"url": rcv.URL(), "secret": testSecret, "token": testToken}, deps())
	ev := sampleEvent()
	att, err := s.Send(context.Background(), ev)
	if err != nil {
		t.Fatalf("Send: %v (a receiver that checks signatures refused it?)", err)
	}
	req := rcv.WaitRequests(t, 1)[0]
	if req.SignatureErr != nil {
		t.Fatalf("receiver: %v", req.SignatureErr)
	}
	// Checked once more with the library directly, as a receiver would.
	wh, err := standardwebhooks.NewWebhook(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(req.Body, req.Header); err != nil {
		t.Fatalf("standard-webhooks Verify: %v", err)
	}
	if got := req.Header.Get("webhook-id"); got != ev.ID {
		t.Errorf("webhook-id = %q, want the event id %q", got, ev.ID)
	}
	if got := req.Header.Get("X-Herald-Token"); got != testToken {
		t.Errorf("X-Herald-Token = %q", got)
	}
	if !strings.HasPrefix(req.Header.Get("webhook-signature"), "v1,") {
		t.Errorf("webhook-signature = %q", req.Header.Get("webhook-signature"))
	}
	if att.Request.Headers["webhook-signature"] != channel.Masked || att.Request.Headers["X-Herald-Token"] != channel.Masked {
		t.Errorf("attempt headers not masked: %v", att.Request.Headers)
	}
	if att.Request.Headers["webhook-id"] != ev.ID || att.Request.Headers["webhook-timestamp"] == "" {
		t.Errorf("attempt lacks webhook-id/timestamp: %v", att.Request.Headers)
	}

	// A receiver with another secret refuses it: the signature depends
	// on the key.
	other := testsupport.NewReceiver(t)
	if err := other.RequireSignature("whsec_" + base64.StdEncoding.EncodeToString([]byte("another-secret-of-24-bytes!"))); err != nil {
		t.Fatal(err)
	}
	_, err = newSender(t, map[string]any{"url": other.URL(), "secret": testSecret}, deps()).Send(context.Background(), ev)
	if ce := channeltest.AsError(t, err); ce.Retry || !strings.Contains(ce.Error(), "401") {
		t.Errorf("wrong-secret delivery: %v retry=%v", ce, ce.Retry)
	}
}

// TestSignatureVector pins the signature to the library's own signing for
// a fixed clock, so a change of encoding or separator cannot slip by.
func TestSignatureVector(t *testing.T) {
	t.Parallel()
	rcv := testsupport.NewReceiver(t)
	at := time.Unix(1700000000, 0)
	d := deps()
	d.Now = func() time.Time { return at }
	ev := sampleEvent()
	if _, err := newSender(t, map[string]any{"url": rcv.URL(), "secret": testSecret}, d).Send(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	req := rcv.WaitRequests(t, 1)[0]
	if got := req.Header.Get("webhook-timestamp"); got != "1700000000" {
		t.Errorf("webhook-timestamp = %q", got)
	}
	wh, _ := standardwebhooks.NewWebhook(testSecret)
	want, err := wh.Sign(ev.ID, at, req.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got := req.Header.Get("webhook-signature"); got != want {
		t.Errorf("webhook-signature = %q, want %q", got, want)
	}
	if err := wh.VerifyIgnoringTimestamp(req.Body, req.Header); err != nil {
		t.Error(err)
	}
	// The timestamp is old, so a receiver enforcing tolerance refuses it.
	if err := req.Verify(testSecret); !errors.Is(err, standardwebhooks.ErrMessageTooOld) {
		t.Errorf("Verify of a 2023 timestamp: %v", err)
	}
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(testSecret, "whsec_"))
	if got := custom.Sign(key, ev.ID, at.Unix(), req.Body); got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
}

func TestStatusCodes(t *testing.T) {
	t.Parallel()
	type want struct {
		ok, retry, disable bool
		text               string
	}
	tests := []struct {
		status int
		want   want
	}{
		{200, want{ok: true}},
		{201, want{ok: true}},
		{202, want{ok: true}},
		{204, want{ok: true}},
		{301, want{text: "redirect"}},
		{302, want{text: "redirect"}},
		{307, want{text: "redirect"}},
		{308, want{text: "redirect"}},
		{400, want{text: "HTTP 400"}},
		{401, want{text: "HTTP 401"}},
		{403, want{text: "HTTP 403"}},
		{404, want{text: "HTTP 404"}},
		{405, want{text: "HTTP 405"}},
		{413, want{text: "HTTP 413"}},
		{422, want{text: "HTTP 422"}},
		{408, want{retry: true, text: "HTTP 408"}},
		{429, want{retry: true, text: "HTTP 429"}},
		{500, want{retry: true, text: "HTTP 500"}},
		{502, want{retry: true, text: "HTTP 502"}},
		{503, want{retry: true, text: "HTTP 503"}},
		{504, want{retry: true, text: "HTTP 504"}},
		{410, want{disable: true, text: "410"}},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			t.Parallel()
			rcv := testsupport.NewReceiver(t)
			body := `{"answer":"` + http.StatusText(tt.status) + `"}`
			if tt.status == 204 {
				body = ""
			}
			// Redirects point back at the receiver: following one would
			// show as a second request.
			rcv.Script(testsupport.Reply{Status: tt.status, Body: body, Header: map[string]string{"Location": rcv.URL() + "/elsewhere"}})
			att, err := newSender(t, map[string]any{"url": rcv.URL() + "/hook"}, deps()).Send(context.Background(), sampleEvent())
			if att.StatusCode != tt.status {
				t.Errorf("attempt status %d", att.StatusCode)
			}
			if att.Response != body {
				t.Errorf("attempt response %q, want %q", att.Response, body)
			}
			if n := rcv.Count(); n != 1 {
				t.Errorf("%d requests; redirects must not be followed", n)
			}
			if tt.want.ok {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				return
			}
			ce := channeltest.AsError(t, err)
			if ce.Retry != tt.want.retry || ce.Disable != tt.want.disable {
				t.Errorf("retry=%v disable=%v, want %+v (%v)", ce.Retry, ce.Disable, tt.want, ce)
			}
			if !strings.HasPrefix(ce.Error(), "custom: ") || !strings.Contains(ce.Error(), tt.want.text) {
				t.Errorf("error %q lacks %q", ce, tt.want.text)
			}
			if ce.RetryAfter != 0 {
				t.Errorf("RetryAfter %v without a Retry-After header", ce.RetryAfter)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		status   int
		header   string
		min, max time.Duration
	}{
		{"429 seconds", 429, "7", 7 * time.Second, 7 * time.Second},
		{"503 seconds", 503, "120", 2 * time.Minute, 2 * time.Minute},
		{"503 date", 503, time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat), 80 * time.Second, 91 * time.Second},
		{"408 garbage", 408, "soon", 0, 0},
		{"429 past date", 429, time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat), 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rcv := testsupport.NewReceiver(t)
			rcv.Script(testsupport.Reply{Status: tt.status, RetryAfter: tt.header})
			_, err := newSender(t, map[string]any{"url": rcv.URL()}, deps()).Send(context.Background(), sampleEvent())
			ce := channeltest.AsError(t, err)
			if !ce.Retry {
				t.Errorf("not retryable: %v", ce)
			}
			if ce.RetryAfter < tt.min || ce.RetryAfter > tt.max {
				t.Errorf("RetryAfter = %v, want %v..%v", ce.RetryAfter, tt.min, tt.max)
			}
		})
	}
}

func TestSameWebhookIDOnRetries(t *testing.T) {
	t.Parallel()
	rcv := testsupport.NewReceiver(t)
	if err := rcv.RequireSignature(testSecret); err != nil {
		t.Fatal(err)
	}
	rcv.Script(testsupport.Reply{Status: 500}, testsupport.Reply{Status: 503, RetryAfter: "1"})
	s := newSender(t, map[string]any{"url": rcv.URL(), "secret": testSecret}, deps())
	ev := sampleEvent()
	for i, wantErr := range []bool{true, true, false} {
		_, err := s.Send(context.Background(), ev)
		if (err != nil) != wantErr {
			t.Fatalf("attempt %d: err = %v", i+1, err)
		}
		if err != nil && !channeltest.AsError(t, err).Retry {
			t.Fatalf("attempt %d not retryable: %v", i+1, err)
		}
	}
	reqs := rcv.WaitRequests(t, 3)
	for i, r := range reqs {
		if got := r.Header.Get("webhook-id"); got != ev.ID {
			t.Errorf("attempt %d: webhook-id %q, want %q", i+1, got, ev.ID)
		}
		if r.SignatureErr != nil {
			t.Errorf("attempt %d: %v", i+1, r.SignatureErr)
		}
		if string(r.Body) != string(reqs[0].Body) {
			t.Errorf("attempt %d: body differs from the first", i+1)
		}
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	t.Run("config timeout", func(t *testing.T) {
		t.Parallel()
		rcv := testsupport.NewReceiver(t)
		rcv.SetDefault(testsupport.Reply{Hang: true})
		s := newSender(t, map[string]any{"url": rcv.URL(), "timeout": 1}, deps())
		start := time.Now()
		att, err := s.Send(context.Background(), sampleEvent())
		took := time.Since(start)
		ce := channeltest.AsError(t, err)
		if !ce.Retry || !strings.Contains(ce.Error(), "timeout") {
			t.Errorf("error %v retry=%v, want a retryable timeout", ce, ce.Retry)
		}
		if took < 900*time.Millisecond || took > 5*time.Second {
			t.Errorf("gave up after %v, want about the 1s timeout", took)
		}
		if att.Request.URL == "" || att.StatusCode != 0 {
			t.Errorf("attempt %+v", att)
		}
	})
	t.Run("caller deadline wins", func(t *testing.T) {
		t.Parallel()
		rcv := testsupport.NewReceiver(t)
		rcv.SetDefault(testsupport.Reply{Hang: true})
		s := newSender(t, map[string]any{"url": rcv.URL(), "timeout": 60}, deps())
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := s.Send(ctx, sampleEvent())
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("took %v despite a 100ms deadline", took)
		}
		if !channeltest.AsError(t, err).Retry {
			t.Errorf("not retryable: %v", err)
		}
	})
	t.Run("slow but in time", func(t *testing.T) {
		t.Parallel()
		rcv := testsupport.NewReceiver(t)
		rcv.Script(testsupport.Reply{Delay: 50 * time.Millisecond})
		if _, err := newSender(t, map[string]any{"url": rcv.URL(), "timeout": 5}, deps()).Send(context.Background(), sampleEvent()); err != nil {
			t.Error(err)
		}
	})
}

func TestNetworkErrors(t *testing.T) {
	t.Parallel()
	t.Run("reset", func(t *testing.T) {
		t.Parallel()
		rcv := testsupport.NewReceiver(t)
		rcv.Script(testsupport.Reply{Reset: true})
		_, err := newSender(t, map[string]any{"url": rcv.URL()}, deps()).Send(context.Background(), sampleEvent())
		if ce := channeltest.AsError(t, err); !ce.Retry {
			t.Errorf("reset not retryable: %v", ce)
		}
	})
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		// A port nothing listens on any more.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		_, err = newSender(t, map[string]any{"url": "http://" + addr + "/"}, deps()).Send(context.Background(), sampleEvent())
		if ce := channeltest.AsError(t, err); !ce.Retry {
			t.Errorf("connection refused not retryable: %v", ce)
		}
	})
}

func TestEgressRefusedAtConnect(t *testing.T) {
	t.Parallel()
	rcv := testsupport.NewReceiver(t)
	strict, _ := egress.New(nil)
	d := deps()
	d.HTTP = strict.Client()
	_, err := newSender(t, map[string]any{"url": rcv.URL()}, d).Send(context.Background(), sampleEvent())
	ce := channeltest.AsError(t, err)
	if ce.Retry || !strings.Contains(ce.Error(), "egress refused") {
		t.Errorf("loopback under the default policy: %v retry=%v", ce, ce.Retry)
	}
	if rcv.Count() != 0 {
		t.Error("the request reached a refused address")
	}
}

func TestNoSecretInAttemptOrError(t *testing.T) {
	t.Parallel()
	keyB64 := strings.TrimPrefix(testSecret, "whsec_")
	// A receiver that echoes what it got, as error pages sometimes do.
	for _, status := range []int{200, 400, 500} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			t.Parallel()
			rcv := testsupport.NewReceiver(t)
			rcv.SetDefault(testsupport.Reply{Status: status, Body: `{"token":"` + testToken + `","secret":"` + testSecret + `","key":"` + keyB64 + `"}`})
			s := newSender(t, map[string]any{"url": rcv.URL(), "secret": testSecret, "token": testToken}, deps())
			att, err := s.Send(context.Background(), sampleEvent())
			sig := rcv.WaitRequests(t, 1)[0].Header.Get("webhook-signature")
			blob, _ := json.Marshal(att)
			texts := []string{string(blob)}
			if err != nil {
				texts = append(texts, err.Error())
			}
			for _, text := range texts {
				for _, secret := range []string{testToken, testSecret, keyB64, sig, strings.TrimPrefix(sig, "v1,")} {
					if strings.Contains(text, secret) {
						t.Errorf("%q leaks into %s", secret, text)
					}
				}
			}
		})
	}
}

func TestUserHeadersMaskedInAttempt(t *testing.T) {
	t.Parallel()
	rcv := testsupport.NewReceiver(t)
	s := newSender(t, map[string]any{"url": rcv.URL(), "headers": map[string]string{"Authorization": "Bearer abc.def", "X-Team": "ops"}}, deps())
	att, err := s.Send(context.Background(), sampleEvent())
	if err != nil {
		t.Fatal(err)
	}
	if got := rcv.WaitRequests(t, 1)[0].Header.Get("Authorization"); got != "Bearer abc.def" {
		t.Errorf("Authorization sent as %q", got)
	}
	if att.Request.Headers["Authorization"] != channel.Masked || att.Request.Headers["X-Team"] != "ops" {
		t.Errorf("attempt headers %v", att.Request.Headers)
	}
}

func TestResponseTruncated(t *testing.T) {
	t.Parallel()
	rcv := testsupport.NewReceiver(t)
	rcv.Script(testsupport.Reply{Status: 500, Body: strings.Repeat("x", channel.MaxResponse*2)})
	att, err := newSender(t, map[string]any{"url": rcv.URL()}, deps()).Send(context.Background(), sampleEvent())
	if err == nil {
		t.Fatal("500 accepted")
	}
	if len(att.Response) != channel.MaxResponse {
		t.Errorf("response kept %d bytes, want %d", len(att.Response), channel.MaxResponse)
	}
	if len(err.Error()) > 1000 {
		t.Errorf("error carries the whole body (%d bytes)", len(err.Error()))
	}
}

// TestManyDeliveries pushes concurrent deliveries through one receiver
// with recording off, as the delivery benchmark does, under -race.
func TestManyDeliveries(t *testing.T) {
	t.Parallel()
	const n = 2000
	rcv := testsupport.NewReceiver(t)
	rcv.SetRecording(false)
	s := newSender(t, map[string]any{"url": rcv.URL(), "secret": testSecret, "token": testToken}, deps())
	ev := sampleEvent()
	sem := make(chan struct{}, 32)
	errs := make(chan error, n)
	for range n {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			if _, err := s.Send(context.Background(), ev); err != nil {
				errs <- err
			}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rcv.Wait(ctx, n); err != nil {
		t.Fatal(err)
	}
	for range cap(sem) { // every sender has returned
		sem <- struct{}{}
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := len(rcv.Requests()); got != 0 {
		t.Errorf("%d requests recorded with recording off", got)
	}
	if got := rcv.Count(); got != n {
		t.Errorf("Count() = %d, want %d", got, n)
	}
}

func BenchmarkSend(b *testing.B) {
	rcv := testsupport.NewReceiver(b)
	rcv.SetRecording(false)
	s := newSender(b, map[string]any{"url": rcv.URL(), "secret": testSecret, "token": testToken}, deps())
	ev := sampleEvent()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Send(context.Background(), ev); err != nil {
				b.Error(err)
			}
		}
	})
}
