package feishu_test

import (
	"context"
	"strings"
	"testing"

	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify/channel"
	"github.com/herald-release/herald/internal/testsupport"
)

func TestPreviewIsWhatIsSentSignMasked(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewFeishu(t, "SECfeishu-preview")
	s := sender(t, map[string]any{"webhook_url": fake.WebhookURL(), "sign_secret": "SECfeishu-preview", "at_all": true,
		channel.LookKey: map[string]any{"body": "{{.Project.Name}}: {{.Outcome}}"}}, deps())
	ev := taskEvent(event.FullCompleted)
	p, err := s.(channel.Previewer).Preview(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	att, err := s.Send(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	m := fake.WaitMessages(t, 1)[0]
	if m.Text != "My App: success\n<at id=all></at>" {
		t.Errorf("card text %q: the body, then the mentions", m.Text)
	}
	if p.URL != att.Request.URL || !strings.Contains(p.Body, `"sign":"******"`) || strings.Contains(p.URL, fake.HookID()) ||
		!strings.Contains(p.Body, "My App: success") {
		t.Errorf("preview %+v", p)
	}
}
