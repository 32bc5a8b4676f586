package feishuapp_test

import (
	"context"
	"strings"
	"testing"

	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify/channel"
	"github.com/herald-release/herald/internal/testsupport"
)

type directory map[string]channel.Person

func (d directory) Find(_ context.Context, _ *event.Envelope, role string) (channel.Person, bool, error) {
	p, ok := d[role]
	return p, ok, nil
}

// Recipients go by email, next to the fixed receivers and their own id
// type; a body template fills the card's text.
func TestRecipientsByEmailAndBodyTemplate(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewFeishuApp(t)
	fake.AddReceiver("email", "mia@example.com", 0)
	d := deps()
	d.People = directory{channel.RecipientTaskCreator: {ID: "usr_m", Name: "Mia", Email: "mia@example.com"}}
	cfg := config(fake, "chat_id", fake.ChatID())
	cfg["recipients"] = []string{"task_creator"}
	cfg[channel.LookKey] = map[string]any{"body": "**{{.Version.Name}}** → {{.Environment}} <at id=all></at>\n{{.Project.Name}}"}
	ev := taskEvent("evt_r1", event.CanaryStarted)
	ev.Project.Name = "<at id=all></at>"
	s := sender(t, cfg, d)
	if _, err := s.Send(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	ms := fake.WaitMessages(t, 2)
	if ms[0].ReceiveIDType != "chat_id" || ms[0].ReceiveID != fake.ChatID() || ms[1].ReceiveIDType != "email" || ms[1].ReceiveID != "mia@example.com" {
		t.Fatalf("receivers %s:%s, %s:%s", ms[0].ReceiveIDType, ms[0].ReceiveID, ms[1].ReceiveIDType, ms[1].ReceiveID)
	}
	if ms[0].UUID == ms[1].UUID {
		t.Error("two receivers share a uuid")
	}
	// The template's own <at id=all> is markup (the user wrote it); the
	// project's is escaped.
	if ms[1].Text != "**v1.2.3** → production <at id=all></at>\n&lt;at id=all&gt;&lt;/at&gt;" {
		t.Errorf("card text %q", ms[1].Text)
	}
	p, err := s.(channel.Previewer).Preview(context.Background(), ev)
	if err != nil || !strings.Contains(p.URL, "receive_id_type=chat_id") || p.Headers["Authorization"] != channel.Masked ||
		!strings.Contains(p.Body, `**v1.2.3** → production`) {
		t.Errorf("preview %+v (%v)", p, err)
	}
	if fake.TokenRequests() != 1 {
		t.Errorf("%d token requests; a preview must fetch none", fake.TokenRequests())
	}

	// Only recipients, and the person has no email: nothing is sent.
	d.People = directory{channel.RecipientTaskCreator: {ID: "usr_n", Name: "Ned"}}
	cfg = config(fake, "chat_id")
	delete(cfg, "receive_ids")
	cfg["recipients"] = []string{"task_creator"}
	_, err = sender(t, cfg, d).Send(context.Background(), taskEvent("evt_r2", event.CanaryStarted))
	if err == nil || channel.Classify(err).Retry || !strings.Contains(err.Error(), "Ned (usr_n), has no email address") {
		t.Fatalf("err %v", err)
	}
}
