package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/db/dbtest"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/plan"
	"github.com/herald-release/herald/internal/release/engine/enginetest"
	"github.com/herald-release/herald/internal/testsupport"
)

// Release plan tests (CONTRACT §7): the whole flow through approval and
// the three external checks against a fake external system that checks
// what a careful receiver checks (token, signature) and calls back; every
// refusal; workflow jobs running real tasks with the local executor;
// scheduled execution across a restart. On SQLite and, with
// HERALD_TEST_DATABASE_URL, PostgreSQL.

const (
	plansPath    = "/api/v1/release/plans"
	hookPath     = "/api/v1/release/settings/plan-hook"
	callbackPath = "/api/callback/release_plan"
)

// planEnv is a running Herald with the people of a release: the manager,
// an approver, a job's own manager, and a bystander.
type planEnv struct {
	*enginetest.Env
	manager, approver, jobManager, other planUser
}

type planUser struct {
	user
	token string
}

func newPlanEnv(t *testing.T, e *enginetest.Env) *planEnv {
	t.Helper()
	pe := &planEnv{Env: e}
	for _, u := range []*planUser{&pe.manager, &pe.approver, &pe.jobManager, &pe.other} {
		name := map[*planUser]string{&pe.manager: "manager", &pe.approver: "approver", &pe.jobManager: "jobmanager", &pe.other: "other"}[u]
		us, tok := newUser(t, e.Env, name, "member")
		*u = planUser{user: us, token: tok.Token}
	}
	return pe
}

func planEach(t *testing.T, fn func(t *testing.T, e *planEnv)) {
	t.Helper()
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			fn(t, newPlanEnv(t, enginetest.New(t, d)))
		})
	}
}

// as calls the API as u and returns the status and body.
func (e *planEnv) as(t testing.TB, u planUser, method, path string, body any) (int, []byte) {
	t.Helper()
	return e.DoAs(t, u.token, method, path, body)
}

// asJSON calls the API as u, wants status, and decodes into out.
func (e *planEnv) asJSON(t testing.TB, u planUser, method, path string, body any, want int, out any) {
	t.Helper()
	doJSONAs(t, e.Env.Env, u.token, method, path, body, want, out)
}

func (e *planEnv) plan(t testing.TB, id string) *plan.Plan {
	t.Helper()
	var p plan.Plan
	e.JSON(t, "GET", plansPath+"/"+id, nil, 200, &p)
	return &p
}

// waitPlan polls a plan until cond holds.
func (e *planEnv) waitPlan(t testing.TB, id, what string, cond func(*plan.Plan) bool) *plan.Plan {
	t.Helper()
	end := time.Now().Add(enginetest.Deadline)
	for {
		p := e.plan(t, id)
		if cond(p) {
			return p
		}
		if time.Now().After(end) {
			b, _ := json.MarshalIndent(p, "", "  ")
			t.Fatalf("plan %s: %s did not happen within %s; plan now:\n%s", id, what, enginetest.Deadline, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *planEnv) waitStatus(t testing.TB, id string, statuses ...string) *plan.Plan {
	t.Helper()
	return e.waitPlan(t, id, "status "+strings.Join(statuses, "|"), func(p *plan.Plan) bool {
		return slices.Contains(statuses, p.Status)
	})
}

func (e *planEnv) logs(t testing.TB, id string) []plan.LogEntry {
	t.Helper()
	var l page[plan.LogEntry]
	e.JSON(t, "GET", plansPath+"/"+id+"/logs?limit=500", nil, 200, &l)
	return l.Items
}

func logActions(ls []plan.LogEntry) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Action
	}
	return out
}

func (e *planEnv) planEvents(t testing.TB, id string) []*event.Envelope {
	t.Helper()
	evs, err := event.ListForObject(context.Background(), e.App.DB, event.KindReleasePlan, id)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func job(p *plan.Plan, name string) plan.Job {
	for _, j := range p.Jobs {
		if j.Name == name {
			return j
		}
	}
	return plan.Job{}
}

func workflowSpec(t testing.TB, j plan.Job) plan.WorkflowSpec {
	t.Helper()
	var w plan.WorkflowSpec
	if err := json.Unmarshal(j.Spec, &w); err != nil {
		t.Fatalf("job %s spec %s: %v", j.Name, j.Spec, err)
	}
	return w
}

// external is a fake external system: it checks every hook as a careful
// receiver does (token, Standard Webhooks signature), records it, answers
// 200, and then calls back with the answer scripted for its event.
type external struct {
	srv     *httptest.Server
	herald  string
	secret  string
	mu      sync.Mutex
	hooks   []hookSeen
	answers map[string]string // hook event → success, failed or "" (no answer)
	reason  string
	errs    []string
}

type hookSeen struct {
	Header http.Header
	Body   []byte
	Plan   map[string]any
	Event  string
}

func newExternal(t *testing.T, heraldURL, secret string) *external {
	t.Helper()
	x := &external{herald: heraldURL, secret: secret, answers: map[string]string{
		plan.HookFinishPlanning: "success", plan.HookStartExecute: "success", plan.HookAllJobDone: "success"}}
	wh, err := standardwebhooks.NewWebhook("whsec_" + base64.StdEncoding.EncodeToString([]byte(secret)))
	if err != nil {
		t.Fatal(err)
	}
	x.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var problems []string
		if r.Method != http.MethodPost {
			problems = append(problems, "method "+r.Method)
		}
		if got := r.Header.Get("X-Herald-Token"); got != secret {
			problems = append(problems, "X-Herald-Token "+got)
		}
		if got := r.Header.Get("X-Herald-Event"); got != "release_plan" {
			problems = append(problems, "X-Herald-Event "+got)
		}
		if err := wh.Verify(body, r.Header); err != nil {
			problems = append(problems, "signature: "+err.Error())
		}
		var b struct {
			ReleasePlan map[string]any `json:"release_plan"`
		}
		if err := json.Unmarshal(body, &b); err != nil {
			problems = append(problems, "body: "+err.Error())
		}
		ev, _ := b.ReleasePlan["event_name"].(string)
		x.mu.Lock()
		x.hooks = append(x.hooks, hookSeen{Header: r.Header.Clone(), Body: body, Plan: b.ReleasePlan, Event: ev})
		x.errs = append(x.errs, problems...)
		answer, reason := x.answers[ev], x.reason
		x.mu.Unlock()
		if len(problems) > 0 {
			http.Error(w, strings.Join(problems, "; "), http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
		if answer == "" {
			return
		}
		id, _ := b.ReleasePlan["id"].(string)
		code, _ := b.ReleasePlan["instance_code"].(string)
		go func() {
			status, raw := x.callback(map[string]any{"hook_event": ev, "release_plan_id": id, "instance_code": code,
				"result": answer, "failed_reason": reason})
			if status != http.StatusOK {
				x.mu.Lock()
				x.errs = append(x.errs, fmt.Sprintf("callback %s: %d %s", ev, status, raw))
				x.mu.Unlock()
			}
		}()
	}))
	t.Cleanup(x.srv.Close)
	return x
}

// callback answers Herald as the external system does.
func (x *external) callback(body any) (int, []byte) {
	return postCallback(x.herald, x.secret, body)
}

func postCallback(heraldURL, token string, body any) (int, []byte) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, heraldURL+callbackPath, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("X-Herald-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

func (x *external) seen() ([]hookSeen, []string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Clone(x.hooks), slices.Clone(x.errs)
}

func (x *external) setAnswer(ev, answer, reason string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.answers[ev] = answer
	x.reason = reason
}

func (e *planEnv) putHook(t testing.TB, settings map[string]any) plan.HookSettings {
	t.Helper()
	var out plan.HookSettings
	e.JSON(t, "PUT", hookPath, settings, 200, &out)
	return out
}

func allHookEvents() []string {
	return []string{plan.HookFinishPlanning, plan.HookStartExecute, plan.HookAllJobDone}
}

func eventTypes(evs []*event.Envelope) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.EventType
	}
	return out
}

func TestPlanFlowWithApprovalAndExternalChecks(t *testing.T) {
	t.Parallel()
	planEach(t, func(t *testing.T, e *planEnv) {
		const secret = "plan-hook-secret-0123456789"
		x := newExternal(t, e.URL, secret)
		e.putHook(t, map[string]any{"enable": true, "enable_callback": true, "hook_address": x.srv.URL + "/hook",
			"hook_secret": secret, "hook_events": allHookEvents(), "check_timeout": "5m"})

		// Every plan event also reaches a custom channel, as any callback
		// configuration would carry it.
		recv := testsupport.NewReceiver(t)
		e.JSON(t, "POST", "/api/v1/release/callbacks", map[string]any{
			"name": "plans", "events": []string{event.PlanApprovalRequested},
			"channels": []map[string]any{{"type": "custom", "config": map[string]any{"url": recv.URL() + "/plans"}}},
		}, 201, nil)

		v1, _ := e.Setup(t, "prod", enginetest.Local(`echo "deployed $HERALD_VERSION to $HERALD_HOST"`), enginetest.Hosts(2, "127.0.0.1"))
		now := time.Now()
		var p plan.Plan
		// Planning is collaborative: anyone may create and edit.
		e.asJSON(t, e.other, "POST", plansPath, map[string]any{
			"name": "Release 42", "manager_id": e.manager.ID,
			"start_time": rfc(now.Add(-time.Hour)), "end_time": rfc(now.Add(time.Hour)),
			"description":  "<p>shop release</p>",
			"jira_sprints": []any{"SPR-1", map[string]any{"id": "SPR-2", "name": "Sprint 2", "link": "https://jira.example.com/sprint/2"}},
			"jobs": []map[string]any{
				{"name": "announce", "type": "text", "spec": map[string]any{"content": "tell support"}},
				{"name": "deploy", "type": "workflow", "manager_id": e.jobManager.ID, "spec": map[string]any{"workflow": map[string]any{
					"project_id": "app", "environment": "prod", "version_id": v1, "strategy": "rolling", "batch_size": 1}}},
			},
			"approval": map[string]any{"enabled": true, "approvers": []string{e.approver.ID}, "mode": "any"},
		}, 201, &p)
		if p.Status != plan.StatusPlanning || p.InstanceCode == "" || p.Index < 1 || p.Manager != "manager" || len(p.Jobs) != 2 ||
			len(p.JiraSprints) != 2 || p.JiraSprints[0].ID != "SPR-1" || p.JiraSprints[1].Link == "" || p.CreatedBy.ID != e.other.ID {
			t.Fatalf("created plan: %+v", p)
		}
		for _, j := range p.Jobs {
			if j.Status != plan.JobTodo || j.ID == "" {
				t.Fatalf("new job: %+v", j)
			}
		}
		var edited plan.Plan
		e.asJSON(t, e.other, "PUT", plansPath+"/"+p.ID, map[string]any{"description": "<p>shop release 42</p>"}, 200, &edited)
		if edited.Description != "<p>shop release 42</p>" || edited.Name != p.Name || len(edited.Jobs) != 2 || edited.InstanceCode == p.InstanceCode ||
			edited.Jobs[0].ID != p.Jobs[0].ID {
			t.Fatalf("edit: the description changes, the rest stays, the instance_code is new: %+v", edited)
		}

		// Finishing planning waits for the external check; the fake answers.
		var fp plan.Plan
		e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/finish-planning", nil, 200, &fp)
		if fp.Status != plan.StatusWaitFinishPlanningCheck && fp.Status != plan.StatusFinishPlanning {
			t.Fatalf("finish-planning: status %s", fp.Status)
		}
		e.waitStatus(t, p.ID, plan.StatusFinishPlanning)

		// Approval.
		var sa plan.Plan
		e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/submit-approval", map[string]any{}, 200, &sa)
		if sa.Status != plan.StatusWaitApproval || sa.Approval.Status != plan.ApprovalPending {
			t.Fatalf("submit-approval: %s %+v", sa.Status, sa.Approval)
		}
		status, raw := e.as(t, e.manager, "POST", plansPath+"/"+p.ID+"/approve", map[string]any{"approve": true})
		wantErr(t, "the manager is no approver", status, raw, 403, "forbidden")
		var ap plan.Plan
		e.asJSON(t, e.approver, "POST", plansPath+"/"+p.ID+"/approve", map[string]any{"approve": true, "comment": "go ahead"}, 200, &ap)
		if ap.Status != plan.StatusWaitExecuteCheck && ap.Status != plan.StatusExecuting {
			t.Fatalf("approved: status %s", ap.Status)
		}
		if ap.Approval.Status != plan.ApprovalApproved || len(ap.Approval.Decisions) != 1 || ap.Approval.Decisions[0].Comment != "go ahead" ||
			ap.ApprovalTime == nil {
			t.Fatalf("approval: %+v", ap.Approval)
		}
		status, raw = e.as(t, e.approver, "POST", plansPath+"/"+p.ID+"/approve", map[string]any{"approve": false})
		wantErr(t, "approving again after the plan moved on", status, raw, 409, "invalid_state")
		ex := e.waitStatus(t, p.ID, plan.StatusExecuting)
		if ex.ExecutingTime == nil {
			t.Fatalf("executing without executing_time: %+v", ex)
		}

		// Jobs: the text job by the plan's manager, the workflow job by its
		// own manager, who may not touch the other job.
		text, deploy := job(ex, "announce"), job(ex, "deploy")
		status, raw = e.as(t, e.jobManager, "POST", plansPath+"/"+p.ID+"/jobs/"+text.ID+"/execute", map[string]any{"remark": "x"})
		wantErr(t, "another job's manager", status, raw, 403, "forbidden")
		status, raw = e.as(t, e.other, "POST", plansPath+"/"+p.ID+"/jobs/"+deploy.ID+"/execute", nil)
		wantErr(t, "a bystander runs a job", status, raw, 403, "forbidden")
		var afterText plan.Plan
		e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/jobs/"+text.ID+"/execute", map[string]any{"remark": "support told"}, 200, &afterText)
		if j := job(&afterText, "announce"); j.Status != plan.JobDone || j.ExecutedBy == nil || j.ExecutedBy.ID != e.manager.ID ||
			!strings.Contains(string(j.Spec), "support told") {
			t.Fatalf("text job completed: %+v", j)
		}
		var running plan.Plan
		e.asJSON(t, e.jobManager, "POST", plansPath+"/"+p.ID+"/jobs/"+deploy.ID+"/execute", nil, 200, &running)
		taskID := workflowSpec(t, job(&running, "deploy")).TaskID
		if taskID == "" {
			t.Fatalf("workflow job without task: %s", job(&running, "deploy").Spec)
		}
		task := e.WaitStatus(t, taskID, "success")
		if task.Counts.Completed != 2 || task.CreatedBy.ID != e.jobManager.ID {
			t.Fatalf("the job's task: %+v", task)
		}

		// All done: the all-done check, then success.
		done := e.waitStatus(t, p.ID, plan.StatusSuccess)
		if j := job(done, "deploy"); j.Status != plan.JobDone || workflowSpec(t, j).Status != "success" {
			t.Fatalf("workflow job after its task: %+v", j)
		}
		if done.SuccessTime == nil {
			t.Fatalf("success without success_time")
		}

		hooks, problems := x.seen()
		if len(problems) > 0 {
			t.Fatalf("the external system found: %v", problems)
		}
		var evNames []string
		for _, h := range hooks {
			evNames = append(evNames, h.Event)
		}
		if !slices.Equal(evNames, allHookEvents()) {
			t.Fatalf("hooks %v, want %v", evNames, allHookEvents())
		}
		checkHookBody(t, hooks[0], done, plan.StatusWaitFinishPlanningCheck)
		checkHookBody(t, hooks[1], done, plan.StatusWaitExecuteCheck)
		last := checkHookBody(t, hooks[2], done, plan.StatusWaitAllDoneCheck)
		jobs := last["jobs"].([]any)
		wf := jobs[1].(map[string]any)
		spec := wf["spec"].(map[string]any)
		if wf["status"] != "done" || wf["type"] != "workflow" || spec["task_id"] != taskID || spec["status"] != "success" ||
			spec["workflow"].(map[string]any)["environment"] != "prod" || wf["executed_by"] != "jobmanager" || wf["executed_time"].(float64) < 1 {
			t.Fatalf("workflow job in the all_job_done hook: %v", wf)
		}
		txt := jobs[0].(map[string]any)
		if txt["spec"].(map[string]any)["content"] != "tell support" || txt["spec"].(map[string]any)["remark"] != "support told" {
			t.Fatalf("text job in the hook: %v", txt)
		}

		// Events: each moment once, in order, with the plan and its link.
		evs := e.planEvents(t, p.ID)
		want := []string{event.PlanFinishPlanning, event.PlanApprovalRequested, event.PlanApproved, event.PlanStartExecute,
			event.PlanAllJobDone, event.PlanSuccess}
		if !slices.Equal(eventTypes(evs), want) {
			t.Fatalf("plan events %v, want %v", eventTypes(evs), want)
		}
		for i, ev := range evs {
			pr, ok := ev.Plan()
			if !ok || pr.ID != p.ID || pr.Name != "Release 42" || pr.ManagerID != e.manager.ID || pr.Manager != "manager" ||
				ev.ObjectKind != event.KindReleasePlan || ev.Sequence != int64(i+1) || ev.URL != e.URL+"/plans/"+p.ID ||
				ev.Project == nil || ev.Project.ID != "app" {
				t.Fatalf("event %d %s: %+v %+v", i, ev.EventType, ev, pr)
			}
		}
		if pr, _ := evs[5].Plan(); pr.Status != plan.StatusSuccess {
			t.Fatalf("plan_success carries status %s", pr.Status)
		}
		// plan_approval_requested reached the channel, naming the approvers.
		got := recv.WaitRequests(t, 1)
		var msg struct {
			EventType   string         `json:"event_type"`
			URL         string         `json:"url"`
			ReleasePlan plan.EventPlan `json:"release_plan"`
		}
		if err := json.Unmarshal(got[0].Body, &msg); err != nil {
			t.Fatal(err)
		}
		if msg.EventType != event.PlanApprovalRequested || msg.URL != e.URL+"/plans/"+p.ID || msg.ReleasePlan.Approval == nil ||
			len(msg.ReleasePlan.Approval.Approvers) != 1 || msg.ReleasePlan.Approval.Approvers[0].Name != "approver" ||
			msg.ReleasePlan.Status != plan.StatusWaitApproval {
			t.Fatalf("approval request as delivered: %s", got[0].Body)
		}

		// The operation record has every step, with who, before and after.
		logs := e.logs(t, p.ID)
		acts := logActions(logs)
		for _, a := range []string{"create", "update", "finish_planning", "callback", "submit_approval", "approve", "start_execute",
			"job_complete", "job_execute", "job_task", "job_status", "all_job_done", "success", "hook"} {
			if !slices.Contains(acts, a) {
				t.Fatalf("operation record %v lacks %s", acts, a)
			}
		}
		for _, l := range logs {
			if l.Actor.Name == "" || l.CreatedAt.IsZero() {
				t.Fatalf("log entry without actor or time: %+v", l)
			}
			if l.Action == "finish_planning" && (string(l.Before) != `{"status":"planning"}` || string(l.After) != `{"status":"wait_for_finish_planning_external_check"}` ||
				l.Actor.ID != e.manager.ID) {
				t.Fatalf("finish_planning entry: %+v", l)
			}
		}
		if n := strings.Count(strings.Join(acts, " "), "callback"); n != 3 {
			t.Fatalf("%d callbacks recorded, want 3: %v", n, acts)
		}

		// The same callback again: 200, nothing changes.
		status, raw = x.callback(map[string]any{"hook_event": "all_job_done", "release_plan_id": p.ID,
			"instance_code": done.InstanceCode, "result": "success"})
		if status != 200 || !strings.Contains(string(raw), `"id":"`+p.ID+`"`) {
			t.Fatalf("repeated callback: %d %s", status, raw)
		}
		if again := e.plan(t, p.ID); again.Status != plan.StatusSuccess || !again.UpdatedAt.Equal(done.UpdatedAt) {
			t.Fatalf("repeated callback changed the plan: %+v", again)
		}
		if n := len(e.logs(t, p.ID)); n != len(logs) {
			t.Fatalf("repeated callback wrote to the record: %d entries, was %d", n, len(logs))
		}

		// The hook requests and their attempts are kept, masked.
		var hk page[plan.HookDelivery]
		e.JSON(t, "GET", plansPath+"/"+p.ID+"/hooks", nil, 200, &hk)
		if len(hk.Items) != 3 {
			t.Fatalf("hook deliveries: %+v", hk.Items)
		}
		for _, d := range hk.Items {
			if d.Status != "success" || d.Attempts != 1 || len(d.History) != 1 || strings.Contains(string(d.History[0].Request), secret) {
				t.Fatalf("hook delivery: %+v", d)
			}
		}
		status, raw = e.as(t, e.manager, "POST", plansPath+"/"+p.ID+"/cancel", nil)
		wantErr(t, "cancel a successful plan", status, raw, 409, "invalid_state")
	})
}

// checkHookBody checks a hook body against the seed: the envelope, the
// field names, integer Unix times, the plan's status at that moment.
func checkHookBody(t *testing.T, h hookSeen, p *plan.Plan, status string) map[string]any {
	t.Helper()
	var top map[string]json.RawMessage
	if err := json.Unmarshal(h.Body, &top); err != nil {
		t.Fatal(err)
	}
	if string(top["object_kind"]) != `"release_plan"` || string(top["event"]) != `"release_plan"` || string(top["workflow"]) != "null" {
		t.Fatalf("hook envelope: %s", h.Body)
	}
	rp := h.Plan
	for _, f := range []string{"id", "index", "name", "event_name", "manager", "manager_id", "instance_code", "start_time", "end_time",
		"schedule_execute_time", "description", "created_by", "create_time", "updated_by", "update_time", "jobs", "status",
		"planning_time", "approval_time", "executing_time", "success_time"} {
		if _, ok := rp[f]; !ok {
			t.Fatalf("hook body lacks release_plan.%s: %s", f, h.Body)
		}
	}
	for _, f := range []string{"start_time", "end_time", "create_time", "update_time", "planning_time"} {
		n, ok := rp[f].(float64)
		if !ok || n < 1e9 || n != float64(int64(n)) {
			t.Fatalf("release_plan.%s is %v, want integer Unix seconds", f, rp[f])
		}
	}
	if rp["id"] != p.ID || rp["name"] != p.Name || rp["manager"] != "manager" || rp["manager_id"] != p.ManagerID ||
		rp["status"] != status || rp["index"].(float64) != float64(p.Index) || int64(rp["start_time"].(float64)) != p.StartTime.Unix() {
		t.Fatalf("hook body for %s: %s", h.Event, h.Body)
	}
	if jobs, _ := rp["jobs"].([]any); len(jobs) != len(p.Jobs) {
		t.Fatalf("hook body jobs: %s", h.Body)
	}
	if h.Header.Get("webhook-id") == "" || h.Header.Get("X-Herald-Action") != h.Event || !strings.HasPrefix(h.Header.Get("User-Agent"), "Herald") {
		t.Fatalf("hook headers: %v", h.Header)
	}
	return rp
}

func TestPlanRefusals(t *testing.T) {
	t.Parallel()
	planEach(t, func(t *testing.T, e *planEnv) {
		const secret = "refusal-secret"
		x := newExternal(t, e.URL, secret)
		x.setAnswer(plan.HookFinishPlanning, "", "") // this external system never answers: the test does
		e.putHook(t, map[string]any{"enable": true, "enable_callback": true, "hook_address": x.srv.URL,
			"hook_secret": secret, "hook_events": []string{plan.HookFinishPlanning}, "check_timeout": "10m"})
		e.Setup(t, "prod", enginetest.Local("true"), enginetest.Hosts(1, "127.0.0.1"))
		now := time.Now()
		valid := func() map[string]any {
			return map[string]any{
				"name": "Later", "manager_id": e.manager.ID,
				"start_time": rfc(now.Add(time.Hour)), "end_time": rfc(now.Add(2 * time.Hour)),
				"jobs": []map[string]any{
					{"name": "notes", "type": "text", "manager_id": e.jobManager.ID, "spec": map[string]any{"content": "write notes"}},
					{"name": "mail", "type": "text", "spec": map[string]any{"content": "mail customers"}},
				},
			}
		}
		with := func(k string, v any) map[string]any {
			b := valid()
			b[k] = v
			return b
		}
		for _, c := range []struct {
			what  string
			body  any
			code  string
			field string
		}{
			{"no name", with("name", " "), "validation_failed", "name"},
			{"unknown manager", with("manager_id", "usr_nobody"), "validation_failed", "manager_id"},
			{"no manager", with("manager_id", ""), "validation_failed", "manager_id"},
			{"start without end", with("end_time", nil), "validation_failed", "end_time"},
			{"end before start", with("end_time", rfc(now)), "validation_failed", "end_time"},
			{"not a time", with("start_time", "tomorrow"), "validation_failed", "start_time"},
			{"a number for a time", with("start_time", 1756883513), "validation_failed", "start_time"},
			{"schedule outside the window", with("schedule_execute_time", rfc(now.Add(3*time.Hour))), "validation_failed", "schedule_execute_time"},
			{"unknown job type", with("jobs", []map[string]any{{"name": "x", "type": "rich"}}), "validation_failed", "jobs[0].type"},
			{"job without name", with("jobs", []map[string]any{{"type": "text"}}), "validation_failed", "jobs[0].name"},
			{"unknown job manager", with("jobs", []map[string]any{{"name": "x", "type": "text", "manager_id": "usr_x"}}), "validation_failed", "jobs[0].manager_id"},
			{"workflow without body", with("jobs", []map[string]any{{"name": "x", "type": "workflow", "spec": map[string]any{}}}), "validation_failed", "jobs[0].spec.workflow"},
			{"workflow in a missing environment", with("jobs", []map[string]any{{"name": "x", "type": "workflow",
				"spec": map[string]any{"workflow": map[string]any{"project_id": "app", "environment": "nope"}}}}), "validation_failed", "jobs[0].spec.workflow.environment"},
			{"workflow with an executor", with("jobs", []map[string]any{{"name": "x", "type": "workflow",
				"spec": map[string]any{"workflow": map[string]any{"project_id": "app", "environment": "prod", "executor": map[string]any{"type": "local", "script": "true"}}}}}),
				"validation_failed", "jobs[0].spec.workflow.executor"},
			{"workflow field of the wrong type", with("jobs", []map[string]any{{"name": "x", "type": "workflow",
				"spec": map[string]any{"workflow": map[string]any{"project_id": "app", "environment": "prod", "batch_size": "two"}}}}), "validation_failed", "jobs[0].spec.workflow.batch_size"},
			{"approval without approvers", with("approval", map[string]any{"enabled": true}), "validation_failed", "approval.approvers"},
			{"unknown approval mode", with("approval", map[string]any{"enabled": true, "approvers": []string{e.approver.ID}, "mode": "most"}), "validation_failed", "approval.mode"},
			{"unknown approver", with("approval", map[string]any{"enabled": true, "approvers": []string{"usr_x"}}), "validation_failed", "approval.approvers[0]"},
			{"sprint without id", with("jira_sprints", []any{map[string]any{"name": "s"}}), "validation_failed", "jira_sprints[0]"},
			{"jobs not an array", with("jobs", "x"), "validation_failed", "jobs"},
			{"NUL in a name", with("name", "a\x00b"), "validation_failed", "body"},
		} {
			status, raw := e.Do(t, "POST", plansPath, c.body)
			wantErr(t, c.what, status, raw, 422, c.code, c.field)
		}
		status, raw := e.Do(t, "POST", plansPath, `{"name": `)
		wantErr(t, "malformed JSON", status, raw, 400, "invalid_json")
		status, raw = e.Do(t, "GET", plansPath+"/pln_nope", nil)
		wantErr(t, "unknown plan", status, raw, 404, "not_found")
		status, raw = e.DoAs(t, "", "GET", plansPath, nil)
		wantErr(t, "no token", status, raw, 401, "unauthorized")

		var p plan.Plan
		e.asJSON(t, e.other, "POST", plansPath, valid(), 201, &p)
		notes, mail := job(&p, "notes"), job(&p, "mail")
		status, raw = e.as(t, e.other, "POST", plansPath+"/"+p.ID+"/finish-planning", nil)
		wantErr(t, "a bystander finishes planning", status, raw, 403, "forbidden")
		status, raw = e.as(t, e.manager, "POST", plansPath+"/"+p.ID+"/execute", nil)
		wantErr(t, "execute while planning", status, raw, 409, "invalid_state")
		e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/finish-planning", nil, 200, &p)
		if p.Status != plan.StatusWaitFinishPlanningCheck || p.ExternalCheck == nil || p.ExternalCheck.HookEvent != plan.HookFinishPlanning ||
			p.ExternalCheck.Deadline == nil {
			t.Fatalf("waiting for the check: %+v %+v", p.Status, p.ExternalCheck)
		}
		status, raw = e.Do(t, "PUT", plansPath+"/"+p.ID, map[string]any{"name": "renamed"})
		wantErr(t, "edit after planning", status, raw, 409, "invalid_state")
		// Wait for the hook, so the checks below are about the callback.
		end := time.Now().Add(enginetest.Deadline)
		for hooks, _ := x.seen(); len(hooks) == 0; hooks, _ = x.seen() {
			if time.Now().After(end) {
				t.Fatal("no hook")
			}
			time.Sleep(10 * time.Millisecond)
		}

		cb := func(ev, code, result string) map[string]any {
			return map[string]any{"hook_event": ev, "release_plan_id": p.ID, "instance_code": code, "result": result}
		}
		for _, c := range []struct {
			what   string
			token  string
			body   any
			status int
			code   string
		}{
			{"no token", "", cb("finish_planning", p.InstanceCode, "success"), 401, "unauthorized"},
			{"wrong token", "guess", cb("finish_planning", p.InstanceCode, "success"), 401, "unauthorized"},
			{"wrong instance_code", secret, cb("finish_planning", "0123abcd", "success"), 409, "conflict"},
			{"wrong event", secret, cb("start_execute", p.InstanceCode, "success"), 409, "invalid_state"},
			{"unknown event", secret, cb("approve", p.InstanceCode, "success"), 422, "validation_failed"},
			{"unknown result", secret, cb("finish_planning", p.InstanceCode, "ok"), 422, "validation_failed"},
			{"unknown plan", secret, map[string]any{"hook_event": "finish_planning", "release_plan_id": "pln_x", "instance_code": "x", "result": "success"}, 404, "not_found"},
			{"malformed", secret, "{", 400, "invalid_json"},
		} {
			var status int
			var raw []byte
			if s, ok := c.body.(string); ok {
				status, raw = postRaw(e.URL+callbackPath, c.token, s)
			} else {
				status, raw = postCallback(e.URL, c.token, c.body)
			}
			wantErr(t, "callback: "+c.what, status, raw, c.status, c.code)
		}
		before := len(e.logs(t, p.ID))
		for i := range 2 {
			status, raw := x.callback(cb("finish_planning", p.InstanceCode, "success"))
			if status != 200 || string(bytes.TrimSpace(raw)) != `{"id":"`+p.ID+`"}` {
				t.Fatalf("callback %d: %d %s", i, status, raw)
			}
		}
		if n := len(e.logs(t, p.ID)); n != before+2 { // the callback and its move, once
			t.Fatalf("two identical callbacks wrote %d entries, want 2", n-before)
		}
		status, raw = x.callback(cb("finish_planning", p.InstanceCode, "failed"))
		wantErr(t, "a different answer to an answered check", status, raw, 409, "conflict")
		if got := e.plan(t, p.ID); got.Status != plan.StatusFinishPlanning {
			t.Fatalf("after the callback: %s", got.Status)
		}

		// Execution: the manager only, inside the window.
		status, raw = e.as(t, e.other, "POST", plansPath+"/"+p.ID+"/execute", nil)
		wantErr(t, "a bystander executes", status, raw, 403, "forbidden")
		status, raw = e.Do(t, "POST", plansPath+"/"+p.ID+"/execute", nil)
		wantErr(t, "an admin executes someone else's plan", status, raw, 403, "forbidden")
		status, raw = e.as(t, e.manager, "POST", plansPath+"/"+p.ID+"/execute", nil)
		b := wantErr(t, "execute before the window", status, raw, 409, "invalid_state")
		if !strings.Contains(b.Error.Message, "window") || !strings.Contains(b.Error.Message, "opens at") {
			t.Fatalf("the refusal should say why: %q", b.Error.Message)
		}
		status, raw = e.as(t, e.manager, "POST", plansPath+"/"+p.ID+"/submit-approval", nil)
		wantErr(t, "submit-approval without approval", status, raw, 409, "invalid_state")

		// Replan: a new round; the old round's callbacks are refused.
		old := p.InstanceCode
		e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/replan", nil, 200, &p)
		if p.Status != plan.StatusPlanning || p.InstanceCode == old {
			t.Fatalf("replan: %s %s", p.Status, p.InstanceCode)
		}
		status, raw = x.callback(cb("finish_planning", old, "success"))
		wantErr(t, "a callback of the old round", status, raw, 409, "conflict")
		e.asJSON(t, e.other, "PUT", plansPath+"/"+p.ID, map[string]any{"start_time": rfc(now.Add(-time.Minute)), "end_time": rfc(now.Add(time.Hour))}, 200, &p)
		x.setAnswer(plan.HookFinishPlanning, "success", "")
		e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/finish-planning", nil, 200, &p)
		e.waitStatus(t, p.ID, plan.StatusFinishPlanning)
		e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/execute", nil, 200, &p)
		if p.Status != plan.StatusExecuting {
			t.Fatalf("execute without an execute hook: %s", p.Status)
		}

		// Jobs: managers only; a finished job cannot run again.
		status, raw = e.as(t, e.other, "POST", plansPath+"/"+p.ID+"/jobs/"+notes.ID+"/skip", nil)
		wantErr(t, "a bystander skips", status, raw, 403, "forbidden")
		status, raw = e.as(t, e.jobManager, "POST", plansPath+"/"+p.ID+"/jobs/"+mail.ID+"/skip", nil)
		wantErr(t, "a job manager skips another job", status, raw, 403, "forbidden")
		status, raw = e.as(t, e.manager, "POST", plansPath+"/"+p.ID+"/jobs/pjob_nope/skip", nil)
		wantErr(t, "unknown job", status, raw, 404, "not_found")
		status, raw = e.as(t, e.manager, "POST", plansPath+"/"+p.ID+"/jobs/"+mail.ID+"/retry", nil)
		wantErr(t, "retry a text job", status, raw, 409, "invalid_state")
		e.asJSON(t, e.jobManager, "POST", plansPath+"/"+p.ID+"/jobs/"+notes.ID+"/skip", nil, 200, &p)
		if job(&p, "notes").Status != plan.JobSkipped || p.Status != plan.StatusExecuting {
			t.Fatalf("skip: %+v", p)
		}
		status, raw = e.as(t, e.manager, "POST", plansPath+"/"+p.ID+"/jobs/"+notes.ID+"/execute", nil)
		wantErr(t, "execute a skipped job", status, raw, 409, "invalid_state")
		e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/jobs/"+mail.ID+"/execute", map[string]any{"remark": "sent"}, 200, &p)
		if p.Status != plan.StatusSuccess {
			t.Fatalf("every job done or skipped, plan %s", p.Status)
		}
		evs := eventTypes(e.planEvents(t, p.ID))
		// Two rounds: finish_planning in each; no approval; no hook on the
		// other moments, whose events are still published.
		want := []string{event.PlanFinishPlanning, event.PlanFinishPlanning, event.PlanStartExecute, event.PlanAllJobDone, event.PlanSuccess}
		if !slices.Equal(evs, want) {
			t.Fatalf("events %v, want %v", evs, want)
		}

		// Delete: the manager, the creator or an admin, not a bystander.
		status, raw = e.as(t, e.jobManager, "DELETE", plansPath+"/"+p.ID, nil)
		wantErr(t, "a bystander deletes", status, raw, 403, "forbidden")
		if status, raw = e.as(t, e.other, "DELETE", plansPath+"/"+p.ID, nil); status != 204 {
			t.Fatalf("the creator deletes: %d %s", status, raw)
		}
		status, raw = e.Do(t, "GET", plansPath+"/"+p.ID, nil)
		wantErr(t, "deleted plan", status, raw, 404, "not_found")
	})
}

func postRaw(url, token, body string) (int, []byte) {
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("X-Herald-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

func TestPlanExternalCheckFailures(t *testing.T) {
	t.Parallel()
	planEach(t, func(t *testing.T, e *planEnv) {
		const secret = "failing-secret"
		x := newExternal(t, e.URL, secret)
		e.Setup(t, "prod", enginetest.Local("true"), enginetest.Hosts(1, "127.0.0.1"))
		newPlan := func(name string) plan.Plan {
			var p plan.Plan
			e.asJSON(t, e.manager, "POST", plansPath, map[string]any{"name": name, "manager_id": e.manager.ID,
				"jobs": []map[string]any{{"name": "notes", "type": "text"}}}, 201, &p)
			return p
		}

		// No answer within check_timeout.
		x.setAnswer(plan.HookFinishPlanning, "", "")
		e.putHook(t, map[string]any{"enable": true, "enable_callback": true, "hook_address": x.srv.URL,
			"hook_secret": secret, "hook_events": []string{plan.HookFinishPlanning}, "check_timeout": "1s"})
		p := newPlan("silent")
		e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/finish-planning", nil, 200, &p)
		got := e.waitStatus(t, p.ID, plan.StatusWaitFinishPlanningCheckFailed)
		if got.ExternalCheck == nil || !strings.Contains(got.ExternalCheck.FailedReason, "check_timeout") {
			t.Fatalf("timed out check: %+v", got.ExternalCheck)
		}
		status, raw := x.callback(map[string]any{"hook_event": "finish_planning", "release_plan_id": p.ID, "instance_code": p.InstanceCode, "result": "success"})
		wantErr(t, "an answer after the timeout", status, raw, 409, "invalid_state")
		status, raw = e.Do(t, "PUT", plansPath+"/"+p.ID, map[string]any{"name": "x"})
		wantErr(t, "edit a failed check", status, raw, 409, "invalid_state")
		var replanned plan.Plan
		e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/replan", nil, 200, &replanned)
		if replanned.Status != plan.StatusPlanning || replanned.ExternalCheck != nil || replanned.InstanceCode == p.InstanceCode {
			t.Fatalf("replanned: %+v", replanned)
		}

		// The external system answers failed, with its reason.
		x.setAnswer(plan.HookFinishPlanning, "failed", "change freeze")
		p = newPlan("refused")
		e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/finish-planning", nil, 200, &p)
		got = e.waitStatus(t, p.ID, plan.StatusWaitFinishPlanningCheckFailed)
		if got.ExternalCheck == nil || got.ExternalCheck.FailedReason != "change freeze" {
			t.Fatalf("refused check: %+v", got.ExternalCheck)
		}
		e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/cancel", nil, 200, &p)
		if p.Status != plan.StatusCancel {
			t.Fatalf("cancel: %s", p.Status)
		}
		if evs := eventTypes(e.planEvents(t, p.ID)); !slices.Equal(evs, []string{event.PlanFinishPlanning, event.PlanCancelled}) {
			t.Fatalf("events %v", evs)
		}

		// The hook cannot be delivered (the receiver refuses it for good):
		// the check fails at once, saying why.
		bad := testsupport.NewReceiver(t)
		bad.SetDefault(testsupport.Reply{Status: 400, Body: `{"error":"unknown plan"}`})
		e.putHook(t, map[string]any{"enable": true, "enable_callback": true, "hook_address": bad.URL(),
			"hook_secret": "******", "hook_events": []string{plan.HookFinishPlanning}, "check_timeout": "1h"})
		p = newPlan("undeliverable")
		e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/finish-planning", nil, 200, &p)
		got = e.waitStatus(t, p.ID, plan.StatusWaitFinishPlanningCheckFailed)
		if got.ExternalCheck == nil || !strings.Contains(got.ExternalCheck.FailedReason, "HTTP 400") {
			t.Fatalf("undeliverable hook: %+v", got.ExternalCheck)
		}
		if r := bad.Requests(); len(r) != 1 || r[0].Header.Get("X-Herald-Token") != secret {
			t.Fatalf("the masked secret was kept: requests %d", len(r))
		}
	})
}

func TestPlanHookRetriesAndSettings(t *testing.T) {
	t.Parallel()
	planEach(t, func(t *testing.T, e *planEnv) {
		var hs plan.HookSettings
		e.JSON(t, "GET", hookPath, nil, 200, &hs)
		if hs.Enable || hs.HookSecret != "" || hs.CheckTimeout.D() != time.Hour || hs.HookEvents == nil {
			t.Fatalf("default settings: %+v", hs)
		}
		for _, c := range []struct {
			what  string
			body  map[string]any
			field string
		}{
			{"enabled without address", map[string]any{"enable": true, "hook_events": []string{"finish_planning"}}, "hook_address"},
			{"not a URL", map[string]any{"hook_address": "ftp://x"}, "hook_address"},
			{"unknown event", map[string]any{"hook_events": []string{"approve"}}, "hook_events[0]"},
			{"enabled without events", map[string]any{"enable": true, "hook_address": "http://127.0.0.1:1"}, "hook_events"},
			{"callback without secret", map[string]any{"enable_callback": true}, "hook_secret"},
			{"timeout too short", map[string]any{"check_timeout": "1ms"}, "check_timeout"},
			{"timeout not a duration", map[string]any{"check_timeout": 60}, "check_timeout"},
			{"metadata address", map[string]any{"hook_address": "http://169.254.169.254/latest"}, "hook_address"},
		} {
			status, raw := e.Do(t, "PUT", hookPath, c.body)
			wantErr(t, c.what, status, raw, 422, "validation_failed", c.field)
		}
		status, raw := e.as(t, e.manager, "PUT", hookPath, map[string]any{})
		wantErr(t, "a member changes the hook", status, raw, 403, "forbidden")

		const secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" // a Standard Webhooks secret is used decoded
		recv := testsupport.NewReceiver(t)
		if err := recv.RequireSignature(secret); err != nil {
			t.Fatal(err)
		}
		recv.Script(testsupport.Reply{Status: 503}, testsupport.Reply{Status: 429, RetryAfter: "0"})
		hs = e.putHook(t, map[string]any{"enable": true, "hook_address": recv.URL() + "/release", "hook_secret": secret,
			"hook_events": []string{plan.HookFinishPlanning, plan.HookAllJobDone}, "check_timeout": "30m"})
		if hs.HookSecret != "******" || hs.CheckTimeout.D() != 30*time.Minute || !hs.Enable || hs.EnableCallback {
			t.Fatalf("saved settings: %+v", hs)
		}
		var again plan.HookSettings
		e.JSON(t, "GET", hookPath, nil, 200, &again)
		if again.HookSecret != "******" || again.HookAddress != recv.URL()+"/release" {
			t.Fatalf("read settings: %+v", again)
		}
		var p plan.Plan
		e.asJSON(t, e.manager, "POST", plansPath, map[string]any{"name": "retried", "manager_id": e.manager.ID,
			"jobs": []map[string]any{{"name": "notes", "type": "text"}}}, 201, &p)
		e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/finish-planning", nil, 200, &p)
		if p.Status != plan.StatusFinishPlanning {
			t.Fatalf("without callback the plan does not wait: %s", p.Status)
		}
		reqs := recv.WaitRequests(t, 3)
		for i, r := range reqs {
			if r.SignatureErr != nil || r.Header.Get("webhook-id") != reqs[0].Header.Get("webhook-id") || !bytes.Equal(r.Body, reqs[0].Body) {
				t.Fatalf("attempt %d: signature %v, id %s, same body %v", i+1, r.SignatureErr, r.Header.Get("webhook-id"), bytes.Equal(r.Body, reqs[0].Body))
			}
		}
		var hk page[plan.HookDelivery]
		end := time.Now().Add(enginetest.Deadline)
		for {
			e.JSON(t, "GET", plansPath+"/"+p.ID+"/hooks", nil, 200, &hk)
			if len(hk.Items) == 1 && hk.Items[0].Status == "success" {
				break
			}
			if time.Now().After(end) {
				t.Fatalf("hook deliveries: %+v", hk.Items)
			}
			time.Sleep(20 * time.Millisecond)
		}
		d := hk.Items[0]
		if d.Attempts != 3 || len(d.History) != 3 || d.History[0].StatusCode != 503 || d.History[1].StatusCode != 429 ||
			d.History[2].StatusCode != 200 || d.History[2].Status != "success" {
			t.Fatalf("attempts: %+v", d)
		}
		for _, a := range d.History {
			if strings.Contains(string(a.Request), "MfKQ9r8G") {
				t.Fatalf("the secret is in the recorded request: %s", a.Request)
			}
		}
		// Without a callback, the all_job_done hook already says success.
		e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/execute", nil, 200, &p)
		e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/jobs/"+job(&p, "notes").ID+"/execute", nil, 200, &p)
		if p.Status != plan.StatusSuccess {
			t.Fatalf("plan after its only job: %s", p.Status)
		}
		reqs = recv.WaitRequests(t, 4)
		var done struct {
			ReleasePlan struct {
				EventName   string `json:"event_name"`
				Status      string `json:"status"`
				SuccessTime int64  `json:"success_time"`
			} `json:"release_plan"`
		}
		if err := json.Unmarshal(reqs[3].Body, &done); err != nil {
			t.Fatal(err)
		}
		if done.ReleasePlan.EventName != plan.HookAllJobDone || done.ReleasePlan.Status != plan.StatusSuccess || done.ReleasePlan.SuccessTime == 0 {
			t.Fatalf("all_job_done hook: %s", reqs[3].Body)
		}
		if evs := eventTypes(e.planEvents(t, p.ID)); !slices.Equal(evs, []string{event.PlanFinishPlanning, event.PlanStartExecute, event.PlanAllJobDone, event.PlanSuccess}) {
			t.Fatalf("events %v", evs)
		}

		// Turning the hook off keeps the secret when it is sent back masked.
		hs = e.putHook(t, map[string]any{"enable": false, "hook_address": recv.URL(), "hook_secret": "******", "hook_events": []string{}})
		if hs.HookSecret != "******" {
			t.Fatalf("masked secret not kept: %+v", hs)
		}
		hs = e.putHook(t, map[string]any{"enable": false, "hook_secret": ""})
		if hs.HookSecret != "" {
			t.Fatalf("secret not cleared: %+v", hs)
		}
		status, raw = postCallback(e.URL, secret, map[string]any{"hook_event": "finish_planning", "release_plan_id": p.ID,
			"instance_code": p.InstanceCode, "result": "success"})
		wantErr(t, "a callback when no secret is set", status, raw, 401, "unauthorized")
	})
}

func TestPlanWorkflowJobFailsThenRetried(t *testing.T) {
	t.Parallel()
	planEach(t, func(t *testing.T, e *planEnv) {
		dir := t.TempDir()
		// The script fails until the file "fixed" exists.
		e.Setup(t, "prod", enginetest.Local(fmt.Sprintf(`test -f %q`, filepath.Join(dir, "fixed"))), enginetest.Hosts(1, "127.0.0.1"))
		v1 := e.Version(t, "v1")
		var p plan.Plan
		e.asJSON(t, e.manager, "POST", plansPath, map[string]any{"name": "retry", "manager_id": e.manager.ID,
			"jobs": []map[string]any{{"name": "deploy", "type": "workflow",
				"spec": map[string]any{"workflow": map[string]any{"project_id": "app", "environment": "prod", "version": "v1"}}}}}, 201, &p)
		e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/finish-planning", nil, 200, &p)
		e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/execute", nil, 200, &p)
		deploy := job(&p, "deploy")
		e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/jobs/"+deploy.ID+"/execute", nil, 200, &p)
		failed := e.waitPlan(t, p.ID, "the job fails", func(p *plan.Plan) bool { return job(p, "deploy").Status == plan.JobFailed })
		// A failed job keeps the plan executing (the seed would end it).
		if failed.Status != plan.StatusExecuting || job(failed, "deploy").Error == "" {
			t.Fatalf("after the failure: %+v", failed)
		}
		first := workflowSpec(t, job(failed, "deploy"))
		if first.Status != "failed" {
			t.Fatalf("task status in the spec: %+v", first)
		}
		if task := e.Task(t, first.TaskID); task.VersionID != v1 {
			t.Fatalf("the task releases %s, want v1", task.VersionID)
		}
		status, raw := e.as(t, e.manager, "POST", plansPath+"/"+p.ID+"/jobs/"+deploy.ID+"/execute", nil)
		wantErr(t, "execute a failed job (retry it)", status, raw, 409, "invalid_state")

		if err := os.WriteFile(filepath.Join(dir, "fixed"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/jobs/"+deploy.ID+"/retry", nil, 200, &p)
		done := e.waitStatus(t, p.ID, plan.StatusSuccess)
		second := workflowSpec(t, job(done, "deploy"))
		if second.TaskID != first.TaskID || second.Status != "success" {
			t.Fatalf("the retry reruns the failed task: %+v, was %+v", second, first)
		}
		if task := e.Task(t, first.TaskID); task.Run != 2 {
			t.Fatalf("task run %d, want 2", task.Run)
		}

		// A job whose task the engine refuses stays where it was, and the
		// caller hears why.
		var q plan.Plan
		e.asJSON(t, e.manager, "POST", plansPath, map[string]any{"name": "refused", "manager_id": e.manager.ID,
			"jobs": []map[string]any{{"name": "deploy", "type": "workflow",
				"spec": map[string]any{"workflow": map[string]any{"project_id": "app", "environment": "prod", "version": "v9"}}}}}, 201, &q)
		e.asJSON(t, e.manager, "POST", plansPath+"/"+q.ID+"/finish-planning", nil, 200, &q)
		e.asJSON(t, e.manager, "POST", plansPath+"/"+q.ID+"/execute", nil, 200, &q)
		status, raw = e.as(t, e.manager, "POST", plansPath+"/"+q.ID+"/jobs/"+job(&q, "deploy").ID+"/execute", nil)
		wantErr(t, "a task the engine refuses", status, raw, 422, "validation_failed", "version")
		if j := job(e.plan(t, q.ID), "deploy"); j.Status != plan.JobTodo {
			t.Fatalf("refused job: %+v", j)
		}
	})
}

func TestPlanWindowTimeoutAndCancel(t *testing.T) {
	t.Parallel()
	planEach(t, func(t *testing.T, e *planEnv) {
		now := time.Now()
		var p plan.Plan
		e.asJSON(t, e.manager, "POST", plansPath, map[string]any{"name": "short window", "manager_id": e.manager.ID,
			"start_time": rfc(now.Add(-time.Minute)), "end_time": rfc(now.Add(3 * time.Second)),
			"jobs": []map[string]any{{"name": "a", "type": "text"}, {"name": "b", "type": "text"}}}, 201, &p)
		e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/finish-planning", nil, 200, &p)
		e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/execute", nil, 200, &p)
		e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/jobs/"+job(&p, "a").ID+"/execute", nil, 200, &p)
		got := e.waitStatus(t, p.ID, plan.StatusTimeout)
		if job(got, "b").Status != plan.JobTodo {
			t.Fatalf("timed out plan: %+v", got)
		}
		evs := e.planEvents(t, p.ID)
		if types := eventTypes(evs); !slices.Equal(types, []string{event.PlanFinishPlanning, event.PlanStartExecute, event.PlanTimeout}) {
			t.Fatalf("events %v", types)
		}
		if evs[2].Actor == nil || evs[2].Actor.Name != "system" {
			t.Fatalf("timeout actor: %+v", evs[2].Actor)
		}
		status, raw := e.as(t, e.manager, "POST", plansPath+"/"+p.ID+"/jobs/"+job(got, "b").ID+"/execute", nil)
		wantErr(t, "a job of a timed-out plan", status, raw, 409, "invalid_state")

		// Approval: mode all needs everyone; one denial denies; a denied
		// plan is replanned and edited.
		var q plan.Plan
		e.asJSON(t, e.manager, "POST", plansPath, map[string]any{"name": "approved by all", "manager_id": e.manager.ID,
			"jobs":     []map[string]any{{"name": "a", "type": "text"}},
			"approval": map[string]any{"enabled": true, "approvers": []string{e.approver.ID, e.jobManager.ID}, "mode": "all"}}, 201, &q)
		e.asJSON(t, e.manager, "POST", plansPath+"/"+q.ID+"/finish-planning", nil, 200, &q)
		status, raw = e.as(t, e.manager, "POST", plansPath+"/"+q.ID+"/execute", nil)
		wantErr(t, "execute a plan that needs approval", status, raw, 409, "invalid_state")
		e.asJSON(t, e.manager, "POST", plansPath+"/"+q.ID+"/submit-approval", nil, 200, &q)
		e.asJSON(t, e.approver, "POST", plansPath+"/"+q.ID+"/approve", map[string]any{"approve": true}, 200, &q)
		if q.Status != plan.StatusWaitApproval || q.Approval.Status != plan.ApprovalPending {
			t.Fatalf("one of two approvals: %s %+v", q.Status, q.Approval)
		}
		status, raw = e.as(t, e.approver, "POST", plansPath+"/"+q.ID+"/approve", map[string]any{"approve": true})
		wantErr(t, "approve twice", status, raw, 409, "conflict")
		status, raw = e.as(t, e.approver, "POST", plansPath+"/"+q.ID+"/approve", map[string]any{"comment": "?"})
		wantErr(t, "approve without a decision", status, raw, 422, "validation_failed", "approve")
		e.asJSON(t, e.jobManager, "POST", plansPath+"/"+q.ID+"/approve", map[string]any{"approve": false, "comment": "not this week"}, 200, &q)
		if q.Status != plan.StatusDenied || q.Approval.Status != plan.ApprovalDenied {
			t.Fatalf("denied: %s %+v", q.Status, q.Approval)
		}
		status, raw = e.Do(t, "PUT", plansPath+"/"+q.ID, map[string]any{"name": "next week"})
		wantErr(t, "edit a denied plan before replanning", status, raw, 409, "invalid_state")
		e.asJSON(t, e.manager, "POST", plansPath+"/"+q.ID+"/replan", nil, 200, nil)
		var next plan.Plan
		e.asJSON(t, e.manager, "PUT", plansPath+"/"+q.ID, map[string]any{"name": "next week"}, 200, &next)
		if next.Status != plan.StatusPlanning || next.Name != "next week" || next.Approval.Status != "" || len(next.Approval.Decisions) != 0 {
			t.Fatalf("replanned and edited: %+v", next)
		}
		evs = e.planEvents(t, q.ID)
		if types := eventTypes(evs); !slices.Equal(types, []string{event.PlanFinishPlanning, event.PlanApprovalRequested, event.PlanDenied}) {
			t.Fatalf("events %v", types)
		}
		if pr, _ := evs[2].Plan(); pr.Status != plan.StatusDenied {
			t.Fatalf("plan_denied status %s", pr.Status)
		}
		var denied struct {
			ReleasePlan plan.EventPlan `json:"release_plan"`
		}
		raw, _ = json.Marshal(evs[2])
		_ = json.Unmarshal(raw, &denied)
		if denied.ReleasePlan.Comment != "not this week" {
			t.Fatalf("plan_denied comment: %+v", denied.ReleasePlan)
		}

		// The list, newest first, filtered by status.
		var l page[plan.Plan]
		e.JSON(t, "GET", plansPath+"?limit=1", nil, 200, &l)
		if len(l.Items) != 1 || l.Items[0].ID != q.ID || l.NextCursor == "" {
			t.Fatalf("first page: %+v", l)
		}
		e.JSON(t, "GET", plansPath+"?limit=1&cursor="+l.NextCursor, nil, 200, &l)
		if len(l.Items) != 1 || l.Items[0].ID != p.ID || l.NextCursor != "" {
			t.Fatalf("second page: %+v", l)
		}
		e.JSON(t, "GET", plansPath+"?status=timeout", nil, 200, &l)
		if len(l.Items) != 1 || l.Items[0].ID != p.ID || len(l.Items[0].Jobs) != 2 {
			t.Fatalf("timeout plans: %+v", l)
		}
		status, raw = e.Do(t, "GET", plansPath+"?status=late", nil)
		wantErr(t, "unknown status filter", status, raw, 422, "validation_failed", "status")
	})
}

// TestPlanScheduledExecutionAcrossRestart: the scheduled execution is a
// River job in the database, so a Herald started after the one that
// scheduled it runs it.
func TestPlanScheduledExecutionAcrossRestart(t *testing.T) {
	t.Parallel()
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			testScheduledAcrossRestart(t, d)
		})
	}
}

func testScheduledAcrossRestart(t *testing.T, d db.Dialect) {
	url, dir := dbtest.URL(t, d), t.TempDir()
	first := enginetest.Start(t, url, dir)
	e := newPlanEnv(t, first)
	e.Setup(t, "prod", enginetest.Local(`echo "scheduled $HERALD_HOST"`), enginetest.Hosts(2, "127.0.0.1"))
	now := time.Now()
	schedule := now.Add(6 * time.Second)
	var p plan.Plan
	e.asJSON(t, e.manager, "POST", plansPath, map[string]any{"name": "tonight", "manager_id": e.manager.ID,
		"start_time": rfc(now.Add(-time.Minute)), "end_time": rfc(now.Add(time.Hour)), "schedule_execute_time": schedule.UTC().Format(time.RFC3339Nano),
		"jobs": []map[string]any{
			{"name": "deploy", "type": "workflow", "spec": map[string]any{"workflow": map[string]any{"project_id": "app", "environment": "prod", "version": "v1"}}},
			{"name": "notes", "type": "text"},
		}}, 201, &p)
	e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/finish-planning", nil, 200, &p)
	e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/execute", nil, 200, &p)
	if p.Status != plan.StatusExecuting || job(&p, "deploy").Status != plan.JobTodo {
		t.Fatalf("executing before the schedule: %+v", p)
	}
	first.Stop()
	if time.Now().After(schedule) {
		t.Fatalf("the first Herald took too long to stop; the restart is not tested")
	}

	second := enginetest.Start(t, url, dir)
	e.Env = second
	got := e.waitPlan(t, p.ID, "the scheduled job ran", func(p *plan.Plan) bool { return job(p, "deploy").Status == plan.JobDone })
	j := job(got, "deploy")
	if j.ExecutedBy == nil || j.ExecutedBy.Name != "system" || j.ExecutedAt == nil || j.ExecutedAt.Before(schedule.Add(-time.Second)) {
		t.Fatalf("scheduled job: %+v", j)
	}
	if job(got, "notes").Status != plan.JobTodo || got.Status != plan.StatusExecuting {
		t.Fatalf("text jobs are not scheduled: %+v", got)
	}
	if !slices.Contains(logActions(e.logs(t, p.ID)), "schedule_execute") {
		t.Fatalf("the scheduled execution is not in the record: %v", logActions(e.logs(t, p.ID)))
	}
	e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/jobs/"+job(got, "notes").ID+"/execute", nil, 200, &p)
	if p.Status != plan.StatusSuccess {
		t.Fatalf("plan after the last job: %s", p.Status)
	}
}

// TestPlanReplanAndCancelStopTheirTasks: a new round keeps the jobs done,
// starts the others again and cancels the tasks still running; cancelling
// the plan cancels them too.
func TestPlanReplanAndCancelStopTheirTasks(t *testing.T) {
	t.Parallel()
	planEach(t, func(t *testing.T, e *planEnv) {
		gate := enginetest.NewGate(t)
		e.Setup(t, "prod", enginetest.Local(gate.Script()), enginetest.Hosts(2, "127.0.0.1"))
		var p plan.Plan
		e.asJSON(t, e.manager, "POST", plansPath, map[string]any{"name": "long", "manager_id": e.manager.ID,
			"jobs": []map[string]any{
				{"name": "notes", "type": "text"},
				{"name": "deploy", "type": "workflow", "spec": map[string]any{"workflow": map[string]any{
					"project_id": "app", "environment": "prod", "version": "v1", "batch_size": 1}}},
			}}, 201, &p)
		e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/finish-planning", nil, 200, &p)
		e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/execute", nil, 200, &p)
		e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/jobs/"+job(&p, "notes").ID+"/execute", nil, 200, &p)
		e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/jobs/"+job(&p, "deploy").ID+"/execute", nil, 200, &p)
		taskID := workflowSpec(t, job(&p, "deploy")).TaskID
		gate.WaitStarted(t, "h1")
		status, raw := e.as(t, e.manager, "POST", plansPath+"/"+p.ID+"/jobs/"+job(&p, "deploy").ID+"/skip", nil)
		wantErr(t, "skip a running job", status, raw, 409, "invalid_state")

		var r plan.Plan
		e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/replan", nil, 200, &r)
		if r.Status != plan.StatusPlanning || job(&r, "notes").Status != plan.JobDone || job(&r, "deploy").Status != plan.JobTodo ||
			workflowSpec(t, job(&r, "deploy")).TaskID != "" {
			t.Fatalf("replanned: %+v", r)
		}
		gate.Open(t)
		if task := e.WaitStatus(t, taskID, "cancelled", "success"); task.Status != "cancelled" {
			t.Fatalf("the old round's task: %s", task.Status)
		}
		if j := job(e.plan(t, p.ID), "deploy"); j.Status != plan.JobTodo {
			t.Fatalf("the cancelled task of the old round moved the job: %+v", j)
		}

		// The next round: the done job stays done; cancel stops the task.
		gate2 := enginetest.NewGate(t)
		e.JSON(t, "PUT", "/api/v1/release/projects/app/environments/prod", map[string]any{"executor": enginetest.Local(gate2.Script())}, 200, nil)
		e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/finish-planning", nil, 200, &p)
		e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/execute", nil, 200, &p)
		if job(&p, "notes").Status != plan.JobDone {
			t.Fatalf("a done job of the last round: %+v", job(&p, "notes"))
		}
		e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/jobs/"+job(&p, "deploy").ID+"/execute", nil, 200, &p)
		second := workflowSpec(t, job(&p, "deploy")).TaskID
		gate2.WaitStarted(t, "h1")
		e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/cancel", nil, 200, &p)
		gate2.Open(t)
		e.WaitStatus(t, second, "cancelled")
		got := e.waitPlan(t, p.ID, "the job follows its cancelled task", func(p *plan.Plan) bool { return job(p, "deploy").Status == plan.JobFailed })
		if got.Status != plan.StatusCancel {
			t.Fatalf("cancelled plan: %s", got.Status)
		}
		evs := eventTypes(e.planEvents(t, p.ID))
		want := []string{event.PlanFinishPlanning, event.PlanStartExecute, event.PlanFinishPlanning, event.PlanStartExecute, event.PlanCancelled}
		if !slices.Equal(evs, want) {
			t.Fatalf("events %v, want %v", evs, want)
		}
	})
}

// TestPlanReconcile: a job whose task ended unheard of, and a job left
// without a task by a process that died creating it, are settled.
func TestPlanReconcile(t *testing.T) {
	t.Parallel()
	planEach(t, func(t *testing.T, e *planEnv) {
		ctx := context.Background()
		e.Setup(t, "prod", enginetest.Local("true"), enginetest.Hosts(1, "127.0.0.1"))
		var p plan.Plan
		e.asJSON(t, e.manager, "POST", plansPath, map[string]any{"name": "reconciled", "manager_id": e.manager.ID,
			"jobs": []map[string]any{
				{"name": "a", "type": "workflow", "spec": map[string]any{"workflow": map[string]any{"project_id": "app", "environment": "prod", "version": "v1"}}},
				{"name": "b", "type": "workflow", "spec": map[string]any{"workflow": map[string]any{"project_id": "app", "environment": "prod", "version": "v2"}}},
			}}, 201, &p)
		e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/finish-planning", nil, 200, &p)
		e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/execute", nil, 200, &p)
		task := e.Create(t, map[string]any{"project_id": "app", "environment": "prod", "version": "v1"})
		e.WaitStatus(t, task.ID, "success")
		a, b := job(&p, "a"), job(&p, "b")
		if _, err := e.App.DB.Exec(ctx, `UPDATE release_plan_jobs SET status = 'running', task_id = $2, task_status = 'running' WHERE id = $1`, a.ID, task.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.App.DB.Exec(ctx, `UPDATE release_plan_jobs SET status = 'running', launch_token = 'lch_x', launched_at = $2 WHERE id = $1`,
			b.ID, time.Now().Add(-time.Hour).UTC()); err != nil {
			t.Fatal(err)
		}
		if err := e.App.Plan.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		got := e.plan(t, p.ID)
		if ja := job(got, "a"); ja.Status != plan.JobDone || workflowSpec(t, ja).Status != "success" {
			t.Fatalf("job of an ended task: %+v", ja)
		}
		if jb := job(got, "b"); jb.Status != plan.JobFailed || !strings.Contains(jb.Error, "retry") {
			t.Fatalf("job without a task: %+v", jb)
		}
		if got.Status != plan.StatusExecuting {
			t.Fatalf("plan: %s", got.Status)
		}
	})
}

// TestPlanBadInput: every way a body or path can be wrong gets a 4xx JSON
// error on every plan route, never a 5xx.
func TestPlanBadInput(t *testing.T) {
	t.Parallel()
	planEach(t, func(t *testing.T, e *planEnv) {
		e.putHook(t, map[string]any{"enable": false, "enable_callback": true, "hook_secret": "s3cret"})
		var p plan.Plan
		e.asJSON(t, e.manager, "POST", plansPath, map[string]any{"name": "bad", "manager_id": e.manager.ID,
			"jobs": []map[string]any{{"name": "n", "type": "text"}}}, 201, &p)
		jid := p.Jobs[0].ID
		big := `{"name": "` + strings.Repeat("x", 1<<20) + `"}`
		bodies := []string{`{`, `[]`, `"x"`, `{"name": 1}`, `{"approve": "yes"}`, `{"remark": 5}`, `{"a":1} {"b":2}`,
			`{"name": "\u0000"}`, `{"jobs": [{"name": "j", "type": "text", "spec": {"content": "\u0000"}}]}`,
			`{"jira_sprints": {}}`, `{"start_time": true}`, `{"hook_events": "all"}`, `{"check_timeout": "soon"}`,
			`{"hook_event": 1}`, `{"release_plan_id": "\u0000", "hook_event": "finish_planning", "instance_code": "x", "result": "success"}`, big}
		routes := []struct{ method, path string }{
			{"POST", plansPath},
			{"PUT", plansPath + "/" + p.ID},
			{"POST", plansPath + "/" + p.ID + "/approve"},
			{"POST", plansPath + "/" + p.ID + "/jobs/" + jid + "/execute"},
			{"PUT", hookPath},
		}
		for _, r := range routes {
			for _, b := range bodies {
				status, raw := e.Do(t, r.method, r.path, b)
				if status < 400 || status >= 500 {
					if status < 300 && (r.path == plansPath+"/"+p.ID || r.path == hookPath) {
						continue // a body this route reads no field of, or only valid fields of
					}
					t.Errorf("%s %s with %.60q: %d %.200s", r.method, r.path, b, status, raw)
				}
			}
		}
		for _, b := range []string{`{`, `[]`, `"x"`, big} {
			status, raw := e.Do(t, "POST", plansPath+"/"+p.ID+"/finish-planning", b)
			if status < 400 || status >= 500 {
				t.Errorf("finish-planning with %.60q: %d %.200s", b, status, raw)
			}
		}
		for _, b := range bodies {
			status, raw := postRaw(e.URL+callbackPath, "s3cret", b)
			if status < 400 || status >= 500 {
				t.Errorf("callback with %.60q: %d %.200s", b, status, raw)
			}
		}
		for _, path := range []string{plansPath + "/%00", plansPath + "/%00/logs", plansPath + "?manager_id=%00", plansPath + "?cursor=%00",
			plansPath + "/" + p.ID + "/jobs/%00/skip"} {
			status, raw := e.Do(t, "GET", path, nil)
			if strings.HasSuffix(path, "/skip") {
				status, raw = e.Do(t, "POST", path, nil)
			}
			if status < 400 || status >= 500 {
				t.Errorf("GET %s: %d %s", path, status, raw)
			}
		}
		if got := e.plan(t, p.ID); got.Status != plan.StatusPlanning || got.Name != "bad" {
			t.Fatalf("bad input changed the plan: %+v", got)
		}
	})
}

// TestPlanScheduledJobsShareAnEnvironment: an environment runs one task
// at a time, so the scheduled execution starts a plan's jobs of one
// environment one after the other, in the plan's order.
func TestPlanScheduledJobsShareAnEnvironment(t *testing.T) {
	t.Parallel()
	planEach(t, func(t *testing.T, e *planEnv) {
		dir := t.TempDir()
		e.Setup(t, "prod", enginetest.Local(fmt.Sprintf(`echo "$HERALD_VERSION" >> %q`, filepath.Join(dir, "order"))), enginetest.Hosts(1, "127.0.0.1"))
		e.JSON(t, "POST", "/api/v1/release/projects/app/environments", map[string]any{"name": "stage",
			"executor": enginetest.Local(fmt.Sprintf(`echo "stage-$HERALD_VERSION" >> %q`, filepath.Join(dir, "stage")))}, 201, nil)
		e.JSON(t, "POST", "/api/v1/release/projects/app/environments/stage/hosts", map[string]any{"name": "s1", "address": "127.0.0.1"}, 201, nil)
		wf := func(env, version string) map[string]any {
			return map[string]any{"workflow": map[string]any{"project_id": "app", "environment": env, "version": version}}
		}
		now := time.Now()
		var p plan.Plan
		e.asJSON(t, e.manager, "POST", plansPath, map[string]any{"name": "two in prod", "manager_id": e.manager.ID,
			"schedule_execute_time": rfc(now.Add(-time.Second)),
			"jobs": []map[string]any{
				{"name": "first", "type": "workflow", "spec": wf("prod", "v1")},
				{"name": "stage", "type": "workflow", "spec": wf("stage", "v1")},
				{"name": "second", "type": "workflow", "spec": wf("prod", "v2")},
			}}, 201, &p)
		e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/finish-planning", nil, 200, &p)
		// The schedule time has passed: the jobs start at once.
		e.asJSON(t, e.manager, "POST", plansPath+"/"+p.ID+"/execute", nil, 200, &p)
		got := e.waitStatus(t, p.ID, plan.StatusSuccess)
		for _, j := range got.Jobs {
			if j.Status != plan.JobDone || j.ExecutedBy == nil || j.ExecutedBy.Name != "system" {
				t.Fatalf("job %s: %+v", j.Name, j)
			}
		}
		if order := readLines(t, filepath.Join(dir, "order")); !slices.Equal(order, []string{"v1", "v2"}) {
			t.Fatalf("prod ran %v, want v1 then v2", order)
		}
		if stage := readLines(t, filepath.Join(dir, "stage")); !slices.Equal(stage, []string{"stage-v1"}) {
			t.Fatalf("stage ran %v", stage)
		}
	})
}
