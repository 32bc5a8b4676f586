package telegram_test

import (
	"context"
	"strings"
	"testing"

	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify/channel"
	"github.com/herald-release/herald/internal/testsupport"
)

// A body template is plain text on Telegram: users write "v1.2." and
// "@oncall" without MarkdownV2 escapes, and Telegram parses the message.
func TestBodyTemplateIsPlainText(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewTelegram(t)
	cfg := config(fake)
	cfg[channel.LookKey] = map[string]any{"title": "{{.Project.Name}} -> {{.Environment}}", "body": "Done: {{.Version.Name}} (took {{.Duration}}).\n@oncall please check!"}
	ev := taskEvent(event.FullCompleted)
	if _, err := sender(t, cfg).Send(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	m := fake.WaitMessages(t, 1)[0]
	want := "My App (beta)! -> " + ev.Environment + "\n\nDone: v1.2.3-rc.1+build_5 (took " + ev.Duration + ").\n@oncall please check!"
	if !strings.HasPrefix(m.Text, want) || len(m.Bold) != 1 || m.Bold[0] != "My App (beta)! -> "+ev.Environment {
		t.Errorf("chat shows %q (bold %q), want it to start with %q", m.Text, m.Bold, want)
	}
}
