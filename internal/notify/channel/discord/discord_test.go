package discord_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify/channel"
	"github.com/herald-release/herald/internal/notify/channel/channeltest"
	"github.com/herald-release/herald/internal/notify/channel/discord"
	"github.com/herald-release/herald/internal/testsupport"
	"github.com/herald-release/herald/internal/validate"
)

func sender(t *testing.T, fake *testsupport.Discord, webhook, lang string) channel.Sender {
	t.Helper()
	cfg := map[string]any{"webhook_url": webhook}
	if lang != "" {
		cfg["lang"] = lang
	}
	return channeltest.Sender(t, discord.Kind, cfg, channel.Deps{HTTP: fake.Client(), Version: "1.0.0"})
}

var at = time.Date(2026, 1, 6, 20, 0, 0, 0, time.UTC)

func taskEvent(eventType string) *event.Envelope {
	return &event.Envelope{
		ID: "evt_1", EventType: eventType, ObjectKind: event.KindReleaseTask, Action: eventType,
		Project:     &event.ProjectRef{ID: "my-app", Name: "My App"},
		Version:     &event.VersionRef{ID: "v1", Name: "v1.2.3"},
		Task:        &event.TaskRef{ID: "t1", Type: "deploy", Strategy: "canary", Status: "running"},
		Deployment:  &event.Deployment{TotalCount: 10, CanaryCount: 1, CompletedCount: 1, Hosts: []string{"web-1.example.com", "web-2.example.com", "web-3.example.com"}},
		Environment: "production",
		Timestamp:   at,
		URL:         "https://herald.example.com/tasks/t1",
	}
}

func TestSendEmbed(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewDiscord(t)
	att, err := sender(t, fake, fake.WebhookURL(), "").Send(context.Background(), taskEvent(event.CanaryStarted))
	if err != nil {
		t.Fatal(err)
	}
	m := fake.WaitMessages(t, 1)[0]
	if len(m.Embeds) != 1 {
		t.Fatalf("embeds %v", m.Embeds)
	}
	e := m.Embeds[0]
	if e.Title != "发布通知：金丝雀发布开始" || e.URL != "https://herald.example.com/tasks/t1" || e.Color != 0x3498DB || e.Timestamp != "2026-01-06T20:00:00Z" {
		t.Errorf("embed %q %q %#x %q", e.Title, e.URL, e.Color, e.Timestamp)
	}
	for _, want := range []testsupport.DiscordField{
		{Name: "项目", Value: "My App", Inline: true},
		{Name: "版本", Value: "v1.2.3", Inline: true},
		{Name: "进度", Value: "1/10", Inline: true},
		{Name: "主机", Value: `web\-1.example.com, web\-2.example.com, web\-3.example.com`, Inline: false},
	} {
		if !containsField(e.Fields, want) {
			t.Errorf("no field %+v in %+v", want, e.Fields)
		}
	}
	if m.AllowedMentions == nil || len(m.AllowedMentions) != 0 {
		t.Errorf("allowed_mentions.parse must be empty, not absent: %v", m.AllowedMentions)
	}
	wantURL := strings.TrimSuffix(fake.WebhookURL(), fake.Token()) + channel.Masked
	if att.StatusCode != http.StatusNoContent || att.Request.URL != wantURL {
		t.Errorf("attempt %d %s, want 204 %s", att.StatusCode, att.Request.URL, wantURL)
	}
	channeltest.AssertNoSecret(t, att, err, fake.Token())
}

func TestWaitAndThreadParametersStay(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewDiscord(t)
	att, err := sender(t, fake, fake.WebhookURL()+"?wait=true", "en").Send(context.Background(), taskEvent(event.FullCompleted))
	if err != nil {
		t.Fatal(err)
	}
	if m := fake.WaitMessages(t, 1)[0]; !m.Wait {
		t.Error("?wait=true was not sent")
	}
	if att.StatusCode != http.StatusOK || !strings.HasSuffix(att.Request.URL, "/"+channel.Masked+"?wait=true") || !strings.Contains(att.Response, `"id"`) {
		t.Errorf("attempt %d %s %s", att.StatusCode, att.Request.URL, att.Response)
	}
	channeltest.AssertNoSecret(t, att, err, fake.Token())
}

func TestColours(t *testing.T) {
	t.Parallel()
	plan := &event.Envelope{EventType: event.PlanDenied, ObjectKind: event.KindReleasePlan, Action: event.PlanDenied,
		ReleasePlan: json.RawMessage(`{"name":"Sprint 42","status":"denied"}`)}
	env := &event.Envelope{EventType: event.EnvironmentCreated, ObjectKind: event.KindEnvironment, Action: "create",
		Object: json.RawMessage(`{"name":"staging"}`)}
	tests := []struct {
		ev    *event.Envelope
		color int
		title string
	}{
		{taskEvent(event.ReleaseStarted), 0x3498DB, "Release: release started"},
		{taskEvent(event.CanaryCompleted), 0x2ECC71, "Release: canary completed"},
		{taskEvent(event.ReleaseFailed), 0xE74C3C, "Release: release failed"},
		{taskEvent(event.RollbackStarted), 0xE67E22, "Release: rollback started"},
		{plan, 0xE74C3C, "Release: plan denied"},
		{env, 0x95A5A6, "Release: environment created"},
	}
	for _, tt := range tests {
		t.Run(tt.ev.EventType, func(t *testing.T) {
			t.Parallel()
			e := discord.Render(channel.Summarize(tt.ev, "en"), "en", tt.ev.Timestamp).Embeds[0]
			if e.Color != tt.color || e.Title != tt.title {
				t.Errorf("%#x %q, want %#x %q", e.Color, e.Title, tt.color, tt.title)
			}
			if (e.URL != "") != (tt.ev.URL != "") || (e.Timestamp != "") != !tt.ev.Timestamp.IsZero() {
				t.Errorf("url %q timestamp %q", e.URL, e.Timestamp)
			}
		})
	}
}

func TestUserTextCannotPingOrFormat(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewDiscord(t)
	ev := taskEvent(event.ReleaseFailed)
	ev.Project.Name = "@everyone **now** <@123> [x](https://evil.example)"
	if _, err := sender(t, fake, fake.WebhookURL(), "en").Send(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	m := fake.WaitMessages(t, 1)[0]
	want := `\@everyone \*\*now\*\* \<\@123\> \[x\]\(https://evil.example\)`
	if !containsField(m.Embeds[0].Fields, testsupport.DiscordField{Name: "Project", Value: want}) {
		t.Errorf("fields %+v", m.Embeds[0].Fields)
	}
	if len(m.AllowedMentions) != 0 {
		t.Errorf("allowed mentions %v", m.AllowedMentions)
	}
}

func TestOversizedEmbedIsShortened(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewDiscord(t)
	ev := taskEvent(event.CanaryStarted)
	ev.Version.Name = strings.Repeat("v_", 2000)
	ev.Project.Name = strings.Repeat("项", 900)
	ev.Environment = strings.Repeat("e", 5000)
	ev.Duration = strings.Repeat("d", 2000)
	ev.Actor = &event.Actor{Name: strings.Repeat("a", 2000)}
	ev.Deployment.Hosts = []string{strings.Repeat("h", 3000)}
	if _, err := sender(t, fake, fake.WebhookURL(), "").Send(context.Background(), ev); err != nil {
		t.Fatalf("an oversized embed must be shortened, not refused: %v", err)
	}
	e := fake.WaitMessages(t, 1)[0].Embeds[0]
	total := utf8.RuneCountInString(e.Title)
	for _, f := range e.Fields {
		total += utf8.RuneCountInString(f.Name) + utf8.RuneCountInString(f.Value)
		if utf8.RuneCountInString(f.Value) > discord.MaxFieldValue {
			t.Errorf("field %s has %d characters", f.Name, utf8.RuneCountInString(f.Value))
		}
		if f.Name == "进度" || f.Name == "状态" {
			if strings.HasSuffix(f.Value, "…") {
				t.Errorf("a short field was cut: %s %q", f.Name, f.Value)
			}
		}
	}
	if total > discord.MaxEmbedTotal || total < discord.MaxEmbedTotal-50 {
		t.Errorf("embed of %d characters; want close to, not over, %d", total, discord.MaxEmbedTotal)
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code      int
		msg       string
		retry     bool
		wait      time.Duration
		status    int
		wantInErr string
	}{
		{10015, "Unknown Webhook", false, 0, 404, "discord: Unknown Webhook (HTTP 404, code 10015): the webhook was deleted"},
		{50027, "Invalid Webhook Token", false, 0, 401, "check webhook_url"},
		{50035, "Invalid Form Body", false, 0, 400, "report this"},
		{50013, "Missing Permissions", false, 0, 403, "lacks permission"},
		{429, "You are being rate limited.", true, 1500 * time.Millisecond, 429, "will retry in 1.5s"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.code), func(t *testing.T) {
			t.Parallel()
			fake := testsupport.NewDiscord(t)
			fake.FailNext(1, tt.code, tt.msg)
			att, err := sender(t, fake, fake.WebhookURL(), "").Send(context.Background(), taskEvent(event.CanaryStarted))
			ce := channeltest.AsError(t, err)
			if ce.Retry != tt.retry || ce.RetryAfter != tt.wait || ce.Disable {
				t.Errorf("retry %v after %v, want %v %v", ce.Retry, ce.RetryAfter, tt.retry, tt.wait)
			}
			if tt.code != 429 && ce.Code != fmt.Sprint(tt.code) {
				t.Errorf("code %q", ce.Code)
			}
			if att.StatusCode != tt.status || !strings.Contains(err.Error(), tt.wantInErr) {
				t.Errorf("HTTP %d, error %q, want %d %q", att.StatusCode, err, tt.status, tt.wantInErr)
			}
			channeltest.AssertNoSecret(t, att, err, fake.Token())
		})
	}
	t.Run("5xx", func(t *testing.T) {
		t.Parallel()
		fake := testsupport.NewDiscord(t)
		fake.FailNextStatus(1, http.StatusBadGateway)
		_, err := sender(t, fake, fake.WebhookURL(), "").Send(context.Background(), taskEvent(event.CanaryStarted))
		if ce := channeltest.AsError(t, err); !ce.Retry {
			t.Errorf("502 must be retried: %v", err)
		}
	})
}

func TestFakeChecksTheWebhook(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewDiscord(t)
	tests := []struct {
		name, url, code string
	}{
		{"wrong token", strings.TrimSuffix(fake.WebhookURL(), fake.Token()) + "forgedtoken0123456789", "50027"},
		{"deleted webhook", strings.Replace(fake.WebhookURL(), "/webhooks/1", "/webhooks/2", 1), "10015"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			att, err := sender(t, fake, tt.url, "").Send(context.Background(), taskEvent(event.CanaryStarted))
			if ce := channeltest.AsError(t, err); ce.Retry || ce.Code != tt.code {
				t.Errorf("err = %v (code %q), want permanent %s", err, ce.Code, tt.code)
			}
			channeltest.AssertNoSecret(t, att, err, fake.Token(), "forgedtoken0123456789")
		})
	}
}

func TestFakeRateLimits(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewDiscord(t)
	start := time.Now()
	var offset atomic.Int64
	fake.SetNow(func() time.Time { return start.Add(time.Duration(offset.Load())) })
	s := sender(t, fake, fake.WebhookURL(), "")
	send := func() error {
		_, err := s.Send(context.Background(), taskEvent(event.CanaryStarted))
		return err
	}
	for i := range 5 {
		if err := send(); err != nil {
			t.Fatalf("message %d: %v", i+1, err)
		}
	}
	err := send()
	if ce := channeltest.AsError(t, err); !ce.Retry || ce.RetryAfter != 2*time.Second || !strings.Contains(err.Error(), "5 messages in 2 seconds") {
		t.Fatalf("6th message in 2 seconds: err = %v (after %v), want a retry after 2s", err, ce.RetryAfter)
	}
	// 30 a minute per channel, even when each 2-second window is kept.
	for i := 5; i < 30; i++ {
		if i%5 == 0 {
			offset.Add(int64(2 * time.Second))
		}
		if err := send(); err != nil {
			t.Fatalf("message %d: %v", i+1, err)
		}
	}
	offset.Add(int64(2 * time.Second)) // 12s after the first
	err = send()
	if ce := channeltest.AsError(t, err); !ce.Retry || ce.RetryAfter != 48*time.Second {
		t.Fatalf("31st message in a minute: err = %v (after %v), want a retry after 48s", err, ce.RetryAfter)
	}
	key, limits := s.RateLimits()
	if !strings.HasPrefix(key, "discord:") || strings.Contains(key, fake.Token()) {
		t.Errorf("rate key %q", key)
	}
	if !reflect.DeepEqual(limits, []channel.Limit{{Count: 5, Per: 2 * time.Second}, {Count: 30, Per: time.Minute}}) {
		t.Errorf("limits %v", limits)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	d := channel.Deps{CheckURL: func(u string) error {
		if strings.Contains(u, "[::1]") {
			return errors.New("egress refused: ::1 is a loopback, link-local or metadata address; add it to HERALD_EGRESS_ALLOW if it is meant")
		}
		return nil
	}}
	const hook = "https://discord.com/api/webhooks/1234567890123456789/AbCdEf-gh_IJ"
	shape := "must be a Discord webhook, https://discord.com/api/webhooks/{id}/{token}"
	tests := []struct {
		name string
		cfg  string
		want validate.Errors
	}{
		{"webhook", `{"webhook_url":"` + hook + `"}`, nil},
		{"versioned, thread", `{"webhook_url":"https://discordapp.com/api/v10/webhooks/1/tok?thread_id=9","lang":"zh"}`, nil},
		{"missing", `{"lang":"en"}`, validate.Errors{{Field: "webhook_url", Message: "is required"}}},
		{"http", `{"webhook_url":"http://discord.com/api/webhooks/1/tok"}`, validate.Errors{{Field: "webhook_url", Message: "must be https: Discord serves webhooks over https only, and the URL itself is the credential"}}},
		{"no token", `{"webhook_url":"https://discord.com/api/webhooks/1"}`, validate.Errors{{Field: "webhook_url", Message: shape}}},
		{"not a webhook", `{"webhook_url":"https://discord.com/channels/1/2"}`, validate.Errors{{Field: "webhook_url", Message: shape}}},
		{"slack compatible", `{"webhook_url":"` + hook + `/slack"}`, validate.Errors{{Field: "webhook_url", Message: shape}}},
		{"egress", `{"webhook_url":"https://[::1]/api/webhooks/1/tok"}`, validate.Errors{{Field: "webhook_url", Message: "egress refused: ::1 is a loopback, link-local or metadata address; add it to HERALD_EGRESS_ALLOW if it is meant"}}},
		{"unknown", `{"webhook_url":"` + hook + `","username":"Herald"}`, validate.Errors{{Field: "username", Message: "unknown field"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := discord.Kind.Validate(json.RawMessage(tt.cfg), d)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors\n got %v\nwant %v", got, tt.want)
			}
		})
	}
	if got := discord.Kind.SecretFields(); !reflect.DeepEqual(got, []string{"webhook_url"}) {
		t.Errorf("SecretFields = %v", got)
	}
	if discord.Kind.Type() != "discord" {
		t.Errorf("Type = %q", discord.Kind.Type())
	}
}

func containsField(fields []testsupport.DiscordField, f testsupport.DiscordField) bool {
	for _, x := range fields {
		if x == f {
			return true
		}
	}
	return false
}
