package feishu_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/herald-release/herald/internal/egress"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify/channel"
	"github.com/herald-release/herald/internal/notify/channel/channeltest"
	"github.com/herald-release/herald/internal/notify/channel/feishu"
	"github.com/herald-release/herald/internal/testsupport"
	"github.com/herald-release/herald/internal/validate"
)

const secret = "SEC-feishu-9f3a7c1e2b"

func deps() channel.Deps {
	return channel.Deps{HTTP: egress.AllowAll().Client(), Version: "1.0.0", PublicURL: "https://herald.example.com"}
}

func sender(t *testing.T, cfg map[string]any, d channel.Deps) channel.Sender {
	t.Helper()
	return channeltest.Sender(t, feishu.Kind, cfg, d)
}

func taskEvent(eventType string) *event.Envelope {
	return &event.Envelope{
		ID: "evt_1", EventType: eventType, ObjectKind: event.KindReleaseTask, Action: eventType,
		Project:     &event.ProjectRef{ID: "my-app", Name: "My App"},
		Version:     &event.VersionRef{ID: "v1", Name: "v1.2.3"},
		Task:        &event.TaskRef{ID: "t1", Type: "deploy", Strategy: "canary", Status: "running"},
		Deployment:  &event.Deployment{TotalCount: 10, CanaryCount: 1, CompletedCount: 1, Hosts: []string{"h1"}},
		Environment: "production",
		Duration:    "30s",
		URL:         "https://herald.example.com/tasks/t1",
	}
}

func TestSignMatchesDesignVector(t *testing.T) {
	t.Parallel()
	const want = "fiWS2+gh28DOydAv7hzONH/mDn9+b1Y4Y5ivXWXy8vA="
	if got := feishu.Sign(1700000000, "secret"); got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
	if got := testsupport.FeishuSign(1700000000, "secret"); got != want {
		t.Errorf("fake's FeishuSign = %q, want %q", got, want)
	}
}

func TestSignedCardReachesFakeAtVectorTime(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewFeishu(t, "secret")
	at := func() time.Time { return time.Unix(1700000000, 0) }
	fake.SetNow(at)
	d := deps()
	d.Now = at
	s := sender(t, map[string]any{"webhook_url": fake.WebhookURL(), "sign_secret": "secret"}, d)
	if _, err := s.Send(context.Background(), taskEvent(event.CanaryStarted)); err != nil {
		t.Fatal(err)
	}
	m := fake.WaitMessages(t, 1)[0]
	if m.Timestamp != "1700000000" || m.Sign != "fiWS2+gh28DOydAv7hzONH/mDn9+b1Y4Y5ivXWXy8vA=" {
		t.Errorf("timestamp %q sign %q", m.Timestamp, m.Sign)
	}
}

func TestSendCard(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewFeishu(t, secret)
	s := sender(t, map[string]any{"webhook_url": fake.WebhookURL(), "sign_secret": secret}, deps())
	att, err := s.Send(context.Background(), taskEvent(event.CanaryStarted))
	if err != nil {
		t.Fatal(err)
	}
	m := fake.WaitMessages(t, 1)[0]
	if m.MsgType != "interactive" || m.Title != "发布通知：金丝雀发布开始" || m.Template != "blue" {
		t.Errorf("card %q %q %q", m.MsgType, m.Title, m.Template)
	}
	for _, want := range []string{"**项目**: My App", "**版本**: v1.2.3", "**状态**: 发布中", "**环境**: production", "**进度**: 1/10", "**主机**: h1", "**耗时**: 30s"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("card text lacks %q:\n%s", want, m.Text)
		}
	}
	if !reflect.DeepEqual(m.ButtonURL, []string{"https://herald.example.com/tasks/t1"}) {
		t.Errorf("buttons %v", m.ButtonURL)
	}
	if att.StatusCode != 200 || att.Request.URL != fake.URL()+"/open-apis/bot/v2/hook/******" {
		t.Errorf("attempt %d %s", att.StatusCode, att.Request.URL)
	}
	if att.Request.Headers["User-Agent"] != "Herald/1.0.0" {
		t.Errorf("User-Agent %q", att.Request.Headers["User-Agent"])
	}
	var logged feishu.Message
	if err := json.Unmarshal([]byte(att.Request.Body), &logged); err != nil || logged.Sign != channel.Masked || logged.Timestamp == "" {
		t.Errorf("recorded body must show the timestamp and mask the sign: %s", att.Request.Body)
	}
	channeltest.AssertNoSecret(t, att, err, secret, fake.HookID(), m.Sign)
}

func TestRenderEventKinds(t *testing.T) {
	t.Parallel()
	plan := &event.Envelope{
		EventType: event.PlanDenied, ObjectKind: event.KindReleasePlan, Action: event.PlanDenied,
		ReleasePlan: json.RawMessage(`{"name":"Sprint 42","status":"denied","manager":"bob"}`),
	}
	project := &event.Envelope{
		EventType: event.ProjectCreated, ObjectKind: event.KindProject, Action: "create",
		Object: json.RawMessage(`{"id":"my-app","name":"My App"}`),
	}
	tests := []struct {
		name, lang     string
		ev             *event.Envelope
		title, color   string
		text, noButton bool
		want           []string
	}{
		{name: "task", lang: "en", ev: taskEvent(event.FullCompleted), title: "Release: release completed", color: "green",
			want: []string{"**Project**: My App", "**Strategy**: canary"}},
		{name: "failed", lang: "zh", ev: taskEvent(event.ReleaseFailed), title: "发布通知：发布失败", color: "red",
			want: []string{"**项目**: My App"}},
		{name: "plan", lang: "zh", ev: plan, title: "发布通知：发布计划被拒绝", color: "red", noButton: true,
			want: []string{"**发布计划**: Sprint 42", "**状态**: 已拒绝", "**负责人**: bob"}},
		{name: "object", lang: "en", ev: project, title: "Release: project created", color: "grey", noButton: true,
			want: []string{"**Object**: project create", "**Name**: My App"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := feishu.Render(channel.Summarize(tt.ev, tt.lang), tt.lang, nil, false)
			if m.Card.Header.Title.Content != tt.title || m.Card.Header.Template != tt.color {
				t.Errorf("header %q %q", m.Card.Header.Title.Content, m.Card.Header.Template)
			}
			text := m.Card.Elements[0].Text
			if text == nil || text.Tag != "lark_md" {
				t.Fatalf("first element must be a lark_md div: %+v", m.Card.Elements[0])
			}
			for _, w := range tt.want {
				if !strings.Contains(text.Content, w) {
					t.Errorf("lark_md lacks %q:\n%s", w, text.Content)
				}
			}
			if hasButton := len(m.Card.Elements) == 2; hasButton == tt.noButton {
				t.Errorf("button present %v, want %v", hasButton, !tt.noButton)
			}
		})
	}
}

func TestMentions(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewFeishu(t, "")
	s := sender(t, map[string]any{"webhook_url": fake.WebhookURL(), "at_user_ids": []string{"ou_a", "ou_b"}, "at_all": true}, deps())
	ev := taskEvent(event.ReleaseFailed)
	ev.Project.Name = `<at id=all></at> & co`
	if _, err := s.Send(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	text := fake.WaitMessages(t, 1)[0].Text
	if !strings.HasSuffix(text, "\n"+`<at user_id="ou_a"></at> <at user_id="ou_b"></at> <at id=all></at>`) {
		t.Errorf("mentions must end the lark_md:\n%s", text)
	}
	if strings.Count(text, "<at id=all>") != 1 || !strings.Contains(text, "&lt;at id=all&gt;&lt;/at&gt; &amp; co") {
		t.Errorf("a project name must not mention anyone:\n%s", text)
	}
}

func TestOversizedMessageIsShortened(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewFeishu(t, "")
	s := sender(t, map[string]any{"webhook_url": fake.WebhookURL(), "at_all": true}, deps())
	ev := taskEvent(event.CanaryStarted)
	ev.Version.Name = strings.Repeat("版本<&>", 3000) // ~30 KB before escaping
	if _, err := s.Send(context.Background(), ev); err != nil {
		t.Fatalf("an oversized message must be shortened, not refused: %v", err)
	}
	m := fake.WaitMessages(t, 1)[0]
	if len(m.Body) > feishu.MaxBody || !strings.Contains(m.Text, "…") || !strings.HasSuffix(m.Text, "<at id=all></at>") {
		t.Errorf("%d bytes; text ends %q", len(m.Body), m.Text[max(0, len(m.Text)-40):])
	}
}

func TestPlatformCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code      int
		msg       string
		retry     bool
		wantInErr string
	}{
		{11232, "frequency limited psm[lark.oapi.app_platform_runtime]appID[1]", true, "will retry"},
		{19021, "sign match fail or timestamp is not within one hour from current time", false, "(19021): check sign_secret"},
		{19024, "Key Words Not Found", false, "(19024): the robot only accepts messages with its custom keywords"},
		{19022, "Ip Not Allowed", false, "IP allowlist"},
		{9499, "Bad Request", false, "(9499)"},
		{19001, "param invalid: incoming webhook access token invalid", false, "check webhook_url"},
		{99991, "something new", false, "feishu: something new (99991)"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.code), func(t *testing.T) {
			t.Parallel()
			fake := testsupport.NewFeishu(t, secret)
			fake.FailNext(1, tt.code, tt.msg)
			s := sender(t, map[string]any{"webhook_url": fake.WebhookURL(), "sign_secret": secret}, deps())
			att, err := s.Send(context.Background(), taskEvent(event.CanaryStarted))
			var ce *channel.Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *channel.Error", err)
			}
			if ce.Retry != tt.retry || ce.Code != fmt.Sprint(tt.code) || ce.Disable {
				t.Errorf("retry %v code %q disable %v, want %v %d", ce.Retry, ce.Code, ce.Disable, tt.retry, tt.code)
			}
			if !strings.HasPrefix(err.Error(), "feishu: ") || !strings.Contains(err.Error(), tt.wantInErr) {
				t.Errorf("error %q lacks %q", err, tt.wantInErr)
			}
			if !strings.Contains(att.Response, fmt.Sprint(tt.code)) {
				t.Errorf("the platform's answer belongs in history: %q", att.Response)
			}
			channeltest.AssertNoSecret(t, att, err, secret, fake.HookID())
			if len(fake.Messages()) != 0 {
				t.Error("a failed request was recorded as delivered")
			}
		})
	}
}

func TestFakeChecksSignatureAndClock(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		secret string
		now    func() time.Time
	}{
		{"wrong secret", "SEC-some-other-secret", nil},
		{"clock two hours behind", secret, func() time.Time { return time.Now().Add(-2 * time.Hour) }},
		{"no secret configured", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := testsupport.NewFeishu(t, secret)
			d := deps()
			d.Now = tt.now
			cfg := map[string]any{"webhook_url": fake.WebhookURL()}
			if tt.secret != "" {
				cfg["sign_secret"] = tt.secret
			}
			att, err := sender(t, cfg, d).Send(context.Background(), taskEvent(event.CanaryStarted))
			ce := channel.Classify(err)
			if ce == nil || ce.Retry || ce.Code != "19021" || !strings.Contains(err.Error(), "check sign_secret") {
				t.Fatalf("err = %v, want a permanent 19021 saying to check sign_secret", err)
			}
			channeltest.AssertNoSecret(t, att, err, tt.secret, secret, fake.HookID())
		})
	}
}

func TestFakeRateLimit(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewFeishu(t, "")
	frozen := time.Now()
	fake.SetNow(func() time.Time { return frozen })
	s := sender(t, map[string]any{"webhook_url": fake.WebhookURL()}, deps())
	for i := range 5 {
		if _, err := s.Send(context.Background(), taskEvent(event.CanaryStarted)); err != nil {
			t.Fatalf("message %d: %v", i+1, err)
		}
	}
	_, err := s.Send(context.Background(), taskEvent(event.CanaryStarted))
	if ce := channel.Classify(err); ce == nil || !ce.Retry || ce.Code != "11232" {
		t.Fatalf("6th message in a second: err = %v, want retryable 11232", err)
	}
	key, limits := s.RateLimits()
	if strings.Contains(key, fake.HookID()) || strings.Contains(key, fake.URL()) || !strings.HasPrefix(key, "feishu:") {
		t.Errorf("rate key %q must not hold the webhook", key)
	}
	if !reflect.DeepEqual(limits, []channel.Limit{{Count: 5, Per: time.Second}, {Count: 100, Per: time.Minute}}) {
		t.Errorf("limits %v", limits)
	}
}

func TestHTTPFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status         int
		retry, disable bool
	}{
		{http.StatusServiceUnavailable, true, false},
		{http.StatusTooManyRequests, true, false},
		{http.StatusGone, false, true},
		{http.StatusNotFound, false, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			t.Parallel()
			fake := testsupport.NewFeishu(t, "")
			fake.FailNextStatus(1, tt.status)
			att, err := sender(t, map[string]any{"webhook_url": fake.WebhookURL()}, deps()).Send(context.Background(), taskEvent(event.CanaryStarted))
			ce := channel.Classify(err)
			if ce == nil || ce.Retry != tt.retry || ce.Disable != tt.disable {
				t.Fatalf("err = %v (%+v), want retry %v disable %v", err, ce, tt.retry, tt.disable)
			}
			channeltest.AssertNoSecret(t, att, err, fake.HookID())
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	d := channel.Deps{CheckURL: func(u string) error {
		if strings.Contains(u, "127.0.0.1") {
			return errors.New("egress refused: 127.0.0.1 is a loopback, link-local or metadata address; add it to HERALD_EGRESS_ALLOW if it is meant")
		}
		return nil
	}}
	const hook = "https://open.feishu.cn/open-apis/bot/v2/hook/0c5e"
	tests := []struct {
		name string
		cfg  string
		want validate.Errors
	}{
		{"minimal", `{"webhook_url":"` + hook + `"}`, nil},
		{"full", `{"webhook_url":"` + hook + `","sign_secret":"s","at_user_ids":["ou_1"],"at_all":true,"lang":"en"}`, nil},
		{"missing url", `{}`, validate.Errors{{Field: "webhook_url", Message: "is required"}}},
		{"not http", `{"webhook_url":"ftp://open.feishu.cn/x"}`, validate.Errors{{Field: "webhook_url", Message: "must be an http:// or https:// URL with a host"}}},
		{"egress", `{"webhook_url":"http://127.0.0.1/open-apis/bot/v2/hook/x"}`, validate.Errors{{Field: "webhook_url", Message: "egress refused: 127.0.0.1 is a loopback, link-local or metadata address; add it to HERALD_EGRESS_ALLOW if it is meant"}}},
		{"types", `{"webhook_url":"` + hook + `","sign_secret":1,"at_user_ids":["ou_1",""],"at_all":"yes"}`, validate.Errors{
			{Field: "sign_secret", Message: "must be a string"},
			{Field: "at_user_ids[1]", Message: "must be a non-empty string"},
			{Field: "at_all", Message: "must be true or false"},
		}},
		{"tag injection", `{"webhook_url":"` + hook + `","at_user_ids":["ou_1\"></at><at id=all>"]}`, validate.Errors{
			{Field: "at_user_ids[0]", Message: "must be a Feishu user id (ou_…), without quotes, brackets or spaces"},
		}},
		{"unknown field", `{"webhook_url":"` + hook + `","at_mobiles":["1"]}`, validate.Errors{{Field: "at_mobiles", Message: "unknown field"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := feishu.Kind.Validate(json.RawMessage(tt.cfg), d)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors\n got %v\nwant %v", got, tt.want)
			}
			if _, err := feishu.Kind.New(json.RawMessage(tt.cfg), d); (err == nil) != (tt.want == nil) && tt.name != "egress" {
				t.Errorf("New err = %v", err)
			}
		})
	}
	if got := feishu.Kind.SecretFields(); !reflect.DeepEqual(got, []string{"webhook_url", "sign_secret"}) {
		t.Errorf("SecretFields = %v", got)
	}
	if feishu.Kind.Type() != "feishu" {
		t.Errorf("Type = %q", feishu.Kind.Type())
	}
}
