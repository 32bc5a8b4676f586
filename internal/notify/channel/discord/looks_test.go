package discord_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify/channel"
	"github.com/herald-release/herald/internal/notify/channel/channeltest"
	"github.com/herald-release/herald/internal/notify/channel/discord"
	"github.com/herald-release/herald/internal/testsupport"
)

func TestMentionsAndBodyTemplate(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewDiscord(t)
	d := channel.Deps{HTTP: fake.Client(), Version: "1.0.0"}
	s := channeltest.Sender(t, discord.Kind, map[string]any{
		"webhook_url": fake.WebhookURL(), "at_user_ids": []string{"123456789012345678"}, "at_role_ids": []string{"234567890123456789"},
		channel.LookKey: map[string]any{"body": "**{{.Version.Name}}** ({{.Project.Name}})\n{{.Environment}}"},
	}, d)
	ev := taskEvent(event.ReleaseFailed)
	ev.Project.Name = "@everyone *app*"
	if _, err := s.Send(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	m := fake.WaitMessages(t, 1)[0]
	if m.Content != "<@123456789012345678> <@&234567890123456789>" {
		t.Errorf("content %q", m.Content)
	}
	if len(m.AllowedMentions) != 0 || !slices.Equal(m.AllowedUsers, []string{"123456789012345678"}) || !slices.Equal(m.AllowedRoles, []string{"234567890123456789"}) {
		t.Errorf("allowed_mentions parse %v users %v roles %v: only the configured ids may ping", m.AllowedMentions, m.AllowedUsers, m.AllowedRoles)
	}
	e := m.Embeds[0]
	if e.Description != `**v1.2.3** (\@everyone \*app\*)`+"\nproduction" || len(e.Fields) != 0 || !strings.Contains(e.Title, "发布失败") {
		t.Errorf("embed %+v: the body template in the description, names escaped, default title", e)
	}

	// @everyone only when asked, and then allowed.
	fake2 := testsupport.NewDiscord(t)
	s = channeltest.Sender(t, discord.Kind, map[string]any{"webhook_url": fake2.WebhookURL(), "at_everyone": true},
		channel.Deps{HTTP: fake2.Client()})
	if _, err := s.Send(context.Background(), taskEvent(event.ReleaseFailed)); err != nil {
		t.Fatal(err)
	}
	m = fake2.WaitMessages(t, 1)[0]
	if m.Content != "@everyone" || !slices.Equal(m.AllowedMentions, []string{"everyone"}) || len(m.Embeds[0].Fields) == 0 {
		t.Errorf("at_everyone: content %q allowed %v", m.Content, m.AllowedMentions)
	}

	errs := discord.Kind.Validate([]byte(`{"webhook_url":"`+fake.WebhookURL()+`","at_user_ids":["alice"],"at_role_ids":["12"]}`), channel.Deps{})
	if len(errs) != 2 || errs[0].Field != "at_role_ids[0]" && errs[0].Field != "at_user_ids[0]" {
		t.Errorf("validation %v", errs)
	}
}
