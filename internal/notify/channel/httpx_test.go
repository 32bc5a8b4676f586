package channel_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/herald-release/herald/internal/egress"
	"github.com/herald-release/herald/internal/notify/channel"
	"github.com/herald-release/herald/internal/notify/channel/channeltest"
	"github.com/herald-release/herald/internal/validate"
)

func TestMaskURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"https://oapi.dingtalk.com/robot/send?access_token=abc123", "https://oapi.dingtalk.com/robot/send?access_token=******"},
		{"https://oapi.dingtalk.com/robot/send?access_token=abc&timestamp=17&sign=x%2By", "https://oapi.dingtalk.com/robot/send?access_token=******&timestamp=17&sign=******"},
		{"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=******"},
		{"https://qyapi.weixin.qq.com/cgi-bin/gettoken?corpid=ww1&corpsecret=s3cr3t", "https://qyapi.weixin.qq.com/cgi-bin/gettoken?corpid=ww1&corpsecret=******"},
		{"https://qyapi.weixin.qq.com/cgi-bin/message/send?access_token=T", "https://qyapi.weixin.qq.com/cgi-bin/message/send?access_token=******"},
		{"https://open.feishu.cn/open-apis/bot/v2/hook/0c5e-4b1d-9f", "https://open.feishu.cn/open-apis/bot/v2/hook/******"},
		{"https://user:pass@example.com/x?token=t&keep=1", "https://******@example.com/x?token=******&keep=1"},
		{"https://example.com/plain?a=1", "https://example.com/plain?a=1"},
		{"not a url", "******"},
		{"://bad", "******"},
	}
	for _, tt := range tests {
		if got := channel.MaskURL(tt.in); got != tt.want {
			t.Errorf("MaskURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 6, 20, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"120", 2 * time.Minute},
		{"0", 0},
		{"-5", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"99999999", 24 * time.Hour},
	}
	for _, tt := range tests {
		if got := channel.ParseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

const testToken = "tok-4b7e1c2d9a8f"

func TestDoClassifiesAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		handler     http.HandlerFunc
		wantErr     bool
		wantRetry   bool
		wantDisable bool
		wantWait    time.Duration
		wantInErr   string
	}{
		{name: "200", handler: func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"ok":true}`)) }},
		{name: "204", handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }},
		{name: "302", wantErr: true, wantInErr: "redirect to https://elsewhere.example/hook/****** not followed", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", "https://elsewhere.example/hook/abcdef")
			w.WriteHeader(302)
		}},
		{name: "408", wantErr: true, wantRetry: true, handler: status(408, "")},
		{name: "429 seconds", wantErr: true, wantRetry: true, wantWait: 7 * time.Second, handler: status(429, "7")},
		{name: "503 date", wantErr: true, wantRetry: true, wantInErr: "HTTP 503", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat))
			w.WriteHeader(503)
		}},
		{name: "500", wantErr: true, wantRetry: true, handler: status(500, "")},
		{name: "410", wantErr: true, wantDisable: true, wantInErr: "disabled", handler: status(410, "")},
		{name: "400", wantErr: true, wantInErr: "HTTP 400", handler: status(400, "")},
		{name: "404 echoing the token", wantErr: true, handler: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(404)
			w.Write([]byte("no robot " + testToken))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(tt.handler)
			t.Cleanup(srv.Close)
			att, _, err := channel.Do(context.Background(), egress.AllowAll().Client(), channel.HTTPRequest{
				Channel: "test",
				URL:     srv.URL + "/send?access_token=" + testToken,
				Headers: map[string]string{"X-Herald-Token": testToken, "User-Agent": "Herald/test"},
				Body:    []byte(`{"hello":"` + testToken + `"}`),
				Secrets: []string{testToken},
			})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			channeltest.AssertNoSecret(t, att, err, testToken)
			if att.Request.Headers["User-Agent"] != "Herald/test" || att.Request.Headers["X-Herald-Token"] != channel.Masked {
				t.Errorf("recorded headers %v", att.Request.Headers)
			}
			if !strings.HasSuffix(att.Request.URL, "/send?access_token=******") || att.Request.Method != "POST" {
				t.Errorf("recorded %s %s", att.Request.Method, att.Request.URL)
			}
			if err == nil {
				return
			}
			ce := channel.Classify(err)
			if ce.Retry != tt.wantRetry || ce.Disable != tt.wantDisable {
				t.Errorf("retry %v disable %v, want %v %v (%v)", ce.Retry, ce.Disable, tt.wantRetry, tt.wantDisable, err)
			}
			if tt.wantWait != 0 && ce.RetryAfter != tt.wantWait {
				t.Errorf("RetryAfter %v, want %v", ce.RetryAfter, tt.wantWait)
			}
			if tt.name == "503 date" && (ce.RetryAfter < 59*time.Minute || ce.RetryAfter > time.Hour) {
				t.Errorf("RetryAfter from an HTTP date: %v", ce.RetryAfter)
			}
			if !strings.HasPrefix(err.Error(), "test: ") || !strings.Contains(err.Error(), tt.wantInErr) {
				t.Errorf("error %q, want it to start with the channel and contain %q", err, tt.wantInErr)
			}
			if att.StatusCode == 0 {
				t.Error("status code not recorded")
			}
		})
	}
}

func status(code int, retryAfter string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(code)
	}
}

func TestDoTransportFailures(t *testing.T) {
	t.Parallel()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	t.Run("connection refused is retried", func(t *testing.T) {
		t.Parallel()
		att, _, err := channel.Do(context.Background(), egress.AllowAll().Client(), channel.HTTPRequest{
			Channel: "test", URL: closed.URL + "/send?key=" + testToken, Body: []byte("{}"),
		})
		if ce := channel.Classify(err); ce == nil || !ce.Retry {
			t.Fatalf("err = %v, want retryable", err)
		}
		channeltest.AssertNoSecret(t, att, err, testToken)
	})
	t.Run("egress refusal is permanent", func(t *testing.T) {
		t.Parallel()
		strict, _ := egress.New(nil)
		srv := httptest.NewServer(http.NotFoundHandler())
		t.Cleanup(srv.Close)
		att, _, err := channel.Do(context.Background(), strict.Client(), channel.HTTPRequest{
			Channel: "test", URL: srv.URL + "/send?key=" + testToken, Body: []byte("{}"),
		})
		ce := channel.Classify(err)
		if ce == nil || ce.Retry || !egress.IsRefused(err) || !strings.Contains(err.Error(), "HERALD_EGRESS_ALLOW") {
			t.Fatalf("err = %v, want a permanent refusal naming HERALD_EGRESS_ALLOW", err)
		}
		channeltest.AssertNoSecret(t, att, err, testToken)
	})
	t.Run("timeout is retried", func(t *testing.T) {
		t.Parallel()
		block := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-block:
			case <-r.Context().Done():
			}
		}))
		t.Cleanup(func() { close(block); srv.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, _, err := channel.Do(ctx, egress.AllowAll().Client(), channel.HTTPRequest{Channel: "test", URL: srv.URL})
		if ce := channel.Classify(err); ce == nil || !ce.Retry || !strings.Contains(err.Error(), "timeout") {
			t.Fatalf("err = %v, want a retryable timeout", err)
		}
	})
}

func TestDoKeepsAtMostMaxResponse(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", channel.MaxResponse*3)))
	}))
	t.Cleanup(srv.Close)
	att, body, err := channel.Do(context.Background(), egress.AllowAll().Client(), channel.HTTPRequest{Channel: "test", URL: srv.URL, Method: "GET"})
	if err != nil {
		t.Fatal(err)
	}
	if len(att.Response) != channel.MaxResponse || len(body) != channel.MaxResponse {
		t.Errorf("kept %d/%d bytes, want %d", len(att.Response), len(body), channel.MaxResponse)
	}
}

func TestConfigReader(t *testing.T) {
	t.Parallel()
	deps := channel.Deps{CheckURL: func(u string) error {
		if strings.Contains(u, "169.254") {
			return errors.New("egress refused: 169.254.169.254 is a link-local address")
		}
		return nil
	}}
	tests := []struct {
		name string
		cfg  string
		want validate.Errors
	}{
		{"fine", `{"url":"https://example.com/x","n":3,"on":true,"list":["a"],"lang":"en"}`, nil},
		{"not an object", `[1]`, validate.Errors{{Field: "", Message: "the config must be a JSON object"}}},
		{"types", `{"url":5,"n":"3","on":"yes","list":["a",2,""],"lang":"fr","extra":1}`, validate.Errors{
			{Field: "url", Message: "must be a string"},
			{Field: "n", Message: "must be an integer"},
			{Field: "on", Message: "must be true or false"},
			{Field: "list[1]", Message: "must be a non-empty string"},
			{Field: "list[2]", Message: "must be a non-empty string"},
			{Field: "lang", Message: `must be "zh" or "en"`},
			{Field: "extra", Message: "unknown field"},
		}},
		{"missing url", `{}`, validate.Errors{{Field: "url", Message: "is required"}}},
		{"bad scheme", `{"url":"ftp://example.com"}`, validate.Errors{{Field: "url", Message: "must be an http:// or https:// URL with a host"}}},
		{"egress", `{"url":"http://169.254.169.254/latest"}`, validate.Errors{{Field: "url", Message: "egress refused: 169.254.169.254 is a link-local address"}}},
		{"fractional int", `{"url":"https://e.com","n":1.5}`, validate.Errors{{Field: "n", Message: "must be an integer"}}},
		{"list not a list", `{"url":"https://e.com","list":"a"}`, validate.Errors{{Field: "list", Message: "must be a list of strings"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := channel.ReadConfig(json.RawMessage(tt.cfg))
			r.URL("url", true, deps)
			r.Int("n")
			r.Bool("on")
			r.Strings("list", 10)
			r.Lang()
			if got := r.Done(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}
