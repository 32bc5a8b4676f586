package teams_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify/channel"
	"github.com/herald-release/herald/internal/notify/channel/channeltest"
	"github.com/herald-release/herald/internal/notify/channel/teams"
	"github.com/herald-release/herald/internal/testsupport"
	"github.com/herald-release/herald/internal/validate"
)

func sender(t *testing.T, fake *testsupport.Teams, webhook, lang string) channel.Sender {
	t.Helper()
	cfg := map[string]any{"webhook_url": webhook}
	if lang != "" {
		cfg["lang"] = lang
	}
	return channeltest.Sender(t, teams.Kind, cfg, channel.Deps{HTTP: fake.Client(), Version: "1.0.0"})
}

func taskEvent(eventType string) *event.Envelope {
	return &event.Envelope{
		ID: "evt_1", EventType: eventType, ObjectKind: event.KindReleaseTask, Action: eventType,
		Project:     &event.ProjectRef{ID: "my-app", Name: "My App"},
		Version:     &event.VersionRef{ID: "v1", Name: "v1.2.3"},
		Task:        &event.TaskRef{ID: "t1", Type: "deploy", Strategy: "rolling", Status: "success"},
		Deployment:  &event.Deployment{TotalCount: 4, CompletedCount: 4, Hosts: []string{"h1", "h2", "h3", "h4"}},
		Environment: "production",
		Duration:    "2m",
		URL:         "https://herald.example.com/tasks/t1",
	}
}

func TestSendCard(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewTeams(t)
	att, err := sender(t, fake, fake.WebhookURL(), "en").Send(context.Background(), taskEvent(event.FullCompleted))
	if err != nil {
		t.Fatal(err)
	}
	m := fake.WaitMessages(t, 1)[0]
	if m.Version != "1.4" || m.Width != "Full" || m.Title != "Release: release completed" || m.TitleColor != "Good" {
		t.Errorf("card %s %s %q %s", m.Version, m.Width, m.Title, m.TitleColor)
	}
	for _, want := range []testsupport.TeamsFact{
		{Title: "Project", Value: "My App"}, {Title: "Version", Value: "v1.2.3"}, {Title: "Environment", Value: "production"},
		{Title: "Status", Value: "success"}, {Title: "Progress", Value: "4/4"}, {Title: "Hosts", Value: "h1, h2, h3, h4"}, {Title: "Duration", Value: "2m"},
	} {
		if !containsFact(m.Facts, want) {
			t.Errorf("no fact %v in %v", want, m.Facts)
		}
	}
	if !reflect.DeepEqual(m.Actions, []testsupport.TeamsAction{{Type: "Action.OpenUrl", Title: "View details", URL: "https://herald.example.com/tasks/t1"}}) {
		t.Errorf("actions %v", m.Actions)
	}
	var body map[string]any
	if json.Unmarshal(m.Body, &body) != nil || body["type"] != "message" {
		t.Errorf("body %s", m.Body)
	}
	if att.StatusCode != http.StatusAccepted || !strings.HasSuffix(att.Request.URL, "&sv=1.0&sig=******") || !strings.Contains(att.Request.URL, "/triggers/manual/paths/invoke?api-version=2016-06-01") {
		t.Errorf("attempt %d %s", att.StatusCode, att.Request.URL)
	}
	if d := fake.Dropped(); len(d) != 0 {
		t.Errorf("the flow dropped the card: %v", d[0].Reason)
	}
	channeltest.AssertNoSecret(t, att, err, fake.Sig())
}

func TestRenderColoursAndKinds(t *testing.T) {
	t.Parallel()
	plan := &event.Envelope{
		EventType: event.PlanTimeout, ObjectKind: event.KindReleasePlan, Action: event.PlanTimeout,
		ReleasePlan: json.RawMessage(`{"name":"Sprint 42","status":"timeout"}`),
	}
	host := &event.Envelope{
		EventType: event.HostCreated, ObjectKind: event.KindHost, Action: "create",
		Object: json.RawMessage(`{"id":"h9","name":"web-9"}`),
	}
	tests := []struct {
		name, lang   string
		ev           *event.Envelope
		title, color string
		fact         teams.Fact
		action       bool
	}{
		{"started", "zh", taskEvent(event.CanaryStarted), "发布通知：金丝雀发布开始", "Accent", teams.Fact{Title: "项目", Value: "My App"}, true},
		{"failed", "en", taskEvent(event.ReleaseFailed), "Release: release failed", "Attention", teams.Fact{Title: "Strategy", Value: "rolling"}, true},
		{"cancelled", "en", taskEvent(event.ReleaseCancelled), "Release: release cancelled", "Warning", teams.Fact{Title: "Environment", Value: "production"}, true},
		{"plan", "zh", plan, "发布通知：发布计划已超时", "Attention", teams.Fact{Title: "发布计划", Value: "Sprint 42"}, false},
		{"object", "en", host, "Release: host created", "Default", teams.Fact{Title: "Name", Value: "web-9"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			card := teams.Render(channel.Summarize(tt.ev, tt.lang), tt.lang).Attachments[0].Content
			if card.Body[0].Text != tt.title || card.Body[0].Color != tt.color || card.Body[0].Weight != "Bolder" {
				t.Errorf("title %+v", card.Body[0])
			}
			if !slicesContains(card.Body[1].Facts, tt.fact) {
				t.Errorf("no fact %v in %v", tt.fact, card.Body[1].Facts)
			}
			if (len(card.Actions) == 1) != tt.action {
				t.Errorf("actions %v", card.Actions)
			}
		})
	}
}

func TestUserTextStaysLiteral(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewTeams(t)
	ev := taskEvent(event.ReleaseFailed)
	ev.Project.Name = `[click](https://evil.example) *now* _x_ \o/`
	if _, err := sender(t, fake, fake.WebhookURL(), "en").Send(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	m := fake.WaitMessages(t, 1)[0]
	want := testsupport.TeamsFact{Title: "Project", Value: `\[click\](https://evil.example) \*now\* \_x\_ \\o/`}
	if !containsFact(m.Facts, want) {
		t.Errorf("facts %v", m.Facts)
	}
}

func TestOversizedCardIsShortened(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewTeams(t)
	ev := taskEvent(event.CanaryStarted)
	ev.Version.Name = strings.Repeat("版本*", 12000) // ~60 KB escaped
	if _, err := sender(t, fake, fake.WebhookURL(), "").Send(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if d := fake.Dropped(); len(d) != 0 {
		t.Fatalf("the flow dropped the card (%s, %d bytes)", d[0].Reason, len(d[0].Body))
	}
	m := fake.WaitMessages(t, 1)[0]
	if len(m.Body) > teams.MaxBody || len(m.Body) < teams.MaxBody-200 {
		t.Errorf("%d bytes: want close to, not over, %d", len(m.Body), teams.MaxBody)
	}
	for _, f := range m.Facts {
		if f.Title == "版本" && (!strings.HasSuffix(f.Value, "…") || !strings.HasPrefix(f.Value, `版本\*`)) {
			t.Errorf("version fact %.40q…", f.Value)
		}
		if f.Title == "项目" && f.Value != "My App" {
			t.Errorf("short facts must stay whole: %q", f.Value)
		}
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status    int
		code      string
		retry     bool
		wait      time.Duration
		wantInErr string
	}{
		{400, "TriggerInputSchemaMismatch", false, 0, "teams: The input body for trigger 'manual' of type 'Request' did not match its schema definition. (TriggerInputSchemaMismatch): the workflow expects another body"},
		{404, "WorkflowNotFound", false, 0, "the workflow was deleted"},
		{409, "WorkflowTriggerIsNotEnabled", false, 0, "turn it on"},
		{429, "WorkflowRequestsThrottled", true, 7 * time.Second, "HTTP 429"},
		{502, "BadGateway", true, 0, "will retry"},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			t.Parallel()
			fake := testsupport.NewTeams(t)
			fake.FailNext(1, tt.status, tt.code)
			att, err := sender(t, fake, fake.WebhookURL(), "").Send(context.Background(), taskEvent(event.CanaryStarted))
			ce := channeltest.AsError(t, err)
			if ce.Retry != tt.retry || ce.RetryAfter != tt.wait || ce.Code != tt.code || ce.Disable {
				t.Errorf("retry %v after %v code %q, want %v %v %q", ce.Retry, ce.RetryAfter, ce.Code, tt.retry, tt.wait, tt.code)
			}
			if !strings.Contains(err.Error(), tt.wantInErr) {
				t.Errorf("error %q lacks %q", err, tt.wantInErr)
			}
			if !strings.Contains(att.Response, tt.code) {
				t.Errorf("history lacks the answer: %q", att.Response)
			}
			channeltest.AssertNoSecret(t, att, err, fake.Sig())
		})
	}
	t.Run("410", func(t *testing.T) {
		t.Parallel()
		fake := testsupport.NewTeams(t)
		fake.FailNextStatus(1, http.StatusGone)
		_, err := sender(t, fake, fake.WebhookURL(), "").Send(context.Background(), taskEvent(event.CanaryStarted))
		if ce := channeltest.AsError(t, err); !ce.Disable {
			t.Errorf("410 must disable: %v", err)
		}
	})
}

func TestFakeChecksTheURL(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewTeams(t)
	tests := []struct {
		name, url, code, hint string
	}{
		{"wrong signature", strings.Replace(fake.WebhookURL(), "sig="+fake.Sig(), "sig=0000forged0000", 1), "DirectApiInvalidAuthorizationSignature", "check webhook_url"},
		{"deleted workflow", strings.Replace(fake.WebhookURL(), "/workflows/", "/workflows/00", 1), "WorkflowNotFound", "the workflow was deleted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			att, err := sender(t, fake, tt.url, "").Send(context.Background(), taskEvent(event.CanaryStarted))
			ce := channeltest.AsError(t, err)
			if ce.Retry || ce.Code != tt.code || !strings.Contains(err.Error(), tt.hint) {
				t.Errorf("err = %v (code %q), want permanent %s", err, ce.Code, tt.code)
			}
			channeltest.AssertNoSecret(t, att, err, fake.Sig(), "0000forged0000")
		})
	}
	if n := len(fake.Messages()); n != 0 {
		t.Errorf("%d messages posted", n)
	}
}

func TestRateLimits(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewTeams(t)
	key, limits := sender(t, fake, fake.WebhookURL(), "").RateLimits()
	if !strings.HasPrefix(key, "teams:") || strings.Contains(key, fake.Sig()) {
		t.Errorf("rate key %q", key)
	}
	if !reflect.DeepEqual(limits, []channel.Limit{{Count: 100, Per: time.Minute}}) {
		t.Errorf("limits %v", limits)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	d := channel.Deps{CheckURL: func(u string) error {
		if strings.Contains(u, "169.254.169.254") {
			return errors.New("egress refused: 169.254.169.254 is a loopback, link-local or metadata address; add it to HERALD_EGRESS_ALLOW if it is meant")
		}
		return nil
	}}
	const hook = "https://prod-00.westeurope.logic.azure.com:443/workflows/0a1b/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=AbC-123_xyz"
	const direct = "https://default0a1b.02.environment.api.powerplatform.com:443/powerautomate/automations/direct/workflows/0a1b/triggers/manual/paths/invoke?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=AbC-123_xyz"
	retired := `is an Office 365 connector webhook, which Microsoft retired: in Teams, create a workflow from "Post to a channel when a webhook request is received" and save its URL`
	tests := []struct {
		name string
		cfg  string
		want validate.Errors
	}{
		{"logic apps", `{"webhook_url":"` + hook + `"}`, nil},
		{"power platform", `{"webhook_url":"` + direct + `","lang":"en"}`, nil},
		{"missing", `{}`, validate.Errors{{Field: "webhook_url", Message: "is required"}}},
		{"retired connector", `{"webhook_url":"https://contoso.webhook.office.com/webhookb2/0000@1111/IncomingWebhook/2222/3333"}`, validate.Errors{{Field: "webhook_url", Message: retired}}},
		{"older connector", `{"webhook_url":"https://outlook.office.com/webhook/0000/IncomingWebhook/1111/2222"}`, validate.Errors{{Field: "webhook_url", Message: retired}}},
		{"http", `{"webhook_url":"http://prod-00.westeurope.logic.azure.com/workflows/x?sig=y"}`, validate.Errors{{Field: "webhook_url", Message: "must be https: Workflows webhooks are served over https only, and the URL carries its signature"}}},
		{"no signature", `{"webhook_url":"https://prod-00.westeurope.logic.azure.com/workflows/x/triggers/manual/paths/invoke?api-version=2016-06-01"}`, validate.Errors{{Field: "webhook_url", Message: "must carry the workflow's signature (…&sig=…): copy the whole URL Teams showed"}}},
		{"egress", `{"webhook_url":"https://169.254.169.254/workflows/x?sig=y"}`, validate.Errors{{Field: "webhook_url", Message: "egress refused: 169.254.169.254 is a loopback, link-local or metadata address; add it to HERALD_EGRESS_ALLOW if it is meant"}}},
		{"unknown", `{"webhook_url":"` + hook + `","title":"x"}`, validate.Errors{{Field: "title", Message: "unknown field"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := teams.Kind.Validate(json.RawMessage(tt.cfg), d)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors\n got %v\nwant %v", got, tt.want)
			}
		})
	}
	if got := teams.Kind.SecretFields(); !reflect.DeepEqual(got, []string{"webhook_url"}) {
		t.Errorf("SecretFields = %v", got)
	}
	if teams.Kind.Type() != "teams" {
		t.Errorf("Type = %q", teams.Kind.Type())
	}
}

func containsFact(facts []testsupport.TeamsFact, f testsupport.TeamsFact) bool {
	for _, x := range facts {
		if x == f {
			return true
		}
	}
	return false
}

func slicesContains(facts []teams.Fact, f teams.Fact) bool {
	for _, x := range facts {
		if x == f {
			return true
		}
	}
	return false
}
