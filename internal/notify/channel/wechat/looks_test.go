package wechat_test

import (
	"context"
	"strings"
	"testing"

	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify/channel"
	"github.com/herald-release/herald/internal/testsupport"
)

func TestBodyTemplateInMarkdownAndText(t *testing.T) {
	t.Parallel()
	look := map[string]any{"lang": "en", "title": "{{.Project.Name}} {{.Version.Name}}", "body": "> **{{.StatusText}}** on {{.Environment}}\n<@oncall> {{.Project.Name}}"}
	ev := taskEvent(event.ReleaseStarted)
	ev.Project.Name = "<@everyone>"

	fake := testsupport.NewWeCom(t)
	s := sender(t, map[string]any{"webhook_url": fake.WebhookURL(), "mentioned_list": []string{"zhangsan"}, channel.LookKey: look}, deps())
	if _, err := s.Send(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	m := fake.WaitMessages(t, 1)[0]
	want := "## < @everyone> v1.2.3\n\n> **running** on production\n<@oncall> < @everyone>\n\n[View details](https://herald.example.com/tasks/t1)\n\n<@zhangsan>"
	if m.MsgType != "markdown" || m.Content != want {
		t.Errorf("markdown %q, want %q: the template's <@…> mentions, a name's does not", m.Content, want)
	}

	// Mentions by mobile go as text: the body as typed.
	fake = testsupport.NewWeCom(t)
	s = sender(t, map[string]any{"webhook_url": fake.WebhookURL(), "mentioned_mobile_list": []string{"13800000000"}, channel.LookKey: look}, deps())
	if _, err := s.Send(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	m = fake.WaitMessages(t, 1)[0]
	if m.MsgType != "text" || !strings.HasPrefix(m.Content, "<@everyone> v1.2.3\n> **running** on production\n") {
		t.Errorf("text %q", m.Content)
	}

	// The application: markdown, and a preview that fetches no token.
	fake = testsupport.NewWeCom(t)
	cfg := appConfig(fake)
	cfg[channel.LookKey] = look
	s = sender(t, cfg, deps())
	p, err := s.(channel.Previewer).Preview(context.Background(), ev)
	if err != nil || !strings.HasSuffix(p.URL, "access_token="+channel.Masked) || !strings.Contains(p.Body, "**running** on production") {
		t.Errorf("preview %+v (%v)", p, err)
	}
	if fake.TokenRequests() != 0 {
		t.Error("a preview fetched a token")
	}
	if _, err := s.Send(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if m = fake.WaitMessages(t, 1)[0]; !strings.Contains(m.Content, "**running** on production") {
		t.Errorf("app markdown %q", m.Content)
	}
}
