package email_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify/channel"
	"github.com/herald-release/herald/internal/testsupport"
)

// people is a directory of users for recipients.
type people map[string]channel.Person

func (p people) Find(_ context.Context, ev *event.Envelope, role string) (channel.Person, bool, error) {
	if role == channel.RecipientPlanManager && ev.ObjectKind != event.KindReleasePlan {
		return channel.Person{}, false, nil
	}
	u, ok := p[role]
	if !ok {
		return channel.Person{}, false, errors.New("directory down")
	}
	return u, true, nil
}

func TestRecipientsAndBodyTemplate(t *testing.T) {
	t.Parallel()
	srv := testsupport.NewSMTP(t)
	d := deps()
	d.People = people{channel.RecipientTaskCreator: {ID: "usr_c", Name: "Carol", Email: "carol@example.com"}}
	cfg := config(srv, map[string]any{"to": []string{"alice@example.com", "carol@example.com"}, "recipients": []string{"task_creator", "plan_manager"},
		channel.LookKey: map[string]any{"lang": "en", "title": "[{{.Environment}}] {{.Project.Name}} {{.Outcome}}", "body": "{{.Version.Name}} failed on {{.Deployment.FailedCount}} of {{.Deployment.TotalCount}} hosts.\nBy {{.Actor.Name}}."}})
	s := newSender(t, cfg, d)
	att, err := s.Send(context.Background(), sampleEvent())
	if err != nil {
		t.Fatal(err)
	}
	m := srv.WaitMessages(t, 1)[0]
	if !slices.Equal(m.To, []string{"alice@example.com", "carol@example.com"}) {
		t.Errorf("RCPT TO %v: the creator once, the plan manager does not apply", m.To)
	}
	if got := m.Header("Subject"); got != "[production] <b>My App</b> failed" {
		t.Errorf("subject %q", got)
	}
	text, html := parts(t, m)
	if !strings.HasPrefix(text, "[production] <b>My App</b> failed\n\nv1.2.3 failed on 1 of 4 hosts.\nBy alice.\n") || strings.Contains(text, "Project:") {
		t.Errorf("text part %q", text)
	}
	if !strings.Contains(html, "white-space:pre-wrap") || !strings.Contains(strings.ReplaceAll(html, "\r\n", "\n"), "v1.2.3 failed on 1 of 4 hosts.\nBy alice.") ||
		!strings.Contains(html, "&lt;b&gt;My App&lt;/b&gt;") || strings.Contains(html, "<b>My App") {
		t.Errorf("html part %q", html)
	}
	p, err := s.(channel.Previewer).Preview(context.Background(), sampleEvent())
	if err != nil || p.Headers["To"] != att.Request.Headers["To"] || p.Body != att.Request.Body {
		t.Errorf("preview %+v, sent %+v (%v)", p, att.Request, err)
	}

	// A creator without an email: nothing is sent, and the error says whom
	// to fix.
	d.People = people{channel.RecipientTaskCreator: {ID: "usr_d", Name: "dave"}}
	_, err = newSender(t, cfg, d).Send(context.Background(), sampleEvent())
	ce := channel.Classify(err)
	if err == nil || ce.Retry || !strings.Contains(err.Error(), "dave (usr_d)") || !strings.Contains(err.Error(), "no email") {
		t.Fatalf("err %v", err)
	}
	// Only recipients, none of which applies: a clear failure.
	cfg = config(srv, map[string]any{"to": nil, "recipients": []string{"plan_manager"}})
	_, err = newSender(t, cfg, d).Send(context.Background(), sampleEvent())
	if err == nil || !strings.Contains(err.Error(), "no recipient for release_failed") {
		t.Fatalf("err %v", err)
	}
	// A directory that fails is worth a retry.
	d.People = people{}
	cfg = config(srv, map[string]any{"recipients": []string{"task_creator"}})
	if _, err = newSender(t, cfg, d).Send(context.Background(), sampleEvent()); !channel.Classify(err).Retry {
		t.Fatalf("err %v", err)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("%d messages sent", n)
	}
}
