package slack_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/herald-release/herald/internal/egress"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify/channel"
	"github.com/herald-release/herald/internal/notify/channel/channeltest"
	"github.com/herald-release/herald/internal/notify/channel/slack"
	"github.com/herald-release/herald/internal/testsupport"
	"github.com/herald-release/herald/internal/validate"
)

func deps(fake *testsupport.Slack) channel.Deps {
	return channel.Deps{HTTP: fake.Client(), Version: "1.0.0"}
}

func sender(t *testing.T, fake *testsupport.Slack, lang string) channel.Sender {
	t.Helper()
	cfg := map[string]any{"webhook_url": fake.WebhookURL()}
	if lang != "" {
		cfg["lang"] = lang
	}
	return channeltest.Sender(t, slack.Kind, cfg, deps(fake))
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

func TestSendBlocks(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewSlack(t)
	att, err := sender(t, fake, "").Send(context.Background(), taskEvent(event.CanaryStarted))
	if err != nil {
		t.Fatal(err)
	}
	m := fake.WaitMessages(t, 1)[0]
	if m.Header != ":large_blue_circle: 发布通知：金丝雀发布开始" {
		t.Errorf("header %q", m.Header)
	}
	for _, want := range []string{"*项目*\nMy App", "*版本*\nv1.2.3", "*环境*\nproduction", "*状态*\n发布中", "*进度*\n1/10", "*主机*\nh1", "*耗时*\n30s"} {
		if !containsString(m.Fields, want) {
			t.Errorf("no field %q in %q", want, m.Fields)
		}
	}
	if !reflect.DeepEqual(m.Links, []testsupport.SlackLink{{URL: "https://herald.example.com/tasks/t1", Label: "查看详情"}}) {
		t.Errorf("links %v", m.Links)
	}
	if !strings.HasPrefix(m.Text, "发布通知：金丝雀发布开始\n项目: My App\n") {
		t.Errorf("fallback text %q", m.Text)
	}
	wantURL := strings.TrimSuffix(fake.WebhookURL(), fake.Token()) + channel.Masked
	if att.StatusCode != 200 || att.Response != "ok" || att.Request.URL != wantURL || att.Request.Method != "POST" {
		t.Errorf("attempt %d %q %s %s, want URL %s", att.StatusCode, att.Response, att.Request.Method, att.Request.URL, wantURL)
	}
	if att.Request.Headers["User-Agent"] != "Herald/1.0.0" {
		t.Errorf("User-Agent %q", att.Request.Headers["User-Agent"])
	}
	channeltest.AssertNoSecret(t, att, err, fake.Token())
}

func TestRenderColoursAndKinds(t *testing.T) {
	t.Parallel()
	plan := &event.Envelope{
		EventType: event.PlanApproved, ObjectKind: event.KindReleasePlan, Action: event.PlanApproved,
		ReleasePlan: json.RawMessage(`{"name":"Sprint 42","status":"executing"}`),
	}
	project := &event.Envelope{
		EventType: event.ProjectDeleted, ObjectKind: event.KindProject, Action: "delete",
		Object: json.RawMessage(`{"id":"my-app","name":"My App"}`),
	}
	tests := []struct {
		name, lang string
		ev         *event.Envelope
		header     string
		fields     []string
		link       bool
	}{
		{"started", "en", taskEvent(event.ReleaseStarted), ":large_blue_circle: Release: release started", []string{"*Project*\nMy App"}, true},
		{"completed", "en", taskEvent(event.FullCompleted), ":large_green_circle: Release: release completed", []string{"*Strategy*\ncanary"}, true},
		{"failed", "zh", taskEvent(event.ReleaseFailed), ":red_circle: 发布通知：发布失败", []string{"*任务类型*\n部署"}, true},
		{"rollback", "en", taskEvent(event.RollbackStarted), ":large_orange_circle: Release: rollback started", nil, true},
		{"plan", "en", plan, ":large_green_circle: Release: plan approved", []string{"*Release plan*\nSprint 42", "*Status*\nexecuting"}, false},
		{"object", "zh", project, ":white_circle: 发布通知：项目已删除", []string{"*对象*\n项目删除", "*名称*\nMy App"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := slack.Render(channel.Summarize(tt.ev, tt.lang), tt.lang)
			if m.Blocks[0].Type != "header" || m.Blocks[0].Text.Text != tt.header || m.Blocks[0].Text.Type != "plain_text" {
				t.Errorf("header %+v", m.Blocks[0].Text)
			}
			var fields []string
			for _, b := range m.Blocks[1:] {
				for _, f := range b.Fields {
					fields = append(fields, f.Text)
				}
			}
			for _, w := range tt.fields {
				if !containsString(fields, w) {
					t.Errorf("no field %q in %q", w, fields)
				}
			}
			last := m.Blocks[len(m.Blocks)-1]
			if hasLink := last.Text != nil && strings.HasPrefix(last.Text.Text, "<https://"); hasLink != tt.link {
				t.Errorf("link block %v, want %v", hasLink, tt.link)
			}
		})
	}
}

func TestUserTextCannotMentionOrLink(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewSlack(t)
	ev := taskEvent(event.ReleaseFailed)
	ev.Project.Name = "<!channel> & <https://evil.example|click>"
	ev.URL = "https://herald.example.com/tasks/t1?a=1|2>"
	if _, err := sender(t, fake, "en").Send(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	m := fake.WaitMessages(t, 1)[0]
	if !containsString(m.Fields, "*Project*\n&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;") {
		t.Errorf("fields %q", m.Fields)
	}
	if strings.Contains(string(m.Body), "<!channel>") || strings.Contains(m.Text, "<!channel>") {
		t.Errorf("a project name must not notify the channel: %s", m.Body)
	}
	if !reflect.DeepEqual(m.Links, []testsupport.SlackLink{{URL: "https://herald.example.com/tasks/t1?a=1%7C2%3E", Label: "View details"}}) {
		t.Errorf("links %v", m.Links)
	}
}

func TestOversizedValuesAreShortened(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewSlack(t)
	ev := taskEvent(event.CanaryStarted)
	ev.Version.Name = strings.Repeat("<版本>", 2000)
	ev.Project.Name = strings.Repeat("p", 200)
	if _, err := sender(t, fake, "").Send(context.Background(), ev); err != nil {
		t.Fatalf("an oversized message must be shortened, not refused: %v", err)
	}
	m := fake.WaitMessages(t, 1)[0]
	for _, f := range m.Fields {
		if n := utf8.RuneCountInString(f); n > slack.MaxFieldText {
			t.Errorf("field of %d characters", n)
		}
	}
	if !containsPrefix(m.Fields, "*版本*\n&lt;版本&gt;") || !strings.Contains(strings.Join(m.Fields, ""), "…") {
		t.Errorf("version field not shortened: %.80q", m.Fields)
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status         int
		word           string
		retry, disable bool
		wait           time.Duration
		wantInErr      string
	}{
		{400, "invalid_payload", false, false, 0, "slack: invalid_payload (HTTP 400): Slack refused the message"},
		{400, "invalid_blocks", false, false, 0, "report this"},
		{403, "action_prohibited", false, false, 0, "admin restricted posting"},
		{403, "invalid_token", false, false, 0, "check webhook_url"},
		{404, "channel_not_found", false, false, 0, "slack: channel_not_found (HTTP 404): the webhook's channel was deleted"},
		{404, "no_service", false, false, 0, "create a new one"},
		{410, "channel_is_archived", false, true, 0, "slack: channel_is_archived (HTTP 410): the Slack channel is gone or archived; the channel is disabled"},
		{429, "rate_limited", true, false, time.Second, "HTTP 429"},
		{500, "rollup_error", true, false, 0, "will retry"},
		{403, "something_new", false, false, 0, "slack: something_new (HTTP 403)"},
	}
	for _, tt := range tests {
		t.Run(tt.word, func(t *testing.T) {
			t.Parallel()
			fake := testsupport.NewSlack(t)
			fake.FailNext(1, tt.status, tt.word)
			att, err := sender(t, fake, "").Send(context.Background(), taskEvent(event.CanaryStarted))
			ce := channeltest.AsError(t, err)
			if ce.Retry != tt.retry || ce.Disable != tt.disable || ce.RetryAfter != tt.wait || ce.Code != tt.word {
				t.Errorf("retry %v disable %v after %v code %q, want %v %v %v %q", ce.Retry, ce.Disable, ce.RetryAfter, ce.Code, tt.retry, tt.disable, tt.wait, tt.word)
			}
			if !strings.Contains(err.Error(), tt.wantInErr) {
				t.Errorf("error %q lacks %q", err, tt.wantInErr)
			}
			if att.StatusCode != tt.status || att.Response != tt.word {
				t.Errorf("history keeps %d %q", att.StatusCode, att.Response)
			}
			channeltest.AssertNoSecret(t, att, err, fake.Token())
			if len(fake.Messages()) != 0 {
				t.Error("a refused message was posted")
			}
		})
	}
}

func TestHTTPFailures(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusBadGateway, http.StatusServiceUnavailable} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			t.Parallel()
			fake := testsupport.NewSlack(t)
			fake.FailNextStatus(1, status)
			att, err := sender(t, fake, "").Send(context.Background(), taskEvent(event.CanaryStarted))
			if ce := channeltest.AsError(t, err); !ce.Retry {
				t.Errorf("HTTP %d must be retried: %v", status, err)
			}
			channeltest.AssertNoSecret(t, att, err, fake.Token())
		})
	}
}

func TestFakeChecksTheWebhook(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewSlack(t)
	tests := []struct {
		name, url, code string
	}{
		{"wrong token", strings.TrimSuffix(fake.WebhookURL(), fake.Token()) + "0123456789abcdef01234567", "invalid_token"},
		{"wrong team", strings.Replace(fake.WebhookURL(), "/services/T", "/services/TX", 1), "no_team"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := channeltest.Sender(t, slack.Kind, map[string]any{"webhook_url": tt.url}, deps(fake))
			_, err := s.Send(context.Background(), taskEvent(event.CanaryStarted))
			if ce := channeltest.AsError(t, err); ce.Retry || ce.Code != tt.code {
				t.Errorf("err = %v (code %q), want permanent %s", err, ce.Code, tt.code)
			}
		})
	}
}

func TestFakeRateLimit(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewSlack(t)
	frozen := time.Now()
	fake.SetNow(func() time.Time { return frozen })
	s := sender(t, fake, "")
	for i := range 3 {
		if _, err := s.Send(context.Background(), taskEvent(event.CanaryStarted)); err != nil {
			t.Fatalf("message %d of a short burst: %v", i+1, err)
		}
	}
	_, err := s.Send(context.Background(), taskEvent(event.CanaryStarted))
	if ce := channeltest.AsError(t, err); !ce.Retry || ce.RetryAfter != time.Second || ce.Code != "rate_limited" {
		t.Fatalf("4th message in a second: err = %v, want a retry after Retry-After's 1s", err)
	}
	key, limits := s.RateLimits()
	if strings.Contains(key, fake.Token()) || !strings.HasPrefix(key, "slack:") {
		t.Errorf("rate key %q", key)
	}
	if !reflect.DeepEqual(limits, []channel.Limit{{Count: 1, Per: time.Second}}) {
		t.Errorf("limits %v", limits)
	}
}

func TestUnexpectedAnswer(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<html>captive portal</html>"))
	}))
	t.Cleanup(srv.Close)
	client := egress.AllowAll().Client()
	client.Transport.(*http.Transport).TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig
	s := channeltest.Sender(t, slack.Kind, map[string]any{"webhook_url": srv.URL + "/services/T1/B1/sekrit0123456789"}, channel.Deps{HTTP: client})
	att, err := s.Send(context.Background(), taskEvent(event.CanaryStarted))
	if ce := channeltest.AsError(t, err); ce.Retry || !strings.Contains(err.Error(), "not Slack's \"ok\"") {
		t.Errorf("err = %v", err)
	}
	channeltest.AssertNoSecret(t, att, err, "sekrit0123456789")
}

func TestValidate(t *testing.T) {
	t.Parallel()
	d := channel.Deps{CheckURL: func(u string) error {
		if strings.Contains(u, "127.0.0.1") {
			return errors.New("egress refused: 127.0.0.1 is a loopback, link-local or metadata address; add it to HERALD_EGRESS_ALLOW if it is meant")
		}
		return nil
	}}
	const hook = "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
	tests := []struct {
		name string
		cfg  string
		want validate.Errors
	}{
		{"minimal", `{"webhook_url":"` + hook + `"}`, nil},
		{"with lang", `{"webhook_url":"` + hook + `","lang":"en"}`, nil},
		{"missing", `{}`, validate.Errors{{Field: "webhook_url", Message: "is required"}}},
		{"blank", `{"webhook_url":""}`, validate.Errors{{Field: "webhook_url", Message: "is required"}}},
		{"not a URL", `{"webhook_url":"hooks.slack.com/services/x"}`, validate.Errors{{Field: "webhook_url", Message: "must be an http:// or https:// URL with a host"}}},
		{"http", `{"webhook_url":"http://hooks.slack.com/services/T0/B0/X"}`, validate.Errors{{Field: "webhook_url", Message: "must be https: Slack serves webhooks over https only, and the URL itself is the credential"}}},
		{"workflow trigger", `{"webhook_url":"https://hooks.slack.com/triggers/T0/1/abc"}`, validate.Errors{{Field: "webhook_url", Message: "must be a Slack incoming webhook, https://hooks.slack.com/services/T…/B…/…"}}},
		{"no token", `{"webhook_url":"https://hooks.slack.com/services/T0/B0"}`, validate.Errors{{Field: "webhook_url", Message: "must be a Slack incoming webhook, https://hooks.slack.com/services/T…/B…/…"}}},
		{"egress", `{"webhook_url":"https://127.0.0.1/services/T0/B0/X"}`, validate.Errors{{Field: "webhook_url", Message: "egress refused: 127.0.0.1 is a loopback, link-local or metadata address; add it to HERALD_EGRESS_ALLOW if it is meant"}}},
		{"types", `{"webhook_url":42,"lang":"fr"}`, validate.Errors{
			{Field: "lang", Message: `must be "zh" or "en"`},
			{Field: "webhook_url", Message: "must be a string"},
		}},
		{"unknown field", `{"webhook_url":"` + hook + `","channel":"#ops"}`, validate.Errors{{Field: "channel", Message: "unknown field"}}},
		{"not an object", `[]`, validate.Errors{{Field: "", Message: "the config must be a JSON object"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := slack.Kind.Validate(json.RawMessage(tt.cfg), d)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors\n got %v\nwant %v", got, tt.want)
			}
			for _, e := range got {
				if strings.Contains(e.Message, "XXXXXXXX") {
					t.Errorf("an error repeats the token: %v", e)
				}
			}
		})
	}
	if got := slack.Kind.SecretFields(); !reflect.DeepEqual(got, []string{"webhook_url"}) {
		t.Errorf("SecretFields = %v", got)
	}
	if slack.Kind.Type() != "slack" {
		t.Errorf("Type = %q", slack.Kind.Type())
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

func containsPrefix(list []string, p string) bool {
	for _, v := range list {
		if strings.HasPrefix(v, p) {
			return true
		}
	}
	return false
}
