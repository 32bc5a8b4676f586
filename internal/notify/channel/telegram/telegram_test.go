package telegram_test

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/herald-release/herald/internal/egress"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify/channel"
	"github.com/herald-release/herald/internal/notify/channel/channeltest"
	"github.com/herald-release/herald/internal/notify/channel/telegram"
	"github.com/herald-release/herald/internal/testsupport"
	"github.com/herald-release/herald/internal/validate"
)

func deps() channel.Deps {
	return channel.Deps{HTTP: egress.AllowAll().Client(), Version: "1.0.0"}
}

func config(fake *testsupport.Telegram) map[string]any {
	return map[string]any{"bot_token": fake.Token(), "chat_id": fake.ChatID(), "api_base_url": fake.URL()}
}

func sender(t *testing.T, cfg map[string]any) channel.Sender {
	t.Helper()
	return channeltest.Sender(t, telegram.Kind, cfg, deps())
}

func taskEvent(eventType string) *event.Envelope {
	return &event.Envelope{
		ID: "evt_1", EventType: eventType, ObjectKind: event.KindReleaseTask, Action: eventType,
		Project:     &event.ProjectRef{ID: "my-app", Name: "My App (beta)!"},
		Version:     &event.VersionRef{ID: "v1", Name: "v1.2.3-rc.1+build_5"},
		Task:        &event.TaskRef{ID: "t1", Type: "deploy", Strategy: "blue_green", Status: "running"},
		Deployment:  &event.Deployment{TotalCount: 4, CompletedCount: 2, FailedCount: 1, Hosts: []string{"web-1", "web-2"}},
		Environment: "prod.eu",
		Duration:    "1m30s",
		URL:         "https://herald.example.com/tasks/t1?x=(1)",
	}
}

func TestSendMarkdownV2(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewTelegram(t)
	att, err := sender(t, config(fake)).Send(context.Background(), taskEvent(event.ReleaseStarted))
	if err != nil {
		t.Fatal(err)
	}
	m := fake.WaitMessages(t, 1)[0]
	want := "发布通知：发布开始\n\n项目: My App (beta)!\n版本: v1.2.3-rc.1+build_5\n环境: prod.eu\n任务类型: 部署\n发布策略: 蓝绿\n" +
		"状态: 发布中\n进度: 2/4（失败 1）\n主机: web-1, web-2\n耗时: 1m30s\n\n查看详情"
	if m.ParseMode != "MarkdownV2" || m.Text != want {
		t.Errorf("%s text\n got %q\nwant %q", m.ParseMode, m.Text, want)
	}
	if m.Bold[0] != "发布通知：发布开始" || !containsString(m.Bold, "版本:") {
		t.Errorf("bold %q", m.Bold)
	}
	if !reflect.DeepEqual(m.Links, []testsupport.TelegramLink{{Text: "查看详情", URL: "https://herald.example.com/tasks/t1?x=(1)"}}) {
		t.Errorf("links %v", m.Links)
	}
	if !m.PreviewDisabled || m.ChatID != fake.ChatID() {
		t.Errorf("preview disabled %v chat %q", m.PreviewDisabled, m.ChatID)
	}
	if att.Request.URL != fake.URL()+"/bot******/sendMessage" || att.StatusCode != 200 {
		t.Errorf("attempt %d %s", att.StatusCode, att.Request.URL)
	}
	channeltest.AssertNoSecret(t, att, err, fake.Token())
}

func TestEscapeSurvivesTelegramsParser(t *testing.T) {
	t.Parallel()
	all := "_*[]()~`>#+-=|{}.!\\ plain 中文 a_b*c"
	if text, _, _, problem := testsupport.ParseMarkdownV2(telegram.Escape(all)); problem != "" || text != all {
		t.Errorf("Escape(%q) parses to %q, %q", all, text, problem)
	}
	// Every ASCII string, escaped, reads back as itself.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := make([]byte, rng.IntN(20))
		for i := range b {
			b[i] = byte(32 + rng.IntN(95))
		}
		s := string(b)
		if text, _, _, problem := testsupport.ParseMarkdownV2(telegram.Escape(s)); problem != "" || text != s {
			t.Fatalf("Escape(%q) parses to %q, %q", s, text, problem)
		}
	}
	// And the fake is as strict as Telegram: one unescaped character fails.
	for _, bad := range []string{"v1.2", "a-b", "*open", "[x](y", "C#", "x!"} {
		if _, _, _, problem := testsupport.ParseMarkdownV2(bad); problem == "" {
			t.Errorf("%q should not parse", bad)
		}
	}
}

func TestRenderKinds(t *testing.T) {
	t.Parallel()
	plan := &event.Envelope{
		EventType: event.PlanSuccess, ObjectKind: event.KindReleasePlan, Action: event.PlanSuccess,
		ReleasePlan: json.RawMessage(`{"name":"Sprint #42","status":"success"}`),
	}
	version := &event.Envelope{
		EventType: event.VersionCreated, ObjectKind: event.KindVersion, Action: "create",
		Object: json.RawMessage(`{"name":"v2.0.0"}`),
	}
	tests := []struct {
		name string
		ev   *event.Envelope
		want string
	}{
		{"plan", plan, "*Release: plan succeeded*\n\n*Release plan:* Sprint \\#42\n*Status:* success"},
		{"object", version, "*Release: version created*\n\n*Object:* version create\n*Name:* v2\\.0\\.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := telegram.Render(channel.Summarize(tt.ev, "en"), "en")
			if got != tt.want {
				t.Errorf("\n got %q\nwant %q", got, tt.want)
			}
			if _, _, _, problem := testsupport.ParseMarkdownV2(got); problem != "" {
				t.Errorf("Telegram would refuse it: %s", problem)
			}
		})
	}
}

func TestOversizedTextIsShortened(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewTelegram(t)
	ev := taskEvent(event.CanaryStarted)
	ev.Version.Name = strings.Repeat("v1.2-😀", 2000)
	if _, err := sender(t, config(fake)).Send(context.Background(), ev); err != nil {
		t.Fatalf("an oversized message must be shortened, not refused: %v", err)
	}
	m := fake.WaitMessages(t, 1)[0]
	if n := len(utf16.Encode([]rune(m.Markdown))); n > telegram.MaxText || n < telegram.MaxText-10 {
		t.Errorf("text of %d UTF-16 units; want close to, not over, %d", n, telegram.MaxText)
	}
	if !strings.Contains(m.Text, "…\n") || !strings.HasSuffix(m.Text, "查看详情") {
		t.Errorf("text ends %q", m.Text[max(0, len(m.Text)-60):])
	}
}

func TestChatIDsAndThreads(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewTelegram(t)
	fake.AddChat("@herald_releases")
	fake.AddThread(fake.ChatID(), 42)
	start := time.Now()
	var offset atomic.Int64
	fake.SetNow(func() time.Time { return start.Add(time.Duration(offset.Load())) })
	tests := []struct {
		name string
		set  map[string]any
	}{
		{"numeric chat id", map[string]any{"chat_id": -1001234567890}},
		{"channel username", map[string]any{"chat_id": "@herald_releases"}},
		{"forum topic", map[string]any{"message_thread_id": 42}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config(fake)
			for k, v := range tt.set {
				cfg[k] = v
			}
			if _, err := sender(t, cfg).Send(context.Background(), taskEvent(event.CanaryStarted)); err != nil {
				t.Fatal(err)
			}
			m := fake.WaitMessages(t, i+1)[i]
			if tt.name == "forum topic" && m.ThreadID != 42 {
				t.Errorf("thread %d", m.ThreadID)
			}
		})
		offset.Add(int64(2 * time.Second)) // Telegram's one message a second per chat
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		code      int
		desc      string
		retry     bool
		wait      time.Duration
		wantInErr string
	}{
		{"chat", 400, "Bad Request: chat not found", false, 0, "telegram: Bad Request: chat not found (400): check chat_id, and that the bot was added to the chat"},
		{"kicked", 403, "Forbidden: bot was kicked from the supergroup chat", false, 0, "add it again"},
		{"token", 401, "Unauthorized", false, 0, "check bot_token"},
		{"migrated", 400, "Bad Request: group chat was upgraded to a supergroup chat", false, 0, "set chat_id to -1009876543210"},
		{"entities", 400, "Bad Request: can't parse entities: Character '.' is reserved", false, 0, "report this"},
		{"flood", 429, "Too Many Requests: retry after 3", true, 3 * time.Second, "will retry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := testsupport.NewTelegram(t)
			fake.FailNext(1, tt.code, tt.desc)
			att, err := sender(t, config(fake)).Send(context.Background(), taskEvent(event.CanaryStarted))
			ce := channeltest.AsError(t, err)
			if ce.Retry != tt.retry || ce.RetryAfter != tt.wait || ce.Disable {
				t.Errorf("retry %v after %v, want %v %v", ce.Retry, ce.RetryAfter, tt.retry, tt.wait)
			}
			if !strings.Contains(err.Error(), tt.wantInErr) || att.StatusCode != tt.code {
				t.Errorf("HTTP %d, error %q, want %q", att.StatusCode, err, tt.wantInErr)
			}
			channeltest.AssertNoSecret(t, att, err, fake.Token())
		})
	}
	t.Run("5xx", func(t *testing.T) {
		t.Parallel()
		fake := testsupport.NewTelegram(t)
		fake.FailNextStatus(1, http.StatusBadGateway)
		att, err := sender(t, config(fake)).Send(context.Background(), taskEvent(event.CanaryStarted))
		if ce := channeltest.AsError(t, err); !ce.Retry {
			t.Errorf("502 must be retried: %v", err)
		}
		channeltest.AssertNoSecret(t, att, err, fake.Token())
	})
}

func TestFakeChecks(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewTelegram(t)
	const forged = "7123456789:AAforgedforgedforgedforged0000000"
	tests := []struct {
		name      string
		set       map[string]any
		wantInErr string
	}{
		{"wrong token", map[string]any{"bot_token": forged}, "Unauthorized (401): check bot_token"},
		{"unknown chat", map[string]any{"chat_id": "-100999"}, "chat not found (400): check chat_id"},
		{"unknown topic", map[string]any{"message_thread_id": 7}, "message thread not found (400): check message_thread_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config(fake)
			for k, v := range tt.set {
				cfg[k] = v
			}
			att, err := sender(t, cfg).Send(context.Background(), taskEvent(event.CanaryStarted))
			if ce := channeltest.AsError(t, err); ce.Retry || !strings.Contains(err.Error(), tt.wantInErr) {
				t.Errorf("err = %v, want permanent %q", err, tt.wantInErr)
			}
			channeltest.AssertNoSecret(t, att, err, fake.Token(), forged)
		})
	}
	if n := len(fake.Messages()); n != 0 {
		t.Errorf("%d messages sent", n)
	}
}

func TestFakeRateLimits(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewTelegram(t)
	start := time.Now()
	var offset atomic.Int64
	fake.SetNow(func() time.Time { return start.Add(time.Duration(offset.Load())) })
	s := sender(t, config(fake))
	send := func() error {
		_, err := s.Send(context.Background(), taskEvent(event.CanaryStarted))
		return err
	}
	if err := send(); err != nil {
		t.Fatal(err)
	}
	err := send()
	if ce := channeltest.AsError(t, err); !ce.Retry || ce.RetryAfter != time.Second || ce.Code != "429" {
		t.Fatalf("2nd message in a second: err = %v, want a retry after 1s", err)
	}
	for i := 1; i < 20; i++ {
		offset.Add(int64(time.Second))
		if err := send(); err != nil {
			t.Fatalf("message %d: %v", i+1, err)
		}
	}
	offset.Add(int64(time.Second)) // 20s after the first of 20
	err = send()
	if ce := channeltest.AsError(t, err); !ce.Retry || ce.RetryAfter != 40*time.Second {
		t.Fatalf("21st message in a minute to a group: err = %v, want a retry after 40s", err)
	}
	key, limits := s.RateLimits()
	if !strings.HasPrefix(key, "telegram:") || strings.Contains(key, fake.Token()) {
		t.Errorf("rate key %q", key)
	}
	if !reflect.DeepEqual(limits, []channel.Limit{{Count: 1, Per: time.Second}, {Count: 20, Per: time.Minute}}) {
		t.Errorf("limits %v", limits)
	}
}

func TestTokenNeverLeaks(t *testing.T) {
	t.Parallel()
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	const token = "7123456789:AAsecretsecretsecretsecretsecret00"
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://elsewhere.example"+r.URL.Path, http.StatusFound)
	}))
	t.Cleanup(redirect.Close)
	for _, base := range []string{dead.URL, redirect.URL} {
		s := sender(t, map[string]any{"bot_token": token, "chat_id": "-1001", "api_base_url": base})
		att, err := s.Send(context.Background(), taskEvent(event.CanaryStarted))
		if err == nil {
			t.Fatal("want an error")
		}
		channeltest.AssertNoSecret(t, att, err, token, strings.Split(token, ":")[1])
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	d := channel.Deps{CheckURL: func(u string) error {
		if strings.Contains(u, "localhost") {
			return errors.New("egress refused: 127.0.0.1 is a loopback, link-local or metadata address; add it to HERALD_EGRESS_ALLOW if it is meant")
		}
		return nil
	}}
	const token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
	tokenShape := "must be a bot token as @BotFather gives it, 123456789:AA…"
	chatShape := "must be a numeric chat id (-100… for groups and channels) or a public channel's @username"
	tests := []struct {
		name string
		cfg  string
		want validate.Errors
	}{
		{"group", `{"bot_token":"` + token + `","chat_id":"-1001234567890"}`, nil},
		{"numeric chat, topic, local api", `{"bot_token":"` + token + `","chat_id":-100123,"message_thread_id":4,"api_base_url":"http://telegram-bot-api:8081","lang":"en"}`, nil},
		{"channel", `{"bot_token":"` + token + `","chat_id":"@herald_releases"}`, nil},
		{"missing", `{}`, validate.Errors{
			{Field: "bot_token", Message: "is required: the bot's token from @BotFather"},
			{Field: "chat_id", Message: "is required: a numeric chat id (-100… for groups and channels) or a public channel's @username"},
		}},
		{"malformed", `{"bot_token":"AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw","chat_id":"my group"}`, validate.Errors{
			{Field: "bot_token", Message: tokenShape},
			{Field: "chat_id", Message: chatShape},
		}},
		{"short username", `{"bot_token":"` + token + `","chat_id":"@abc"}`, validate.Errors{{Field: "chat_id", Message: chatShape}}},
		{"types", `{"bot_token":123,"chat_id":true,"message_thread_id":"4"}`, validate.Errors{
			{Field: "bot_token", Message: "must be a string"},
			{Field: "chat_id", Message: "must be a string"},
			{Field: "message_thread_id", Message: "must be an integer"},
		}},
		{"thread", `{"bot_token":"` + token + `","chat_id":"-1","message_thread_id":0}`, validate.Errors{{Field: "message_thread_id", Message: "must be a forum topic's positive id"}}},
		{"egress", `{"bot_token":"` + token + `","chat_id":"-1","api_base_url":"http://localhost:8081"}`, validate.Errors{{Field: "api_base_url", Message: "egress refused: 127.0.0.1 is a loopback, link-local or metadata address; add it to HERALD_EGRESS_ALLOW if it is meant"}}},
		{"bad api url", `{"bot_token":"` + token + `","chat_id":"-1","api_base_url":"api.telegram.org"}`, validate.Errors{{Field: "api_base_url", Message: "must be an http:// or https:// URL with a host"}}},
		{"unknown", `{"bot_token":"` + token + `","chat_id":"-1","parse_mode":"HTML"}`, validate.Errors{{Field: "parse_mode", Message: "unknown field"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := telegram.Kind.Validate(json.RawMessage(tt.cfg), d)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors\n got %v\nwant %v", got, tt.want)
			}
			for _, e := range got {
				if strings.Contains(e.Message, "AAHdqTcvCH1") {
					t.Errorf("an error repeats the token: %v", e)
				}
			}
		})
	}
	if got := telegram.Kind.SecretFields(); !reflect.DeepEqual(got, []string{"bot_token"}) {
		t.Errorf("SecretFields = %v", got)
	}
	if telegram.Kind.Type() != "telegram" {
		t.Errorf("Type = %q", telegram.Kind.Type())
	}
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
