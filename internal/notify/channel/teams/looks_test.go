package teams_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify/channel"
	"github.com/herald-release/herald/internal/notify/channel/channeltest"
	"github.com/herald-release/herald/internal/notify/channel/teams"
	"github.com/herald-release/herald/internal/testsupport"
)

func TestMentionsAndBodyTemplate(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewTeams(t)
	s := channeltest.Sender(t, teams.Kind, map[string]any{
		"webhook_url": fake.WebhookURL(), "at_user_ids": []string{"alice@contoso.com", "8f6b0b6e-6b4c-4a39-9d4b-2f4a3f8d1c11"},
		channel.LookKey: map[string]any{"lang": "en", "body": "**{{.Version.Name}}** of {{.Project.Name}} failed: {{.Deployment.FailedCount}} host(s)"},
	}, channel.Deps{HTTP: fake.Client()})
	ev := taskEvent(event.ReleaseFailed)
	ev.Project.Name = "[x](https://evil.example)"
	ev.Deployment.FailedCount = 2
	if _, err := s.Send(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	m := fake.WaitMessages(t, 1)[0]
	if len(fake.Dropped()) != 0 {
		t.Fatalf("the flow dropped the card: %+v", fake.Dropped())
	}
	if len(m.Facts) != 0 || len(m.Texts) != 2 || m.Texts[0] != `**v1.2.3** of \[x\](https://evil.example) failed: 2 host(s)` {
		t.Errorf("texts %q facts %v: the body replaces the facts, names escaped", m.Texts, m.Facts)
	}
	want := []testsupport.TeamsMention{
		{Text: "<at>alice@contoso.com</at>", ID: "alice@contoso.com", Name: "alice@contoso.com"},
		{Text: "<at>8f6b0b6e-6b4c-4a39-9d4b-2f4a3f8d1c11</at>", ID: "8f6b0b6e-6b4c-4a39-9d4b-2f4a3f8d1c11", Name: "8f6b0b6e-6b4c-4a39-9d4b-2f4a3f8d1c11"},
	}
	if !reflect.DeepEqual(m.Mentions, want) || !strings.Contains(m.Texts[1], "<at>alice@contoso.com</at> <at>8f6b") {
		t.Errorf("mentions %+v in %q", m.Mentions, m.Texts)
	}
	if m.Title != "Release: release failed" {
		t.Errorf("title %q", m.Title)
	}
	if errs := teams.Kind.Validate([]byte(`{"webhook_url":"`+fake.WebhookURL()+`","at_user_ids":["Alice <a@b.c>"]}`), channel.Deps{}); len(errs) != 1 || errs[0].Field != "at_user_ids[0]" {
		t.Errorf("validation %v", errs)
	}
}
