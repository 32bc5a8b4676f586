package dingtalk_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/herald-release/herald/internal/egress"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify/channel"
	"github.com/herald-release/herald/internal/notify/channel/channeltest"
	"github.com/herald-release/herald/internal/notify/channel/dingtalk"
	"github.com/herald-release/herald/internal/testsupport"
	"github.com/herald-release/herald/internal/validate"
)

const secret = "SECd1b2c3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3"

func deps() channel.Deps {
	return channel.Deps{HTTP: egress.AllowAll().Client(), Version: "1.0.0"}
}

func sender(t *testing.T, cfg map[string]any, d channel.Deps) channel.Sender {
	t.Helper()
	return channeltest.Sender(t, dingtalk.Kind, cfg, d)
}

func taskEvent(eventType string) *event.Envelope {
	return &event.Envelope{
		ID: "evt_1", EventType: eventType, ObjectKind: event.KindReleaseTask, Action: eventType,
		Project:     &event.ProjectRef{ID: "my-app", Name: "My App"},
		Version:     &event.VersionRef{ID: "v1", Name: "v1.2.3"},
		Task:        &event.TaskRef{ID: "t1", Type: "deploy", Strategy: "rolling", Status: "success"},
		Deployment:  &event.Deployment{TotalCount: 2, CompletedCount: 2, Hosts: []string{"h1", "h2"}},
		Environment: "production",
		Duration:    "2m0s",
		URL:         "https://herald.example.com/tasks/t1",
	}
}

// assertNoSecret is channeltest.AssertNoSecret, and also looks for the
// secrets query-escaped in the attempt: DingTalk's travel in the URL.
func assertNoSecret(t *testing.T, att channel.Attempt, err error, secrets ...string) {
	t.Helper()
	channeltest.AssertNoSecret(t, att, err, secrets...)
	var escaped []string
	for _, s := range secrets {
		if e := url.QueryEscape(s); e != s {
			escaped = append(escaped, e)
		}
	}
	channeltest.AssertNoSecret(t, att, nil, escaped...)
}

func TestSignMatchesDesignVector(t *testing.T) {
	t.Parallel()
	const want = "OuzzJR5+xZ4/EYwqtNt6sMYZQMTa/HEGvc9miJe7XzY="
	if got := dingtalk.Sign(1700000000000, "secret"); got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
	if got := testsupport.DingTalkSign(1700000000000, "secret"); got != want {
		t.Errorf("fake's DingTalkSign = %q, want %q", got, want)
	}
}

func TestSignedMessageReachesFakeAtVectorTime(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewDingTalk(t, "secret")
	at := func() time.Time { return time.UnixMilli(1700000000000) }
	fake.SetNow(at)
	d := deps()
	d.Now = at
	s := sender(t, map[string]any{"webhook_url": fake.WebhookURL(), "sign_secret": "secret"}, d)
	if _, err := s.Send(context.Background(), taskEvent(event.FullCompleted)); err != nil {
		t.Fatal(err)
	}
	m := fake.WaitMessages(t, 1)[0]
	// The fake decodes the query once, as DingTalk does; "+" and "/" survive
	// only if the sender encoded exactly once.
	if m.Timestamp != "1700000000000" || m.Sign != "OuzzJR5+xZ4/EYwqtNt6sMYZQMTa/HEGvc9miJe7XzY=" {
		t.Errorf("timestamp %q sign %q", m.Timestamp, m.Sign)
	}
}

func TestSendMarkdown(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewDingTalk(t, secret)
	s := sender(t, map[string]any{"webhook_url": fake.WebhookURL(), "sign_secret": secret, "lang": "en"}, deps())
	att, err := s.Send(context.Background(), taskEvent(event.FullCompleted))
	if err != nil {
		t.Fatal(err)
	}
	m := fake.WaitMessages(t, 1)[0]
	if m.MsgType != "markdown" || m.Title != "Release: release completed" {
		t.Errorf("msgtype %q title %q", m.MsgType, m.Title)
	}
	want := "## Release: release completed\n\n**Project**: My App\n\n**Version**: v1.2.3\n\n**Environment**: production\n\n" +
		"**Task type**: deploy\n\n**Strategy**: rolling\n\n**Status**: success\n\n**Progress**: 2/2\n\n**Hosts**: h1, h2\n\n" +
		"**Duration**: 2m0s\n\n[View details](https://herald.example.com/tasks/t1)"
	if m.Text != want {
		t.Errorf("text\n got %q\nwant %q", m.Text, want)
	}
	if !strings.HasPrefix(att.Request.URL, fake.URL()+"/robot/send?access_token=******&timestamp=") || !strings.HasSuffix(att.Request.URL, "&sign=******") {
		t.Errorf("recorded URL %q", att.Request.URL)
	}
	assertNoSecret(t, att, err, secret, fake.Token(), m.Sign)
}

func TestRenderEventKinds(t *testing.T) {
	t.Parallel()
	plan := &event.Envelope{
		EventType: event.PlanSuccess, ObjectKind: event.KindReleasePlan, Action: event.PlanSuccess,
		ReleasePlan: json.RawMessage(`{"name":"Sprint 42","status":"success"}`),
	}
	version := &event.Envelope{
		EventType: event.VersionCreated, ObjectKind: event.KindVersion, Action: "create",
		Project: &event.ProjectRef{ID: "my-app"}, Object: json.RawMessage(`{"id":"v9","name":"v9.0.0"}`),
	}
	tests := []struct {
		name string
		ev   *event.Envelope
		want string
	}{
		{"task", taskEvent(event.CanaryCompleted), "## 发布通知：金丝雀发布完成\n\n**项目**: My App"},
		{"plan", plan, "## 发布通知：发布计划成功\n\n**发布计划**: Sprint 42\n\n**状态**: 成功"},
		{"object", version, "## 发布通知：版本已创建\n\n**项目**: my-app\n\n**对象**: 版本创建\n\n**名称**: v9.0.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := dingtalk.Render(channel.Summarize(tt.ev, "zh"), "zh", nil, nil, false)
			if !strings.HasPrefix(m.Markdown.Text, tt.want) {
				t.Errorf("text %q, want prefix %q", m.Markdown.Text, tt.want)
			}
		})
	}
}

func TestMentions(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewDingTalk(t, "")
	s := sender(t, map[string]any{
		"webhook_url": fake.WebhookURL(), "at_mobiles": []string{"13800000000"}, "at_user_ids": []string{"user123"}, "at_all": true,
	}, deps())
	if _, err := s.Send(context.Background(), taskEvent(event.ReleaseFailed)); err != nil {
		t.Fatal(err)
	}
	m := fake.WaitMessages(t, 1)[0]
	if !reflect.DeepEqual(m.AtMobiles, []string{"13800000000"}) || !reflect.DeepEqual(m.AtUserIDs, []string{"user123"}) || !m.IsAtAll {
		t.Errorf("at: %v %v %v", m.AtMobiles, m.AtUserIDs, m.IsAtAll)
	}
	// DingTalk only notifies those also written as @… in the text.
	if !strings.HasSuffix(m.Text, "\n\n@13800000000 @user123") {
		t.Errorf("text must end with the @ line: %q", m.Text)
	}
}

func TestOversizedMessageIsShortened(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewDingTalk(t, "")
	s := sender(t, map[string]any{"webhook_url": fake.WebhookURL(), "at_mobiles": []string{"13800000000"}}, deps())
	ev := taskEvent(event.CanaryStarted)
	ev.Project.Name = strings.Repeat("项目\"", 5000)
	if _, err := s.Send(context.Background(), ev); err != nil {
		t.Fatalf("an oversized message must be shortened, not refused: %v", err)
	}
	m := fake.WaitMessages(t, 1)[0]
	if len(m.Body) > dingtalk.MaxBody || !strings.Contains(m.Text, "…") || !strings.HasSuffix(m.Text, "@13800000000") {
		t.Errorf("%d bytes; text ends %q", len(m.Body), m.Text[max(0, len(m.Text)-40):])
	}
}

func TestPlatformCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code      int
		msg       string
		retry     bool
		wait      time.Duration
		wantInErr string
	}{
		{130101, "send too fast, exceed 20 times per minute", true, 10 * time.Minute, "will retry"},
		{-1, "系统繁忙", true, 0, "will retry"},
		{310000, "sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]", false, 0, "dingtalk: sign not match (310000): check sign_secret"},
		{310000, "keywords not in content, more: [https://ding-doc.dingtalk.com]", false, 0, "(310000): the robot only accepts messages with its custom keywords"},
		{310000, "ip 1.2.3.4 not in whitelist", false, 0, "IP allowlist"},
		{300001, "token is not exist", false, 0, "(300001): check webhook_url"},
		{300005, "token is not exist", false, 0, "(300005): check webhook_url"},
		{400013, "群已被解散", false, 0, "dingtalk: 群已被解散 (400013)"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.code, tt.msg), func(t *testing.T) {
			t.Parallel()
			fake := testsupport.NewDingTalk(t, secret)
			fake.FailNext(1, tt.code, tt.msg)
			s := sender(t, map[string]any{"webhook_url": fake.WebhookURL(), "sign_secret": secret}, deps())
			att, err := s.Send(context.Background(), taskEvent(event.CanaryStarted))
			var ce *channel.Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *channel.Error", err)
			}
			if ce.Retry != tt.retry || ce.RetryAfter != tt.wait || ce.Code != fmt.Sprint(tt.code) {
				t.Errorf("retry %v after %v code %q, want %v %v %d", ce.Retry, ce.RetryAfter, ce.Code, tt.retry, tt.wait, tt.code)
			}
			if !strings.Contains(err.Error(), tt.wantInErr) {
				t.Errorf("error %q lacks %q", err, tt.wantInErr)
			}
			assertNoSecret(t, att, err, secret, fake.Token())
		})
	}
}

func TestFakeChecksSignatureTokenAndClock(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		secret    string
		now       func() time.Time
		badToken  bool
		code      string
		wantInErr string
	}{
		{name: "wrong secret", secret: "SEC-another-secret-entirely", code: "310000", wantInErr: "dingtalk: sign not match (310000): check sign_secret"},
		{name: "no secret configured", code: "310000", wantInErr: "sign not match (310000): check sign_secret"},
		{name: "clock two hours ahead", secret: secret, now: func() time.Time { return time.Now().Add(2 * time.Hour) }, code: "310000", wantInErr: "invalid timestamp (310000): check sign_secret (the robot wants signed requests) and Herald's clock"},
		{name: "wrong token", secret: secret, badToken: true, code: "300005", wantInErr: "check webhook_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := testsupport.NewDingTalk(t, secret)
			d := deps()
			d.Now = tt.now
			hook := fake.WebhookURL()
			if tt.badToken {
				hook = fake.URL() + "/robot/send?access_token=deadbeefdeadbeef"
			}
			cfg := map[string]any{"webhook_url": hook}
			if tt.secret != "" {
				cfg["sign_secret"] = tt.secret
			}
			att, err := sender(t, cfg, d).Send(context.Background(), taskEvent(event.CanaryStarted))
			ce := channel.Classify(err)
			if ce == nil || ce.Retry || ce.Code != tt.code || !strings.Contains(err.Error(), tt.wantInErr) {
				t.Fatalf("err = %v, want permanent %s with %q", err, tt.code, tt.wantInErr)
			}
			assertNoSecret(t, att, err, tt.secret, secret, fake.Token(), "deadbeefdeadbeef")
		})
	}
}

func TestFakeRateLimit(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewDingTalk(t, secret)
	s := sender(t, map[string]any{"webhook_url": fake.WebhookURL(), "sign_secret": secret}, deps())
	for i := range 20 {
		if _, err := s.Send(context.Background(), taskEvent(event.CanaryStarted)); err != nil {
			t.Fatalf("message %d: %v", i+1, err)
		}
	}
	_, err := s.Send(context.Background(), taskEvent(event.CanaryStarted))
	if ce := channel.Classify(err); ce == nil || !ce.Retry || ce.Code != "130101" {
		t.Fatalf("21st message in a minute: err = %v, want retryable 130101", err)
	}
	key, limits := s.RateLimits()
	if strings.Contains(key, fake.Token()) || !strings.HasPrefix(key, "dingtalk:") {
		t.Errorf("rate key %q must not hold the token", key)
	}
	if !reflect.DeepEqual(limits, []channel.Limit{{Count: 20, Per: time.Minute}}) {
		t.Errorf("limits %v", limits)
	}
}

func TestHTTPFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status         int
		retry, disable bool
	}{
		{http.StatusBadGateway, true, false},
		{http.StatusGone, false, true},
		{http.StatusForbidden, false, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			t.Parallel()
			fake := testsupport.NewDingTalk(t, "")
			fake.FailNextStatus(1, tt.status)
			att, err := sender(t, map[string]any{"webhook_url": fake.WebhookURL()}, deps()).Send(context.Background(), taskEvent(event.CanaryStarted))
			ce := channel.Classify(err)
			if ce == nil || ce.Retry != tt.retry || ce.Disable != tt.disable {
				t.Fatalf("err = %v, want retry %v disable %v", err, tt.retry, tt.disable)
			}
			assertNoSecret(t, att, err, fake.Token())
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	const hook = "https://oapi.dingtalk.com/robot/send?access_token=abc123"
	d := channel.Deps{CheckURL: func(u string) error {
		if strings.Contains(u, "169.254") {
			return errors.New("egress refused: 169.254.169.254 is a loopback, link-local or metadata address")
		}
		return nil
	}}
	tests := []struct {
		name string
		cfg  string
		want validate.Errors
	}{
		{"minimal", `{"webhook_url":"` + hook + `"}`, nil},
		{"full", `{"webhook_url":"` + hook + `","sign_secret":"SECx","at_mobiles":["+86-13800000000"],"at_user_ids":["u1"],"at_all":false}`, nil},
		{"missing", `{"sign_secret":"SECx"}`, validate.Errors{{Field: "webhook_url", Message: "is required"}}},
		{"no access_token", `{"webhook_url":"https://oapi.dingtalk.com/robot/send"}`, validate.Errors{
			{Field: "webhook_url", Message: "must carry the robot's access_token (https://oapi.dingtalk.com/robot/send?access_token=…)"},
		}},
		{"egress", `{"webhook_url":"http://169.254.169.254/robot/send?access_token=x"}`, validate.Errors{
			{Field: "webhook_url", Message: "egress refused: 169.254.169.254 is a loopback, link-local or metadata address"},
		}},
		{"bad lists", `{"webhook_url":"` + hook + `","at_mobiles":["138abc", 5],"at_user_ids":"u1"}`, validate.Errors{
			{Field: "at_mobiles[1]", Message: "must be a non-empty string"},
			{Field: "at_user_ids", Message: "must be a list of strings"},
			{Field: "at_mobiles[0]", Message: "must be a phone number (digits, optionally +86-…)"},
		}},
		{"unknown", `{"webhook_url":"` + hook + `","mentioned_list":["x"]}`, validate.Errors{{Field: "mentioned_list", Message: "unknown field"}}},
		{"not an object", `"x"`, validate.Errors{{Field: "", Message: "the config must be a JSON object"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := dingtalk.Kind.Validate(json.RawMessage(tt.cfg), d)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors\n got %v\nwant %v", got, tt.want)
			}
			for _, e := range got {
				if strings.Contains(e.Message, "abc123") {
					t.Errorf("validation message repeats the token: %q", e.Message)
				}
			}
		})
	}
	if got := dingtalk.Kind.SecretFields(); !reflect.DeepEqual(got, []string{"webhook_url", "sign_secret"}) {
		t.Errorf("SecretFields = %v", got)
	}
}
