package feishuapp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-release/herald/internal/egress"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify/channel"
	"github.com/herald-release/herald/internal/notify/channel/channeltest"
	"github.com/herald-release/herald/internal/notify/channel/feishuapp"
	"github.com/herald-release/herald/internal/testsupport"
	"github.com/herald-release/herald/internal/validate"
)

func deps() channel.Deps {
	return channel.Deps{HTTP: egress.AllowAll().Client(), Version: "1.0.0"}
}

func config(fake *testsupport.FeishuApp, idType string, ids ...string) map[string]any {
	return map[string]any{
		"app_id": fake.AppID(), "app_secret": fake.Secret(), "api_base_url": fake.URL(),
		"receive_id_type": idType, "receive_ids": ids,
	}
}

func sender(t *testing.T, cfg map[string]any, d channel.Deps) channel.Sender {
	t.Helper()
	return channeltest.Sender(t, feishuapp.Kind, cfg, d)
}

func taskEvent(id, eventType string) *event.Envelope {
	return &event.Envelope{
		ID: id, EventType: eventType, ObjectKind: event.KindReleaseTask, Action: eventType,
		Project:     &event.ProjectRef{ID: "my-app", Name: "My App"},
		Version:     &event.VersionRef{ID: "v1", Name: "v1.2.3"},
		Task:        &event.TaskRef{ID: "t1", Type: "deploy", Strategy: "canary", Status: "running"},
		Deployment:  &event.Deployment{TotalCount: 10, CanaryCount: 1, CompletedCount: 1, Hosts: []string{"h1"}},
		Environment: "production",
		URL:         "https://herald.example.com/tasks/t1",
	}
}

// secretsOf lists everything of the fake that must never reach history.
func secretsOf(fake *testsupport.FeishuApp) []string {
	return append([]string{fake.Secret()}, fake.AccessTokens()...)
}

func TestSendsCardWithCachedToken(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewFeishuApp(t)
	s := sender(t, config(fake, "chat_id", fake.ChatID()), deps())
	for i := range 2 {
		att, err := s.Send(context.Background(), taskEvent(fmt.Sprint("evt_", i), event.CanaryStarted))
		if err != nil {
			t.Fatal(err)
		}
		if att.Request.URL != fake.URL()+"/open-apis/im/v1/messages?receive_id_type=chat_id" || att.StatusCode != 200 {
			t.Errorf("recorded %d %s", att.StatusCode, att.Request.URL)
		}
		if att.Request.Headers["Authorization"] != channel.Masked {
			t.Errorf("Authorization recorded as %q", att.Request.Headers["Authorization"])
		}
		channeltest.AssertNoSecret(t, att, err, secretsOf(fake)...)
	}
	msgs := fake.WaitMessages(t, 2)
	if got := fake.TokenRequests(); got != 1 {
		t.Errorf("tenant_access_token fetched %d times, want 1 (cached)", got)
	}
	m := msgs[0]
	if m.ReceiveIDType != "chat_id" || m.ReceiveID != fake.ChatID() || m.MsgType != "interactive" ||
		m.Title != "发布通知：金丝雀发布开始" || m.Template != "blue" {
		t.Errorf("message %+v", m)
	}
	for _, want := range []string{"**项目**: My App", "**版本**: v1.2.3", "**状态**: 发布中", "**主机**: h1"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("card lacks %q:\n%s", want, m.Text)
		}
	}
	if !reflect.DeepEqual(m.ButtonURL, []string{"https://herald.example.com/tasks/t1"}) {
		t.Errorf("buttons %v", m.ButtonURL)
	}
	if len(m.UUID) != 32 || m.UUID == msgs[1].UUID {
		t.Errorf("uuids %q %q: want one per event", m.UUID, msgs[1].UUID)
	}
}

func TestEveryReceiverOnceEvenAcrossRetries(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewFeishuApp(t)
	other := "ou_" + strings.Repeat("b", 32)
	fake.AddReceiver("open_id", other, 230013) // not yet in the app's availability
	s := sender(t, config(fake, "open_id", fake.OpenID(), other), deps())
	ev := taskEvent("evt_retry", event.ReleaseFailed)

	att, err := s.Send(context.Background(), ev)
	ce := channeltest.AsError(t, err)
	if ce.Retry || ce.Code != "230013" || !strings.Contains(err.Error(), "receive_ids[1] ("+other+") is outside the app's availability") {
		t.Fatalf("err = %v", err)
	}
	channeltest.AssertNoSecret(t, att, err, secretsOf(fake)...)
	if msgs := fake.Messages(); len(msgs) != 1 || msgs[0].ReceiveID != fake.OpenID() {
		t.Fatalf("messages %+v", msgs)
	}

	// An admin widens the availability; the event is delivered again.
	fake.AddReceiver("open_id", other, 0)
	if _, err := s.Send(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	msgs := fake.Messages()
	if len(msgs) != 2 || msgs[1].ReceiveID != other {
		t.Errorf("want the first receiver once and the second once, got %d messages", len(msgs))
	}
}

func TestConcurrentSendsFetchOneToken(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewFeishuApp(t)
	// Each request a second after the last, so that 10 messages to one
	// chat stay within Feishu's 5 a second.
	start := time.Now()
	var tick atomic.Int64
	fake.SetNow(func() time.Time { return start.Add(time.Duration(tick.Add(1)) * time.Second) })
	s := sender(t, config(fake, "chat_id", fake.ChatID()), deps())
	var n atomic.Int64
	sendAll := func(count int) {
		var wg sync.WaitGroup
		errs := make(chan error, count)
		for range count {
			wg.Go(func() {
				if _, err := s.Send(context.Background(), taskEvent(fmt.Sprint("evt_", n.Add(1)), event.CanaryStarted)); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
	sendAll(10)
	if got := fake.TokenRequests(); got != 1 {
		t.Fatalf("cold start: token fetched %d times, want 1", got)
	}
	// Every sender now holds a revoked token and gets 99991663: one of them
	// fetches a new token, the others wait for it, all resend.
	fake.RevokeTokens()
	sendAll(10)
	if got := fake.TokenRequests(); got != 2 {
		t.Errorf("after revocation: token fetched %d times in all, want 2", got)
	}
	if got := len(fake.WaitMessages(t, 20)); got != 20 {
		t.Errorf("%d messages delivered, want 20", got)
	}
}

func TestRefreshesBeforeExpiry(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewFeishuApp(t)
	var offset atomic.Int64
	d := deps()
	d.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	s := sender(t, config(fake, "chat_id", fake.ChatID()), d)
	send := func(id string) {
		t.Helper()
		if _, err := s.Send(context.Background(), taskEvent(id, event.CanaryStarted)); err != nil {
			t.Fatal(err)
		}
	}
	send("a")
	offset.Store(int64(2*time.Hour - 10*time.Minute))
	send("b")
	if got := fake.TokenRequests(); got != 1 {
		t.Fatalf("token fetched %d times, want 1", got)
	}
	offset.Store(int64(2*time.Hour - time.Minute))
	send("c")
	if got := fake.TokenRequests(); got != 2 {
		t.Errorf("token fetched %d times, want 2: a token about to expire is replaced", got)
	}
}

func TestInvalidTokenRefreshedAndResentOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		fails   int
		code    int
		wantErr bool
	}{
		{"99991663 once", 1, 99991663, false},
		{"99991661 once", 1, 99991661, false},
		{"99991668 once", 1, 99991668, false},
		{"99991663 twice: later", 2, 99991663, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := testsupport.NewFeishuApp(t)
			s := sender(t, config(fake, "chat_id", fake.ChatID()), deps())
			fake.FailNext(tt.fails, tt.code, "Invalid access token for authorization. Please make a request with token attached.")
			att, err := s.Send(context.Background(), taskEvent("evt_1", event.CanaryStarted))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				if ce := channeltest.AsError(t, err); !ce.Retry || ce.Code != fmt.Sprint(tt.code) {
					t.Errorf("a twice-refused token should be retried later: %v", err)
				}
			}
			if got := fake.TokenRequests(); got != 2 {
				t.Errorf("token fetched %d times, want 2", got)
			}
			if got := fake.Requests(); got != 2 {
				t.Errorf("%d sends, want 2 (one resend only)", got)
			}
			channeltest.AssertNoSecret(t, att, err, secretsOf(fake)...)
		})
	}
}

func TestRevokedTokenIsReplaced(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewFeishuApp(t)
	s := sender(t, config(fake, "chat_id", fake.ChatID()), deps())
	for i, revoke := range []bool{false, true} {
		if revoke {
			fake.RevokeTokens()
		}
		if _, err := s.Send(context.Background(), taskEvent(fmt.Sprint("evt_", i), event.CanaryStarted)); err != nil {
			t.Fatal(err)
		}
	}
	msgs := fake.WaitMessages(t, 2)
	if msgs[0].Token == msgs[1].Token || fake.TokenRequests() != 2 {
		t.Errorf("a revoked token must be replaced: %d fetches", fake.TokenRequests())
	}
}

func TestTokenFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		mutate    func(cfg map[string]any)
		script    int
		retry     bool
		wait      time.Duration
		code      string
		wantInErr string
	}{
		{"wrong secret", func(c map[string]any) { c["app_secret"] = "0123456789abcdef-wrong" }, 0, false, 0, "10014", "tenant_access_token: app secret invalid (10014): check app_id and app_secret"},
		{"wrong app", func(c map[string]any) { c["app_id"] = "cli_notthisapp" }, 0, false, 0, "10003", "check app_id and app_secret"},
		{"rate limited", nil, 99991400, true, 2 * time.Second, "99991400", "will retry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := testsupport.NewFeishuApp(t)
			cfg := config(fake, "chat_id", fake.ChatID())
			if tt.mutate != nil {
				tt.mutate(cfg)
			}
			if tt.script != 0 {
				fake.FailNextToken(1, tt.script, "request trigger frequency limit")
			}
			att, err := sender(t, cfg, deps()).Send(context.Background(), taskEvent("evt_1", event.CanaryStarted))
			ce := channeltest.AsError(t, err)
			if ce.Retry != tt.retry || ce.RetryAfter != tt.wait || ce.Code != tt.code || !strings.Contains(err.Error(), tt.wantInErr) {
				t.Fatalf("err = %v (retry %v after %v), want retry %v after %v code %s with %q", err, ce.Retry, ce.RetryAfter, tt.retry, tt.wait, tt.code, tt.wantInErr)
			}
			if !strings.HasSuffix(att.Request.URL, "/open-apis/auth/v3/tenant_access_token/internal") || !strings.Contains(att.Request.Body, `"app_secret":"******"`) {
				t.Errorf("history should show the failed token request, masked: %s %s", att.Request.URL, att.Request.Body)
			}
			channeltest.AssertNoSecret(t, att, err, append(secretsOf(fake), "0123456789abcdef-wrong")...)
			if fake.Requests() != 0 {
				t.Error("no message may be sent without a token")
			}
		})
	}
}

func TestSendCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code      int
		retry     bool
		wait      time.Duration
		wantInErr string
	}{
		{99991400, true, 2 * time.Second, "over the app's API frequency limit; will retry"},
		{230020, true, time.Second, "over 5 messages a second to receive_ids[0]"},
		{230002, false, 0, "add the app's bot to the chat receive_ids[0]"},
		{230006, false, 0, "enable the app's bot ability"},
		{230001, false, 0, "check receive_ids[0]"},
		{99991672, false, 0, "im:message:send_as_bot"},
		{230025, false, 0, "report this"},
		{234567, false, 0, "feishu_app: platform says no (234567)"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.code), func(t *testing.T) {
			t.Parallel()
			fake := testsupport.NewFeishuApp(t)
			fake.FailNext(1, tt.code, "platform says no")
			att, err := sender(t, config(fake, "chat_id", fake.ChatID()), deps()).Send(context.Background(), taskEvent("evt_1", event.CanaryStarted))
			ce := channeltest.AsError(t, err)
			if ce.Retry != tt.retry || ce.RetryAfter != tt.wait || ce.Code != fmt.Sprint(tt.code) || !strings.Contains(err.Error(), tt.wantInErr) {
				t.Fatalf("err = %v (retry %v after %v), want retry %v after %v with %q", err, ce.Retry, ce.RetryAfter, tt.retry, tt.wait, tt.wantInErr)
			}
			if !strings.Contains(att.Response, fmt.Sprint(tt.code)) {
				t.Errorf("the platform's answer belongs in history: %q", att.Response)
			}
			channeltest.AssertNoSecret(t, att, err, secretsOf(fake)...)
		})
	}
	t.Run("5xx", func(t *testing.T) {
		t.Parallel()
		fake := testsupport.NewFeishuApp(t)
		fake.FailNextStatus(1, http.StatusServiceUnavailable)
		att, err := sender(t, config(fake, "chat_id", fake.ChatID()), deps()).Send(context.Background(), taskEvent("evt_1", event.CanaryStarted))
		if ce := channeltest.AsError(t, err); !ce.Retry {
			t.Errorf("503 must be retried: %v", err)
		}
		channeltest.AssertNoSecret(t, att, err, secretsOf(fake)...)
	})
}

func TestFakeChecksReceivers(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewFeishuApp(t)
	outside := "oc_" + strings.Repeat("c", 32)
	fake.AddReceiver("chat_id", outside, 230002)
	tests := []struct {
		name, idType string
		ids          []string
		code         string
		wantInErr    string
	}{
		{"unknown chat", "chat_id", []string{"oc_" + strings.Repeat("0", 32)}, "230001", "invalid receive_id (230001): check receive_ids[0]"},
		{"bot not in chat", "chat_id", []string{fake.ChatID(), outside}, "230002", "add the app's bot to the chat receive_ids[1] (" + outside + ")"},
		{"wrong id type", "open_id", []string{"ou_" + fake.ChatID()[3:]}, "230001", "check receive_ids[0]"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sender(t, config(fake, tt.idType, tt.ids...), deps()).Send(context.Background(), taskEvent(fmt.Sprint("evt_", i), event.CanaryStarted))
			if ce := channeltest.AsError(t, err); ce.Retry || ce.Code != tt.code || !strings.Contains(err.Error(), tt.wantInErr) {
				t.Errorf("err = %v, want permanent %s with %q", err, tt.code, tt.wantInErr)
			}
		})
	}
}

func TestFakeAppRateLimit(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewFeishuApp(t)
	frozen := time.Now()
	fake.SetNow(func() time.Time { return frozen })
	ids := make([]string, feishuapp.MaxReceivers)
	for i := range ids {
		ids[i] = fmt.Sprintf("ou_%032d", i)
		fake.AddReceiver("open_id", ids[i], 0)
	}
	s := sender(t, config(fake, "open_id", ids...), deps())
	if _, err := s.Send(context.Background(), taskEvent("evt_1", event.CanaryStarted)); err != nil {
		t.Fatalf("50 receivers in a second: %v", err)
	}
	_, err := s.Send(context.Background(), taskEvent("evt_2", event.CanaryStarted))
	if ce := channeltest.AsError(t, err); !ce.Retry || ce.Code != "99991400" || ce.RetryAfter != 2*time.Second {
		t.Fatalf("51st call in a second: err = %v, want a retry after x-ogw-ratelimit-reset's 2s", err)
	}
	_, limits := s.RateLimits()
	if !reflect.DeepEqual(limits, []channel.Limit{{Count: 1, Per: time.Second}, {Count: 20, Per: time.Minute}}) {
		t.Errorf("limits for 50 receivers %v", limits)
	}
	key, limits := sender(t, config(fake, "chat_id", fake.ChatID()), deps()).RateLimits()
	if !reflect.DeepEqual(limits, []channel.Limit{{Count: 5, Per: time.Second}, {Count: 1000, Per: time.Minute}}) || !strings.HasPrefix(key, "feishu_app:") {
		t.Errorf("limits for one receiver %q %v", key, limits)
	}
}

func TestOversizedCardIsShortened(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewFeishuApp(t)
	ev := taskEvent("evt_1", event.CanaryStarted)
	ev.Version.Name = strings.Repeat(`版本"<&>\`, 4000)
	if _, err := sender(t, config(fake, "chat_id", fake.ChatID()), deps()).Send(context.Background(), ev); err != nil {
		t.Fatalf("an oversized card must be shortened, not refused: %v", err)
	}
	m := fake.WaitMessages(t, 1)[0]
	if len(m.Body) > feishuapp.MaxBody || !strings.Contains(m.Text, "…") {
		t.Errorf("%d bytes", len(m.Body))
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	d := channel.Deps{CheckURL: func(u string) error {
		if strings.Contains(u, "10.0.0.1") {
			return errors.New("egress refused: 10.0.0.1 is not allowed")
		}
		return nil
	}}
	const app = `"app_id":"cli_a1b2","app_secret":"s3cr3t"`
	tests := []struct {
		name string
		cfg  string
		want validate.Errors
	}{
		{"chat", `{` + app + `,"receive_id_type":"chat_id","receive_ids":["oc_1","oc_2"]}`, nil},
		{"default type", `{` + app + `,"receive_ids":["oc_1"],"lang":"en"}`, nil},
		{"emails, lark", `{` + app + `,"receive_id_type":"email","receive_ids":["ops@example.com"],"api_base_url":"https://open.larksuite.com"}`, nil},
		{"user ids", `{` + app + `,"receive_id_type":"user_id","receive_ids":["4d7a3c6g"]}`, nil},
		{"missing", `{}`, validate.Errors{
			{Field: "app_id", Message: "is required: the app's App ID (cli_…), from its Credentials page"},
			{Field: "app_secret", Message: "is required: the app's App Secret, from its Credentials page"},
			{Field: "receive_ids", Message: "give at least one chat or person to send to (or recipients: task_creator, plan_manager)"},
		}},
		{"bad type", `{` + app + `,"receive_id_type":"department_id","receive_ids":["od_1"]}`, validate.Errors{
			{Field: "receive_id_type", Message: "must be one of chat_id, open_id, user_id, union_id, email"},
		}},
		{"ids of another type", `{` + app + `,"receive_id_type":"open_id","receive_ids":["oc_1","ou_2",""]}`, validate.Errors{
			{Field: "receive_ids[2]", Message: "must be a non-empty string"},
			{Field: "receive_ids[0]", Message: "must be an open id (ou_…), as receive_id_type says"},
		}},
		{"not an email", `{` + app + `,"receive_id_type":"email","receive_ids":["ops"]}`, validate.Errors{
			{Field: "receive_ids[0]", Message: "must be an email address, as receive_id_type says"},
		}},
		{"empty list", `{` + app + `,"receive_ids":[]}`, validate.Errors{{Field: "receive_ids", Message: "give at least one chat or person to send to (or recipients: task_creator, plan_manager)"}}},
		{"too many", `{` + app + `,"receive_ids":[` + strings.Repeat(`"oc_1",`, 50) + `"oc_1"]}`, validate.Errors{{Field: "receive_ids", Message: "at most 50 entries"}}},
		{"egress", `{` + app + `,"receive_ids":["oc_1"],"api_base_url":"http://10.0.0.1"}`, validate.Errors{{Field: "api_base_url", Message: "egress refused: 10.0.0.1 is not allowed"}}},
		{"unknown", `{` + app + `,"receive_ids":["oc_1"],"webhook_url":"https://x"}`, validate.Errors{{Field: "webhook_url", Message: "unknown field"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := feishuapp.Kind.Validate(json.RawMessage(tt.cfg), d)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors\n got %v\nwant %v", got, tt.want)
			}
		})
	}
	if got := feishuapp.Kind.SecretFields(); !reflect.DeepEqual(got, []string{"app_secret"}) {
		t.Errorf("SecretFields = %v", got)
	}
	if feishuapp.Kind.Type() != "feishu_app" {
		t.Errorf("Type = %q", feishuapp.Kind.Type())
	}
}
