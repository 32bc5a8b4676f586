package channel_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify/channel"
)

func taskEnvelope(eventType string) *event.Envelope {
	return &event.Envelope{
		ID: "evt_1", Sequence: 3, EventType: eventType,
		ObjectKind: event.KindReleaseTask, Action: eventType,
		Project:     &event.ProjectRef{ID: "my-app", Name: "My App"},
		Version:     &event.VersionRef{ID: "ver_1", Name: "v1.2.3"},
		Task:        &event.TaskRef{ID: "task_1", Type: "deploy", Strategy: "canary", Status: "running", Phase: "canary"},
		Deployment:  &event.Deployment{TotalCount: 10, CanaryCount: 1, CompletedCount: 3, FailedCount: 1, Hosts: []string{"h1", "h2", "h3", "h4", "h5", "h6", "h7"}},
		Timestamp:   time.Date(2026, 1, 6, 20, 0, 0, 0, time.UTC),
		Duration:    "30s",
		Environment: "production",
		Actor:       &event.Actor{ID: "u1", Name: "alice"},
		URL:         "https://herald.example.com/tasks/task_1",
	}
}

func TestEveryEventTypeHasTitlesInBothLanguages(t *testing.T) {
	t.Parallel()
	colors := map[string]bool{"blue": true, "green": true, "red": true, "orange": true, "grey": true}
	for _, typ := range event.Types() {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			info, _ := event.Lookup(typ)
			ev := &event.Envelope{EventType: typ, ObjectKind: info.ObjectKind, Action: info.Action}
			zh, en := channel.Summarize(ev, "zh"), channel.Summarize(ev, "en")
			if !strings.HasPrefix(zh.Title, "发布通知：") || strings.Contains(zh.Title, typ) {
				t.Errorf("zh title %q: want a Chinese title", zh.Title)
			}
			if !strings.HasPrefix(en.Title, "Release: ") || strings.Contains(en.Title, typ) {
				t.Errorf("en title %q: want an English title", en.Title)
			}
			if !colors[zh.Color] || zh.Color != en.Color {
				t.Errorf("colour zh %q en %q", zh.Color, en.Color)
			}
			if def := channel.Summarize(ev, ""); def.Title != zh.Title {
				t.Errorf("default language title %q, want zh %q", def.Title, zh.Title)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	t.Parallel()
	plan := taskEnvelope(event.PlanApprovalRequested)
	plan.ObjectKind, plan.Action = event.KindReleasePlan, event.PlanApprovalRequested
	plan.Version, plan.Task, plan.Deployment, plan.Environment, plan.Duration = nil, nil, nil, "", ""
	plan.ReleasePlan = json.RawMessage(`{"id":"p1","name":"Sprint 42","status":"wait_for_approval","manager":"bob"}`)

	host := &event.Envelope{
		EventType: event.HostDeleted, ObjectKind: event.KindHost, Action: "delete",
		Project: &event.ProjectRef{ID: "my-app"}, Environment: "staging",
		Object: json.RawMessage(`{"name":"web-3","address":"10.0.0.3"}`),
	}
	bare := &event.Envelope{EventType: event.FullCompleted, ObjectKind: event.KindReleaseTask, Action: event.FullCompleted}

	tests := []struct {
		name       string
		ev         *event.Envelope
		lang       string
		wantTitle  string
		wantColor  string
		wantStatus string
		want       []channel.Field
	}{
		{
			name: "task zh", ev: taskEnvelope(event.CanaryStarted), lang: "zh",
			wantTitle: "发布通知：金丝雀发布开始", wantColor: "blue", wantStatus: "发布中",
			want: []channel.Field{
				{"项目", "My App"}, {"版本", "v1.2.3"}, {"环境", "production"},
				{"任务类型", "部署"}, {"发布策略", "金丝雀"}, {"状态", "发布中"},
				{"进度", "3/10（失败 1）"}, {"金丝雀主机数", "1"},
				{"主机", "h1, h2, h3, h4, h5 等 7 台"}, {"耗时", "30s"}, {"操作人", "alice"},
			},
		},
		{
			name: "task en", ev: taskEnvelope(event.ReleaseFailed), lang: "en",
			wantTitle: "Release: release failed", wantColor: "red", wantStatus: "running",
			want: []channel.Field{
				{"Project", "My App"}, {"Version", "v1.2.3"}, {"Environment", "production"},
				{"Task type", "deploy"}, {"Strategy", "canary"}, {"Status", "running"},
				{"Progress", "3/10 (failed 1)"},
				{"Hosts", "h1, h2, h3, h4, h5 +2 more"}, {"Duration", "30s"}, {"Actor", "alice"},
			},
		},
		{
			name: "plan zh", ev: plan, lang: "zh",
			wantTitle: "发布通知：发布计划待审批", wantColor: "orange", wantStatus: "待审批",
			want: []channel.Field{
				{"项目", "My App"}, {"发布计划", "Sprint 42"}, {"状态", "待审批"},
				{"负责人", "bob"}, {"操作人", "alice"},
			},
		},
		{
			name: "object en", ev: host, lang: "en",
			wantTitle: "Release: host deleted", wantColor: "grey", wantStatus: "delete",
			want: []channel.Field{
				{"Project", "my-app"}, {"Environment", "staging"}, {"Object", "host delete"}, {"Name", "web-3"},
			},
		},
		{
			name: "object zh", ev: host, lang: "zh",
			wantTitle: "发布通知：主机已删除", wantColor: "grey", wantStatus: "删除",
			want: []channel.Field{
				{"项目", "my-app"}, {"环境", "staging"}, {"对象", "主机删除"}, {"名称", "web-3"},
			},
		},
		{
			name: "empty fields left out", ev: bare, lang: "en",
			wantTitle: "Release: release completed", wantColor: "green",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := channel.Summarize(tt.ev, tt.lang)
			if s.Title != tt.wantTitle || s.Color != tt.wantColor || s.Status != tt.wantStatus {
				t.Errorf("title %q colour %q status %q, want %q %q %q", s.Title, s.Color, s.Status, tt.wantTitle, tt.wantColor, tt.wantStatus)
			}
			if !reflect.DeepEqual(s.Fields, tt.want) {
				t.Errorf("fields\n got %q\nwant %q", s.Fields, tt.want)
			}
			if s.URL != tt.ev.URL {
				t.Errorf("URL %q, want %q", s.URL, tt.ev.URL)
			}
		})
	}
}

func TestFormatHosts(t *testing.T) {
	t.Parallel()
	hosts := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	tests := []struct {
		hosts []string
		max   int
		lang  string
		want  string
	}{
		{nil, 5, "en", ""},
		{hosts[:3], 5, "en", "a, b, c"},
		{hosts[:5], 5, "zh", "a, b, c, d, e"},
		{hosts, 5, "en", "a, b, c, d, e +3 more"},
		{hosts, 5, "zh", "a, b, c, d, e 等 8 台"},
		{hosts, 2, "", "a, b 等 8 台"},
		{hosts, 0, "en", "a, b, c, d, e +3 more"},
	}
	for _, tt := range tests {
		if got := channel.FormatHosts(tt.hosts, tt.max, tt.lang); got != tt.want {
			t.Errorf("FormatHosts(%d hosts, %d, %q) = %q, want %q", len(tt.hosts), tt.max, tt.lang, got, tt.want)
		}
	}
}

func TestTruncateAndFit(t *testing.T) {
	t.Parallel()
	if got := channel.Truncate("发布通知", 7); got != "发…" {
		t.Errorf("Truncate on a rune boundary: %q", got)
	}
	if got := channel.Truncate("abc", 3); got != "abc" {
		t.Errorf("Truncate of a short string: %q", got)
	}
	text := strings.Repeat("<x>", 1000)
	out := channel.Fit(text, 500, func(s string) []byte {
		return channel.MarshalJSON(map[string]string{"content": s, "at": "<at id=all></at>"})
	})
	if len(out) > 500 {
		t.Fatalf("Fit: %d bytes, want ≤ 500", len(out))
	}
	if !strings.Contains(string(out), "<at id=all></at>") || !strings.Contains(string(out), "…") {
		t.Errorf("Fit must keep the other parts and mark the cut: %s", out)
	}
}

// plan_approval_requested names the people asked to approve, as
// internal/plan publishes them (release_plan.approval.approvers, names
// with ids), and links to the plan's page where they answer.
func TestSummarizeApprovalRequested(t *testing.T) {
	t.Parallel()
	ev := func(eventType, approval string) *event.Envelope {
		return &event.Envelope{
			ID: "evt_9", EventType: eventType, ObjectKind: event.KindReleasePlan, Action: eventType,
			ReleasePlan: json.RawMessage(`{"id":"pln_1","name":"Sprint 42","status":"wait_for_approval","manager":"bob","manager_id":"usr_b"` +
				approval + `,"jobs":[]}`),
			Actor: &event.Actor{ID: "usr_b", Name: "bob"},
			URL:   "https://herald.example.com/plans/pln_1",
		}
	}
	many := `,"approval":{"mode":"any","approvers":[`
	for i := range 12 {
		if i > 0 {
			many += ","
		}
		many += `{"id":"usr_` + string(rune('a'+i)) + `","name":"user` + string(rune('a'+i)) + `"}`
	}
	many += `]}`
	tests := []struct {
		name, lang, approval, want string
	}{
		{"zh any", "zh", `,"approval":{"mode":"any","approvers":[{"id":"usr_c","name":"carol"},{"id":"usr_d","name":"dave"}]}`,
			"carol, dave（任一人通过即可）"},
		{"en all", "en", `,"approval":{"mode":"all","approvers":[{"id":"usr_c","name":"carol"},{"id":"usr_d","name":"dave"}]}`,
			"carol, dave (all must approve)"},
		{"zh all", "zh", `,"approval":{"mode":"all","approvers":[{"id":"usr_c","name":"carol"},{"id":"usr_d","name":"dave"}]}`,
			"carol, dave（需全部通过）"},
		{"a user without a name shows its id", "en", `,"approval":{"mode":"any","approvers":[{"id":"usr_gone","name":""}]}`,
			"usr_gone"},
		{"long lists are cut (en)", "en", many, "usera, userb, userc, userd, usere, userf, userg, userh, useri, userj +2 more (any one may approve)"},
		{"long lists are cut (zh)", "zh", many, "usera, userb, userc, userd, usere, userf, userg, userh, useri, userj 等 12 人（任一人通过即可）"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := ev(event.PlanApprovalRequested, tt.approval)
			s := channel.Summarize(e, tt.lang)
			label := "审批人"
			if tt.lang == "en" {
				label = "Approvers"
			}
			var got string
			for _, f := range s.Fields {
				if f.Label == label {
					got = f.Value
				}
			}
			if got != tt.want {
				t.Errorf("approvers %q, want %q (fields %q)", got, tt.want, s.Fields)
			}
			if s.URL != "https://herald.example.com/plans/pln_1" {
				t.Errorf("URL %q: the message must link to the plan's page", s.URL)
			}
		})
	}

	// The approvers come after the manager and before the actor.
	s := channel.Summarize(ev(event.PlanApprovalRequested, `,"approval":{"mode":"any","approvers":[{"id":"usr_c","name":"carol"}]}`), "en")
	want := []channel.Field{{"Release plan", "Sprint 42"}, {"Status", "wait_for_approval"}, {"Manager", "bob"}, {"Approvers", "carol"}, {"Actor", "bob"}}
	if !reflect.DeepEqual(s.Fields, want) {
		t.Errorf("fields\n got %q\nwant %q", s.Fields, want)
	}
	// Without an approval in the payload, and on other plan events, no line.
	for _, e := range []*event.Envelope{
		ev(event.PlanApprovalRequested, ""),
		ev(event.PlanApproved, `,"approval":{"mode":"any","approvers":[{"id":"usr_c","name":"carol"}]}`),
	} {
		for _, f := range channel.Summarize(e, "en").Fields {
			if f.Label == "Approvers" {
				t.Errorf("%s: unexpected approvers line %q", e.EventType, f.Value)
			}
		}
	}
}
