package plan

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/herald-release/herald/internal/apperr"
	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/db/dbtest"
)

// The seed's plan statuses, word for word.
func TestStatusesAreTheSeeds(t *testing.T) {
	t.Parallel()
	seed := []string{"planning", "finish_planning", "wait_for_approval", "executing", "denied", "timeout", "success",
		"wait_for_finish_planning_external_check", "wait_for_execute_external_check", "wait_for_all_done_external_check",
		"wait_for_finish_planning_external_check_failed", "wait_for_execute_external_check_failed",
		"wait_for_all_done_external_check_failed", "cancel"}
	got := Statuses()
	slices.Sort(seed)
	slices.Sort(got)
	if !slices.Equal(got, seed) {
		t.Fatalf("statuses %v, want the seed's %v", got, seed)
	}
	for _, ev := range HookEvents() {
		st := checkStatuses[ev]
		if w, ok := waitingFor(st[0]); !ok || w != ev {
			t.Fatalf("waitingFor(%s) = %s", st[0], w)
		}
		if _, ok := waitingFor(st[1]); ok {
			t.Fatalf("%s is not a wait", st[1])
		}
	}
}

// A receiver verifies the hook's signature with any Standard Webhooks
// library, given the key derivation of SigningKey.
func TestSigningKeyVerifiesWithStandardWebhooks(t *testing.T) {
	t.Parallel()
	body := []byte(`{"object_kind":"release_plan"}`)
	ts := time.Now().Unix()
	for _, c := range []struct{ secret, verifyWith string }{
		{"plain secret", "whsec_" + base64.StdEncoding.EncodeToString([]byte("plain secret"))},
		{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
		{"whsec_not base64!", "whsec_" + base64.StdEncoding.EncodeToString([]byte("whsec_not base64!"))},
	} {
		wh, err := standardwebhooks.NewWebhook(c.verifyWith)
		if err != nil {
			t.Fatal(err)
		}
		h := http.Header{}
		h.Set(HeaderWebhookID, "phk_1")
		h.Set(HeaderWebhookTimestamp, strconv.FormatInt(ts, 10))
		h.Set(HeaderWebhookSignature, Sign(SigningKey(c.secret), "phk_1", ts, body))
		if err := wh.Verify(body, h); err != nil {
			t.Errorf("secret %q: %v", c.secret, err)
		}
	}
}

func TestApprovalStatus(t *testing.T) {
	t.Parallel()
	yes := func(u string) Decision { return Decision{UserID: u, Approve: true} }
	no := func(u string) Decision { return Decision{UserID: u} }
	for _, c := range []struct {
		mode string
		ds   []Decision
		want string
	}{
		{ModeAny, nil, ApprovalPending},
		{ModeAny, []Decision{yes("a")}, ApprovalApproved},
		{ModeAny, []Decision{no("b")}, ApprovalDenied},
		{ModeAll, []Decision{yes("a")}, ApprovalPending},
		{ModeAll, []Decision{yes("a"), yes("b")}, ApprovalApproved},
		{ModeAll, []Decision{yes("a"), no("b")}, ApprovalDenied},
	} {
		p := &planRow{ApprovalMode: c.mode, Approvers: []string{"a", "b"}}
		if got := approvalStatus(p, c.ds); got != c.want {
			t.Errorf("%s %v: %s, want %s", c.mode, c.ds, got, c.want)
		}
	}
}

func TestWindow(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 6, 20, 0, 0, 0, time.UTC)
	end := start.Add(time.Hour)
	p := &planRow{StartTime: &start, EndTime: &end}
	for _, c := range []struct {
		at   time.Time
		want string
	}{
		{start.Add(-time.Second), "opens at 2026-01-06 20:00:00 UTC"},
		{start, ""},
		{end, ""},
		{end.Add(time.Second), "closed at 2026-01-06 21:00:00 UTC"},
	} {
		err := p.inWindow(c.at)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.at, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || apperr.From(err).Status != 409):
			t.Errorf("%s: %v, want 409 saying %q", c.at, err, c.want)
		}
	}
	if err := (&planRow{}).inWindow(time.Now()); err != nil {
		t.Errorf("no window: %v", err)
	}
}

// The hook body has the seed's fields in the seed's order, integer Unix
// times, and the jobs with their specs.
func TestHookBodyFollowsTheSeed(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		now := time.Date(2026, 1, 6, 20, 0, 0, 0, time.UTC)
		if _, err := d.Exec(ctx, `INSERT INTO users (id, name, email, role, created_at, updated_at) VALUES ('usr_1', 'patrick', '', 'member', $1, $1)`, now); err != nil {
			t.Fatal(err)
		}
		end := now.Add(time.Hour)
		p := &planRow{ID: "pln_1", Number: 52, Name: "workflow-plan-3", ManagerID: "usr_1", StartTime: &now, EndTime: &end,
			Description: "<p>x</p>", Status: StatusWaitAllDoneCheck, InstanceCode: "e52e21b68b7ec3", PlanningTime: &now,
			CreatedByName: "patrick", CreatedAt: now, UpdatedByName: "system", UpdatedAt: end,
			Jobs: []*jobRow{
				{ID: "pjob_1", Name: "all", Type: JobWorkflow, Spec: json.RawMessage(`{"workflow":{"project_id":"app","environment":"prod"}}`),
					Status: JobDone, TaskID: "tsk_1", TaskStatus: "success", ExecByName: "system", ExecutedAt: &end},
				{ID: "pjob_2", Name: "text", Type: JobText, Spec: json.RawMessage(`{"content":"<p>text</p>","remark":""}`), Status: JobSkipped},
			}}
		body, err := hookBody(ctx, d, p, HookAllJobDone)
		if err != nil {
			t.Fatal(err)
		}
		if keys := objectKeys(t, body, ""); !slices.Equal(keys, []string{"object_kind", "event", "workflow", "release_plan"}) {
			t.Fatalf("top keys %v", keys)
		}
		want := []string{"id", "index", "name", "event_name", "manager", "manager_id", "instance_code", "start_time", "end_time",
			"schedule_execute_time", "description", "created_by", "create_time", "updated_by", "update_time", "jobs", "status",
			"planning_time", "approval_time", "executing_time", "success_time"}
		if keys := objectKeys(t, body, "release_plan"); !slices.Equal(keys, want) {
			t.Fatalf("release_plan keys %v, want %v", keys, want)
		}
		var b struct {
			ReleasePlan map[string]any `json:"release_plan"`
		}
		if err := json.Unmarshal(body, &b); err != nil {
			t.Fatal(err)
		}
		rp := b.ReleasePlan
		if rp["manager"] != "patrick" || rp["index"] != 52.0 || rp["start_time"] != float64(now.Unix()) || rp["approval_time"] != 0.0 ||
			rp["event_name"] != "all_job_done" || rp["status"] != StatusWaitAllDoneCheck {
			t.Fatalf("release_plan %v", rp)
		}
		jobs := rp["jobs"].([]any)
		wf, txt := jobs[0].(map[string]any), jobs[1].(map[string]any)
		if wf["executed_time"] != float64(end.Unix()) || wf["executed_by"] != "system" ||
			wf["spec"].(map[string]any)["task_id"] != "tsk_1" || wf["spec"].(map[string]any)["status"] != "success" {
			t.Fatalf("workflow job %v", wf)
		}
		if txt["status"] != "skipped" || txt["spec"].(map[string]any)["content"] != "<p>text</p>" || txt["executed_time"] != 0.0 {
			t.Fatalf("text job %v", txt)
		}
		if !bytes.Contains(body, []byte("<p>text</p>")) {
			t.Fatalf("HTML is escaped in %s", body)
		}
	})
}

// objectKeys lists the keys of the object at path ("" or a top key), in order.
func objectKeys(t *testing.T, body []byte, path string) []string {
	t.Helper()
	raw := json.RawMessage(body)
	if path != "" {
		var top map[string]json.RawMessage
		if err := json.Unmarshal(body, &top); err != nil {
			t.Fatal(err)
		}
		raw = top[path]
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func TestValidateNormalizes(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		now := time.Now().UTC()
		if _, err := d.Exec(ctx, `INSERT INTO users (id, name, email, role, created_at, updated_at) VALUES ('usr_m', 'm', '', 'member', $1, $1)`, now); err != nil {
			t.Fatal(err)
		}
		s := &Service{db: d, now: time.Now}
		in, err := DecodeInput([]byte(`{"name": "  R1 ", "manager_id": "usr_m",
			"start_time": "2026-01-06T20:00:00+08:00", "end_time": "2026-01-06T13:00:00Z", "schedule_execute_time": null,
			"jira_sprints": ["SPR-1", {"id": "SPR-2", "link": "https://jira.example.com/2"}],
			"jobs": [{"name": "t", "type": "text", "spec": {"content": "c"}}]}`))
		if err != nil {
			t.Fatal(err)
		}
		sp, err := s.validate(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if sp.Name != "R1" || sp.Start.Location() != time.UTC || sp.Start.Hour() != 12 || sp.Schedule != nil ||
			len(sp.Sprints) != 2 || sp.Sprints[0] != (Sprint{ID: "SPR-1"}) || sp.Approval.Mode != ModeAny ||
			string(sp.Jobs[0].Spec) != `{"content":"c","remark":""}` {
			t.Fatalf("normalized: %+v", sp)
		}
		_, err = DecodeInput([]byte(`{"jobs": [{"name": 3}]}`))
		if ae := apperr.From(err); ae == nil || ae.Status != 422 || ae.Details[0].Field != "jobs.name" {
			t.Fatalf("a number for a name: %v", err)
		}
	})
}
