package slack_test

import (
	"context"
	"strings"
	"testing"

	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify/channel"
	"github.com/herald-release/herald/internal/notify/channel/channeltest"
	"github.com/herald-release/herald/internal/notify/channel/slack"
	"github.com/herald-release/herald/internal/testsupport"
)

func TestMentionsAndBodyTemplate(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewSlack(t)
	s := channeltest.Sender(t, slack.Kind, map[string]any{
		"webhook_url": fake.WebhookURL(), "at_user_ids": []string{"U012AB3CD", "W0123"}, "at_here": true, "at_channel": true,
		channel.LookKey: map[string]any{"lang": "en", "title": "{{.Project.Name}} is out", "body": "*{{.Version.Name}}* on {{.Environment}} by {{.Actor.Name}}"},
	}, deps(fake))
	ev := taskEvent(event.FullCompleted)
	ev.Project.Name = "<!channel> app"
	ev.Actor = &event.Actor{ID: "u1", Name: "a&b"}
	att, err := s.Send(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	m := fake.WaitMessages(t, 1)[0]
	if m.Header != ":large_green_circle: <!channel> app is out" {
		t.Errorf("header %q (plain_text: nothing to escape)", m.Header)
	}
	if len(m.Fields) != 0 {
		t.Errorf("a body template replaces the fields: %q", m.Fields)
	}
	wantBody := "*v1.2.3* on production by a&amp;b"
	wantAt := "<@U012AB3CD> <@W0123> <!here> <!channel>"
	if len(m.Texts) < 3 || m.Texts[0] != wantBody || m.Texts[len(m.Texts)-1] != wantAt {
		t.Errorf("sections %q; want the body, the link, then the mentions", m.Texts)
	}
	if !strings.HasPrefix(m.Text, "&lt;!channel&gt; app is out\n"+wantBody) || !strings.HasSuffix(m.Text, "\n"+wantAt) {
		t.Errorf("the notification text %q must carry the body and the mentions, and no raw <!channel> from a name", m.Text)
	}
	if strings.Count(string(m.Body), "<!channel>") != 3 { // header (plain text), mention section, fallback text
		t.Errorf("body %s", m.Body)
	}
	p, err := s.(channel.Previewer).Preview(context.Background(), ev)
	if err != nil || p.Body != att.Request.Body || p.URL != att.Request.URL || strings.Contains(p.URL, fake.Token()) {
		t.Errorf("preview %+v differs from what was sent %+v (%v)", p, att.Request, err)
	}
}

func TestMentionValidation(t *testing.T) {
	t.Parallel()
	errs := slack.Kind.Validate([]byte(`{"webhook_url":"https://hooks.slack.com/services/T1/B1/abc","at_user_ids":["alice","U1X"],"at_here":"yes"}`), channel.Deps{})
	got := map[string]bool{}
	for _, e := range errs {
		got[e.Field] = true
	}
	if !got["at_user_ids[0]"] || !got["at_here"] || got["at_user_ids[1]"] {
		t.Errorf("errors %v", errs)
	}
}
