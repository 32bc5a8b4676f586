package custom_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/herald-release/herald/internal/notify/channel"
	"github.com/herald-release/herald/internal/notify/channel/custom"
	"github.com/herald-release/herald/internal/testsupport"
)

// A template adds "message" to the standard body; the signature covers
// the body as sent; without a template the body is the standard message.
func TestMessageOnlyWithATemplate(t *testing.T) {
	t.Parallel()
	rcv := testsupport.NewReceiver(t)
	if err := rcv.RequireSignature(testSecret); err != nil {
		t.Fatal(err)
	}
	s := newSender(t, map[string]any{"url": rcv.URL() + "/h", "secret": testSecret,
		channel.LookKey: map[string]any{"lang": "en", "title": "{{.Project.Name}} {{.Version.Name}}"}}, deps())
	ev := sampleEvent()
	att, err := s.Send(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	req := rcv.WaitRequests(t, 1)[0]
	if req.SignatureErr != nil {
		t.Fatalf("signature: %v", req.SignatureErr)
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(req.Body, &got); err != nil {
		t.Fatal(err)
	}
	std, _ := custom.Body(ev)
	var want map[string]json.RawMessage
	_ = json.Unmarshal(std, &want)
	for k, v := range want {
		if string(got[k]) != string(v) {
			t.Errorf("%s = %s, want the standard message's %s", k, got[k], v)
		}
	}
	var msg custom.Message
	_ = json.Unmarshal(got["message"], &msg)
	if msg.Title != "My App v1.2.3" || !strings.HasPrefix(msg.Body, "Project: My App\nVersion: v1.2.3\n") {
		t.Errorf("message %+v: the title rendered, the default body as text lines", msg)
	}
	p, err := s.(channel.Previewer).Preview(context.Background(), ev)
	if err != nil || p.Headers[custom.HeaderWebhookSignature] != channel.Masked || !strings.Contains(p.Body, `"message":{"title":"My App v1.2.3"`) {
		t.Errorf("preview %+v (%v)", p, err)
	}
	if sig := att.Request.Headers[custom.HeaderWebhookSignature]; sig != channel.Masked {
		t.Errorf("signature recorded as %q", sig)
	}

	rcv2 := testsupport.NewReceiver(t)
	if _, err := newSender(t, map[string]any{"url": rcv2.URL() + "/h"}, deps()).Send(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if body := rcv2.WaitRequests(t, 1)[0].Body; string(body) != string(std) {
		t.Errorf("without a template the body is %s, want the standard message %s", body, std)
	}
}
