package wechat_test

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
	"github.com/herald-release/herald/internal/notify/channel/wechat"
	"github.com/herald-release/herald/internal/testsupport"
	"github.com/herald-release/herald/internal/validate"
)

func deps() channel.Deps {
	return channel.Deps{HTTP: egress.AllowAll().Client(), Version: "1.0.0"}
}

func sender(t *testing.T, cfg map[string]any, d channel.Deps) channel.Sender {
	t.Helper()
	return channeltest.Sender(t, wechat.Kind, cfg, d)
}

func appConfig(fake *testsupport.WeCom) map[string]any {
	return map[string]any{
		"corp_id": fake.CorpID(), "agent_id": fake.AgentID(), "secret": fake.Secret(), "api_base_url": fake.URL(),
	}
}

func taskEvent(eventType string) *event.Envelope {
	return &event.Envelope{
		ID: "evt_1", EventType: eventType, ObjectKind: event.KindReleaseTask, Action: eventType,
		Project:     &event.ProjectRef{ID: "my-app", Name: "My App"},
		Version:     &event.VersionRef{ID: "v1", Name: "v1.2.3"},
		Task:        &event.TaskRef{ID: "t1", Type: "deploy", Strategy: "blue_green", Status: "running"},
		Deployment:  &event.Deployment{TotalCount: 4, CompletedCount: 0, Hosts: []string{"h1", "h2", "h3", "h4"}},
		Environment: "production",
		URL:         "https://herald.example.com/tasks/t1",
	}
}

// secretsOf lists everything of the fake that must never reach history.
func secretsOf(fake *testsupport.WeCom) []string {
	return append([]string{fake.Key(), fake.Secret()}, fake.AccessTokens()...)
}

func TestRobotMarkdown(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewWeCom(t)
	s := sender(t, map[string]any{"webhook_url": fake.WebhookURL(), "mentioned_list": []string{"zhangsan", "lisi"}}, deps())
	att, err := s.Send(context.Background(), taskEvent(event.ReleaseStarted))
	if err != nil {
		t.Fatal(err)
	}
	m := fake.WaitMessages(t, 1)[0]
	want := "## 发布通知：发布开始\n\n>项目: My App\n>版本: v1.2.3\n>环境: production\n>任务类型: 部署\n>发布策略: 蓝绿\n" +
		">状态: 发布中\n>进度: 0/4\n>主机: h1, h2, h3, h4\n\n[查看详情](https://herald.example.com/tasks/t1)\n\n<@zhangsan><@lisi>"
	if m.Via != "robot" || m.MsgType != "markdown" || m.Content != want {
		t.Errorf("%s %s\n got %q\nwant %q", m.Via, m.MsgType, m.Content, want)
	}
	if att.Request.URL != fake.URL()+"/cgi-bin/webhook/send?key=******" {
		t.Errorf("recorded URL %q", att.Request.URL)
	}
	channeltest.AssertNoSecret(t, att, err, secretsOf(fake)...)
}

func TestRobotMobileMentionsGoAsText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name            string
		mentioned, mobs []string
	}{
		{"mobiles", []string{"zhangsan"}, []string{"13800001111"}},
		{"everyone", []string{"@all"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := testsupport.NewWeCom(t)
			cfg := map[string]any{"webhook_url": fake.WebhookURL(), "mentioned_list": tt.mentioned}
			if tt.mobs != nil {
				cfg["mentioned_mobile_list"] = tt.mobs
			}
			if _, err := sender(t, cfg, deps()).Send(context.Background(), taskEvent(event.ReleaseFailed)); err != nil {
				t.Fatal(err)
			}
			msgs := fake.WaitMessages(t, 1)
			m := msgs[0]
			if len(msgs) != 1 || m.MsgType != "text" || !reflect.DeepEqual(m.MentionedList, tt.mentioned) || !reflect.DeepEqual(m.MentionedMobileList, tt.mobs) {
				t.Errorf("want one text message with the mentions, got %+v", msgs)
			}
			if !strings.HasPrefix(m.Content, "发布通知：发布失败\n项目: My App\n") || !strings.HasSuffix(m.Content, "\nhttps://herald.example.com/tasks/t1") {
				t.Errorf("text content %q", m.Content)
			}
		})
	}
}

func TestRenderEventKinds(t *testing.T) {
	t.Parallel()
	plan := &event.Envelope{
		EventType: event.PlanTimeout, ObjectKind: event.KindReleasePlan, Action: event.PlanTimeout,
		ReleasePlan: json.RawMessage(`{"name":"Sprint 42","status":"timeout"}`),
	}
	env := &event.Envelope{
		EventType: event.EnvironmentUpdated, ObjectKind: event.KindEnvironment, Action: "update",
		Project: &event.ProjectRef{ID: "my-app", Name: "My <@all> App"}, Object: json.RawMessage(`{"name":"production"}`),
	}
	tests := []struct {
		name string
		ev   *event.Envelope
		lang string
		want string
	}{
		{"task", taskEvent(event.RollbackStarted), "en", "## Release: rollback started\n\n>Project: My App\n"},
		{"plan", plan, "zh", "## 发布通知：发布计划已超时\n\n>发布计划: Sprint 42\n>状态: 已超时"},
		{"object", env, "en", "## Release: environment updated\n\n>Project: My < @all> App\n>Object: environment update\n>Name: production"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := wechat.RenderMarkdown(channel.Summarize(tt.ev, tt.lang), tt.lang, nil, wechat.MaxRobotMarkdown)
			if !strings.HasPrefix(got, tt.want) {
				t.Errorf("got %q, want prefix %q", got, tt.want)
			}
		})
	}
}

func TestOversizedMarkdownIsShortened(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewWeCom(t)
	ev := taskEvent(event.CanaryStarted)
	ev.Version.Name = strings.Repeat("版", 3000)
	s := sender(t, map[string]any{"webhook_url": fake.WebhookURL(), "mentioned_list": []string{"zhangsan"}}, deps())
	if _, err := s.Send(context.Background(), ev); err != nil {
		t.Fatalf("an oversized message must be shortened, not refused: %v", err)
	}
	c := fake.WaitMessages(t, 1)[0].Content
	if len(c) > wechat.MaxRobotMarkdown || !strings.Contains(c, "…") || !strings.HasSuffix(c, "<@zhangsan>") {
		t.Errorf("%d bytes, ends %q", len(c), c[max(0, len(c)-40):])
	}
}

func TestRobotCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code      int
		msg       string
		retry     bool
		wait      time.Duration
		wantInErr string
	}{
		{45009, "api freq out of limit, hint: [1700000000_abc]", true, time.Minute, "wechat: api freq out of limit (45009)"},
		{-1, "system busy", true, 0, "will retry"},
		{93000, "invalid webhook url, hint: [x], from ip: 1.2.3.4, more info at https://open.work.weixin.qq.com/devtool/query?e=93000", false, 0, "wechat: invalid webhook url (93000): check webhook_url"},
		{40008, "invalid message type", false, 0, "(40008)"},
		{44004, "empty content", false, 0, "(44004)"},
		{40058, "markdown.content exceed max length 4096", false, 0, "(40058)"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.code), func(t *testing.T) {
			t.Parallel()
			fake := testsupport.NewWeCom(t)
			fake.FailNext(1, tt.code, tt.msg)
			att, err := sender(t, map[string]any{"webhook_url": fake.WebhookURL()}, deps()).Send(context.Background(), taskEvent(event.CanaryStarted))
			var ce *channel.Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *channel.Error", err)
			}
			if ce.Retry != tt.retry || ce.RetryAfter != tt.wait || ce.Code != fmt.Sprint(tt.code) {
				t.Errorf("retry %v after %v code %q, want %v %v %d", ce.Retry, ce.RetryAfter, ce.Code, tt.retry, tt.wait, tt.code)
			}
			if !strings.Contains(err.Error(), tt.wantInErr) || strings.Contains(err.Error(), "hint:") {
				t.Errorf("error %q, want %q and no hint tail", err, tt.wantInErr)
			}
			channeltest.AssertNoSecret(t, att, err, secretsOf(fake)...)
		})
	}
}

func TestRobotFakeKeyAndRateLimit(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewWeCom(t)
	bad := sender(t, map[string]any{"webhook_url": fake.URL() + "/cgi-bin/webhook/send?key=0000-not-the-key"}, deps())
	if _, err := bad.Send(context.Background(), taskEvent(event.CanaryStarted)); channel.Classify(err) == nil || channel.Classify(err).Code != "93000" {
		t.Fatalf("wrong key: err = %v, want 93000", err)
	}

	s := sender(t, map[string]any{"webhook_url": fake.WebhookURL()}, deps())
	for i := range 20 {
		if _, err := s.Send(context.Background(), taskEvent(event.CanaryStarted)); err != nil {
			t.Fatalf("message %d: %v", i+1, err)
		}
	}
	_, err := s.Send(context.Background(), taskEvent(event.CanaryStarted))
	if ce := channel.Classify(err); ce == nil || !ce.Retry || ce.Code != "45009" {
		t.Fatalf("21st message in a minute: err = %v, want retryable 45009", err)
	}
	key, limits := s.RateLimits()
	if strings.Contains(key, fake.Key()) || !strings.HasPrefix(key, "wechat:") || !reflect.DeepEqual(limits, []channel.Limit{{Count: 20, Per: time.Minute}}) {
		t.Errorf("rate limits %q %v", key, limits)
	}
}

func TestAppSendsWithCachedToken(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewWeCom(t)
	s := sender(t, appConfig(fake), deps())
	for range 2 {
		att, err := s.Send(context.Background(), taskEvent(event.FullCompleted))
		if err != nil {
			t.Fatal(err)
		}
		if att.Request.URL != fake.URL()+"/cgi-bin/message/send?access_token=******" || att.StatusCode != 200 {
			t.Errorf("recorded %d %s", att.StatusCode, att.Request.URL)
		}
		channeltest.AssertNoSecret(t, att, err, secretsOf(fake)...)
	}
	msgs := fake.WaitMessages(t, 2)
	if got := fake.TokenRequests(); got != 1 {
		t.Errorf("gettoken called %d times, want 1 (cached)", got)
	}
	m := msgs[0]
	if m.Via != "app" || m.MsgType != "markdown" || m.ToUser != "@all" || m.AgentID != fake.AgentID() ||
		!strings.HasPrefix(m.Content, "## 发布通知：全部发布完成\n\n>项目: My App") {
		t.Errorf("app message %+v", m)
	}
}

func TestAppConcurrentSendsFetchOneToken(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewWeCom(t)
	s := sender(t, appConfig(fake), deps())
	sendAll := func(n int) {
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Go(func() {
				if _, err := s.Send(context.Background(), taskEvent(event.CanaryStarted)); err != nil {
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
		t.Fatalf("cold start: gettoken called %d times, want 1", got)
	}
	// Every sender now holds an expired token and gets 42001: exactly one
	// of them fetches a new token, the others wait for it, all resend.
	fake.ExpireToken()
	sendAll(10)
	if got := fake.TokenRequests(); got != 2 {
		t.Errorf("after expiry: gettoken called %d times in all, want 2", got)
	}
	if got := len(fake.WaitMessages(t, 20)); got != 20 {
		t.Errorf("%d messages delivered, want 20", got)
	}
}

func TestAppRefreshesBeforeExpiry(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewWeCom(t)
	var offset atomic.Int64
	d := deps()
	d.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	s := sender(t, appConfig(fake), d)
	send := func() {
		t.Helper()
		if _, err := s.Send(context.Background(), taskEvent(event.CanaryStarted)); err != nil {
			t.Fatal(err)
		}
	}
	send()
	offset.Store(int64(7200*time.Second - 10*time.Minute)) // still well before refresh
	send()
	if got := fake.TokenRequests(); got != 1 {
		t.Fatalf("gettoken called %d times, want 1", got)
	}
	offset.Store(int64(7200*time.Second - time.Minute)) // inside the refresh margin
	send()
	if got := fake.TokenRequests(); got != 2 {
		t.Errorf("gettoken called %d times, want 2: a token about to expire is replaced", got)
	}
}

func TestAppTokenRefusedThenRetriedOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		fails      int
		code       int
		wantErr    bool
		wantTokens int
	}{
		{"40014 once: refresh and resend", 1, 40014, false, 2},
		{"42001 once: refresh and resend", 1, 42001, false, 2},
		{"42001 twice: give up for now", 2, 42001, true, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := testsupport.NewWeCom(t)
			s := sender(t, appConfig(fake), deps())
			fake.FailNext(tt.fails, tt.code, "access_token expired, hint: [x]")
			att, err := s.Send(context.Background(), taskEvent(event.CanaryStarted))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				if ce := channel.Classify(err); !ce.Retry {
					t.Errorf("a twice-refused token should be retried later: %v", err)
				}
			}
			if got := fake.TokenRequests(); got != tt.wantTokens {
				t.Errorf("gettoken called %d times, want %d", got, tt.wantTokens)
			}
			if got := fake.Requests(); got != 2 {
				t.Errorf("%d sends, want 2 (one resend only)", got)
			}
			channeltest.AssertNoSecret(t, att, err, secretsOf(fake)...)
		})
	}
}

func TestAppCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code      int
		retry     bool
		wantInErr string
	}{
		{45009, true, "will retry"},
		{45033, true, "will retry"},
		{40001, false, "check secret"},
		{81013, false, "check to_user"},
		{60020, false, "trusted IPs"},
		{-1, true, "will retry"},
		{48002, false, "(48002)"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.code), func(t *testing.T) {
			t.Parallel()
			fake := testsupport.NewWeCom(t)
			fake.FailNext(1, tt.code, "platform says no, hint: [x]")
			att, err := sender(t, appConfig(fake), deps()).Send(context.Background(), taskEvent(event.CanaryStarted))
			ce := channel.Classify(err)
			if ce == nil || ce.Retry != tt.retry || ce.Code != fmt.Sprint(tt.code) || !strings.Contains(err.Error(), tt.wantInErr) {
				t.Fatalf("err = %v (%+v), want retry %v with %q", err, ce, tt.retry, tt.wantInErr)
			}
			channeltest.AssertNoSecret(t, att, err, secretsOf(fake)...)
		})
	}
}

func TestAppTokenFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		mutate    func(cfg map[string]any)
		script    int // gettoken errcode to script, 0 for none
		retry     bool
		code      string
		wantInErr string
	}{
		{"wrong secret", func(c map[string]any) { c["secret"] = "0123456789abcdef-wrong" }, 0, false, "40001", "gettoken: invalid credential (40001): check secret"},
		{"wrong corp", func(c map[string]any) { c["corp_id"] = "wwnotthecorp" }, 0, false, "40013", "check corp_id"},
		{"busy", nil, 45009, true, "45009", "will retry"},
		{"ip", nil, 60020, false, "60020", "trusted IPs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := testsupport.NewWeCom(t)
			cfg := appConfig(fake)
			if tt.mutate != nil {
				tt.mutate(cfg)
			}
			if tt.script != 0 {
				fake.FailNextToken(1, tt.script, "no, hint: [x]")
			}
			att, err := sender(t, cfg, deps()).Send(context.Background(), taskEvent(event.CanaryStarted))
			ce := channel.Classify(err)
			if ce == nil || ce.Retry != tt.retry || ce.Code != tt.code || !strings.Contains(err.Error(), tt.wantInErr) {
				t.Fatalf("err = %v, want retry %v code %s with %q", err, tt.retry, tt.code, tt.wantInErr)
			}
			if att.Request.Method != "GET" || !strings.Contains(att.Request.URL, "/cgi-bin/gettoken?corpid=") || !strings.HasSuffix(att.Request.URL, "&corpsecret=******") {
				t.Errorf("history should show the failed gettoken, masked: %s %s", att.Request.Method, att.Request.URL)
			}
			channeltest.AssertNoSecret(t, att, err, append(secretsOf(fake), "0123456789abcdef-wrong")...)
			if fake.Requests() != 0 {
				t.Error("no message may be sent without a token")
			}
		})
	}
}

func TestAppHTTPFailure(t *testing.T) {
	t.Parallel()
	fake := testsupport.NewWeCom(t)
	fake.FailNextStatus(1, http.StatusServiceUnavailable)
	att, err := sender(t, appConfig(fake), deps()).Send(context.Background(), taskEvent(event.CanaryStarted))
	if ce := channel.Classify(err); ce == nil || !ce.Retry {
		t.Fatalf("err = %v, want retryable", err)
	}
	channeltest.AssertNoSecret(t, att, err, secretsOf(fake)...)
}

func TestValidate(t *testing.T) {
	t.Parallel()
	const hook = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6"
	d := channel.Deps{CheckURL: func(u string) error {
		if strings.Contains(u, "127.0.0.1") {
			return errors.New("egress refused: 127.0.0.1 is a loopback address")
		}
		return nil
	}}
	tests := []struct {
		name string
		cfg  string
		want validate.Errors
	}{
		{"robot", `{"webhook_url":"` + hook + `","mentioned_list":["a","@all"],"mentioned_mobile_list":["13800001111","@all"]}`, nil},
		{"app", `{"corp_id":"ww1","agent_id":1000002,"secret":"s","to_user":"a|b","api_base_url":"https://wecom.internal.example"}`, nil},
		{"app, blank robot fields", `{"webhook_url":"","mentioned_list":null,"corp_id":"ww1","agent_id":1,"secret":"s"}`, nil},
		{"neither", `{}`, validate.Errors{{Field: "webhook_url", Message: "is required (or corp_id, agent_id and secret to send as an application)"}}},
		{"both", `{"webhook_url":"` + hook + `","corp_id":"ww1"}`, validate.Errors{
			{Field: "webhook_url", Message: "use either webhook_url (group robot) or corp_id, agent_id and secret (application), not both"},
		}},
		{"robot without key", `{"webhook_url":"https://qyapi.weixin.qq.com/cgi-bin/webhook/send"}`, validate.Errors{
			{Field: "webhook_url", Message: "must carry the robot's key (https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…)"},
		}},
		{"robot lists", `{"webhook_url":"` + hook + `","mentioned_list":[1],"mentioned_mobile_list":["call me"]}`, validate.Errors{
			{Field: "mentioned_list[0]", Message: "must be a non-empty string"},
			{Field: "mentioned_mobile_list[0]", Message: `must be a phone number or "@all"`},
		}},
		{"app missing", `{"corp_id":"ww1"}`, validate.Errors{
			{Field: "secret", Message: "is required: the application's Secret"},
			{Field: "agent_id", Message: "is required: the application's AgentId, an integer"},
		}},
		{"app types", `{"corp_id":"ww1","agent_id":"1000002","secret":"s","to_user":["a"]}`, validate.Errors{
			{Field: "to_user", Message: "must be a string"},
			{Field: "agent_id", Message: "must be an integer"},
		}},
		{"app negative agent", `{"corp_id":"ww1","agent_id":-3,"secret":"s"}`, validate.Errors{
			{Field: "agent_id", Message: "must be the application's positive AgentId"},
		}},
		{"app egress", `{"corp_id":"ww1","agent_id":1,"secret":"s","api_base_url":"http://127.0.0.1:9"}`, validate.Errors{
			{Field: "api_base_url", Message: "egress refused: 127.0.0.1 is a loopback address"},
		}},
		{"app with robot field", `{"corp_id":"ww1","agent_id":1,"secret":"s","mentioned_list":["a"]}`, validate.Errors{
			{Field: "mentioned_list", Message: "is for the group robot (webhook_url); an application sends to to_user"},
		}},
		{"unknown", `{"webhook_url":"` + hook + `","at_all":true}`, validate.Errors{{Field: "at_all", Message: "unknown field"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := wechat.Kind.Validate(json.RawMessage(tt.cfg), d)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors\n got %v\nwant %v", got, tt.want)
			}
		})
	}
	if got := wechat.Kind.SecretFields(); !reflect.DeepEqual(got, []string{"webhook_url", "secret"}) {
		t.Errorf("SecretFields = %v", got)
	}
	if wechat.Kind.Type() != "wechat" {
		t.Errorf("Type = %q", wechat.Kind.Type())
	}
}
