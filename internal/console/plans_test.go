package console_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-release/herald/internal/app/apptest"
	"github.com/herald-release/herald/internal/db/dbtest"
	"github.com/herald-release/herald/internal/plan"
)

// getPlan reads a plan through the API, as the admin.
func getPlan(t *testing.T, env *apptest.Env, id string) plan.Plan {
	t.Helper()
	var p plan.Plan
	env.JSON(t, http.MethodGet, "/api/v1/release/plans/"+id, nil, http.StatusOK, &p)
	return p
}

// waitPlan polls the plan until ok says it is there.
func waitPlan(t *testing.T, env *apptest.Env, id, what string, ok func(plan.Plan) bool) plan.Plan {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		p := getPlan(t, env, id)
		if ok(p) {
			return p
		}
		if time.Now().After(deadline) {
			raw, _ := json.Marshal(p)
			t.Fatalf("plan %s: still not %s after 60s: %s", id, what, raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func jobNamed(p plan.Plan, name string) plan.Job {
	for _, j := range p.Jobs {
		if j.Name == name {
			return j
		}
	}
	return plan.Job{}
}

// flashOf is the message a redirect carries to the next page.
func flashOf(p page) string {
	for _, c := range (&http.Response{Header: p.Header}).Cookies() {
		if c.Name == "herald_flash" {
			_, msg, _ := strings.Cut(c.Value, ":")
			s, _ := url.QueryUnescape(msg)
			return s
		}
	}
	return ""
}

// planButtons are the plan buttons a page offers.
func planButtons(body, id string) []string {
	re := regexp.MustCompile(`action="/plans/` + regexp.QuoteMeta(id) + `/(finish-planning|submit-approval|execute|replan|cancel|delete)"`)
	var out []string
	for _, m := range re.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, x := range a {
		seen[x]++
	}
	for _, x := range b {
		seen[x]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

// mustNotContain fails when the page holds any of bad.
func mustNotContain(t *testing.T, p page, bad ...string) {
	t.Helper()
	for _, b := range bad {
		if strings.Contains(p.Body, b) {
			t.Errorf("page (status %d) shows %q", p.Status, b)
		}
	}
}

// hookServer is the external system of the plan hook: it records the
// hooks it gets and answers 200.
type hookServer struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []string
	tokens []string
}

func newHookServer(t *testing.T) *hookServer {
	h := &hookServer{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.bodies = append(h.bodies, string(b))
		h.tokens = append(h.tokens, r.Header.Get(plan.HeaderToken))
		h.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(h.Close)
	return h
}

// callback answers a plan's external check, as the external system does.
func callback(t *testing.T, env *apptest.Env, secret, id, hookEvent, result string) {
	t.Helper()
	p := getPlan(t, env, id)
	body, _ := json.Marshal(map[string]any{"hook_event": hookEvent, "release_plan_id": id, "instance_code": p.InstanceCode,
		"result": result, "failed_reason": "the gate says " + result})
	req, _ := http.NewRequest(http.MethodPost, env.URL+"/api/callback/release_plan", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(plan.HeaderToken, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("callback %s %s: %d %s", hookEvent, result, resp.StatusCode, raw)
	}
}

// The release plan pages against a whole Herald, on each database: a plan
// created and edited by the form (text and workflow jobs, sprints,
// approval), moved on by its owner with only the buttons its status
// allows, approved by its approver, its jobs completed, run, retried and
// skipped by the buttons, the operation record; a denial and a replan;
// the hook settings and a plan waiting for the external check.
func TestPlanPages(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(string(dialect), func(t *testing.T) {
			t.Parallel()
			testPlanPages(t, apptest.New(t, dialect))
		})
	}
}

func testPlanPages(t *testing.T, env *apptest.Env) {
	env.JSON(t, http.MethodPost, "/api/v1/release/projects", map[string]any{"id": "shop", "name": "Shop"}, http.StatusCreated, nil)
	for env2, script := range map[string]string{"stage": `echo "deploying $HERALD_VERSION to $HERALD_HOST"`, "broken": `echo "no database" >&2; exit 3`} {
		env.JSON(t, http.MethodPost, "/api/v1/release/projects/shop/environments", map[string]any{
			"name": env2, "executor": map[string]any{"type": "local", "script": script},
		}, http.StatusCreated, nil)
		env.JSON(t, http.MethodPost, "/api/v1/release/projects/shop/environments/"+env2+"/hosts", map[string]any{
			"hosts": []map[string]any{{"name": env2 + "-1", "address": "127.0.0.1"}},
		}, http.StatusCreated, nil)
	}
	env.JSON(t, http.MethodPost, "/api/v1/release/projects/shop/versions", map[string]any{"name": "v1"}, http.StatusCreated, nil)

	admin := loggedIn(t, env, "admin", adminPassword)
	miaID, alanID, zoeID := createMember(t, env, "mia"), createMember(t, env, "alan"), createMember(t, env, "zoe")
	mia := loggedIn(t, env, "mia", "member-password")
	alan := loggedIn(t, env, "alan", "member-password")
	zoe := loggedIn(t, env, "zoe", "member-password")
	miaTok, alanTok, zoeTok, adminTok := mia.csrf(), alan.csrf(), zoe.csrf(), admin.csrf()

	// ---- create by the form, with mistakes shown on their inputs ----
	now := time.Now().UTC()
	form := url.Values{
		"csrf": {miaTok}, "name": {"Sprint 42 release"}, "manager_id": {miaID},
		"start_time": {now.Add(-time.Hour).Format("2006-01-02T15:04")}, "end_time": {now.Add(3 * time.Hour).Format("2006-01-02T15:04")},
		"description":      {"Ship the\r\nbasket"},
		"jira_sprints":     {"S42 | Sprint 42 | https://jira.example.com/sprint/42\nS43\nS44 | Bad | ftp://jira.example.com"},
		"approval.enabled": {"true"}, "approval.approvers": {alanID}, "approval.mode": {"any"},
		"job_count":    {"3"},
		"jobs[0].type": {"text"}, "jobs[0].name": {"Announce"}, "jobs[0].spec.content": {"Tell support"},
		"jobs[1].type": {"workflow"}, "jobs[1].name": {"Deploy"}, "jobs[1].spec.workflow.project_id": {"shop"},
		"jobs[1].spec.workflow.version": {"v1"}, "jobs[1].spec.workflow": {`{"max_failures": 0}`},
		"jobs[2].type": {"workflow"}, "jobs[2].name": {"Migrate"}, "jobs[2].spec.workflow.project_id": {"shop"},
		"jobs[2].spec.workflow.environment": {"broken"}, "jobs[2].spec.workflow.version": {"v1"}, "jobs[2].spec.workflow": {"{not json"},
	}
	p := mia.post("/plans/new", form)
	if p.Status != http.StatusUnprocessableEntity {
		t.Fatalf("a job of bad JSON: %d", p.Status)
	}
	mustContain(t, p, `id="f-jobs[2].spec.workflow-err"`, "must be a JSON object")
	form.Set("jobs[2].spec.workflow", `{"max_failures": 0}`)
	p = mia.post("/plans/new", form)
	if p.Status != http.StatusUnprocessableEntity {
		t.Fatalf("a workflow job without environment: %d", p.Status)
	}
	// The API's refusals, on the inputs they are about, the form kept.
	mustContain(t, p, `id="f-jobs[1].spec.workflow.environment-err"`, `id="f-jira_sprints-err"`, "link must be an http(s) URL",
		`value="Announce"`, `role="alert"`)
	form.Set("jobs[1].spec.workflow.environment", "stage")
	form.Set("jira_sprints", "S42 | Sprint 42 | https://jira.example.com/sprint/42\nS43")
	p = mia.post("/plans/new", form)
	if p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Header.Get("Location"), "/plans/pln_") {
		t.Fatalf("create the plan: %d %s %s", p.Status, p.Header.Get("Location"), p.Body)
	}
	id := strings.TrimPrefix(p.Header.Get("Location"), "/plans/")
	created := getPlan(t, env, id)
	if created.Description != "Ship the\nbasket" || len(created.Jobs) != 3 || created.StartTime == nil ||
		len(created.JiraSprints) != 2 || created.JiraSprints[0] != (plan.Sprint{ID: "S42", Name: "Sprint 42", Link: "https://jira.example.com/sprint/42"}) ||
		!created.Approval.Enabled || created.Approval.Approvers[0] != alanID {
		raw, _ := json.Marshal(created)
		t.Fatalf("created plan: %s", raw)
	}
	var wf plan.WorkflowSpec
	decode(t, jobNamed(created, "Deploy").Spec, &wf)
	if !strings.Contains(string(wf.Workflow), `"environment":"stage"`) || !strings.Contains(string(wf.Workflow), `"max_failures":0`) {
		t.Fatalf("workflow body %s", wf.Workflow)
	}

	// ---- the page: sprints as links, the buttons of planning ----
	purl := "/plans/" + id
	p = admin.get(purl)
	checkPage(t, purl, p, http.StatusOK)
	mustContain(t, p, `<a class="tag" href="https://jira.example.com/sprint/42" rel="noopener noreferrer">Sprint 42</a>`,
		`<span class="tag">S43</span>`, `href="/plans/`+id+`/edit"`, "Tell support", "shop / stage", "Created")
	if got := planButtons(p.Body, id); !sameSet(got, []string{"finish-planning", "cancel", "delete"}) {
		t.Errorf("planning, the admin sees %v", got)
	}
	// Planning is collaborative, moving the plan is not.
	p = zoe.get(purl)
	if got := planButtons(p.Body, id); len(got) != 0 {
		t.Errorf("planning, a member who is not the owner sees %v", got)
	}
	mustContain(t, p, `href="/plans/`+id+`/edit"`, "Only the release owner (mia)")

	// ---- edit while planning, as another member ----
	edit := zoe.get(purl + "/edit")
	checkPage(t, purl+"/edit", edit, http.StatusOK)
	v := formValues(edit.Body, `action="/plans/`+id+`/edit"`)
	if v.Get("jobs[0].spec.content") != "Tell support" || v.Get("jobs[1].spec.workflow.environment") != "stage" ||
		v.Get("jobs[1].spec.workflow") == "" || v.Get("description") != "Ship the\nbasket" ||
		!strings.Contains(v.Get("jira_sprints"), "S42 | Sprint 42 | https://jira.example.com/sprint/42") || v.Get("job_count") != "3" {
		t.Fatalf("edit form values: %v", v)
	}
	// The unchanged form saves the jobs as they are.
	v.Set("csrf", zoeTok)
	if p := zoe.post(purl+"/edit", v); p.Status != http.StatusSeeOther {
		t.Fatalf("save the unchanged form: %d %s", p.Status, p.Body)
	}
	same := getPlan(t, env, id)
	for i := range created.Jobs {
		if same.Jobs[i].ID != created.Jobs[i].ID || string(same.Jobs[i].Spec) != string(created.Jobs[i].Spec) {
			t.Errorf("job %d changed by an unchanged form:\n%s\n%s", i, created.Jobs[i].Spec, same.Jobs[i].Spec)
		}
	}
	if same.InstanceCode == created.InstanceCode {
		t.Error("an edit keeps the instance code")
	}
	// Add a text job, move it up, rename things, then save.
	v.Set("op", "add:text")
	p = zoe.post(purl+"/edit", v)
	if p.Status != http.StatusOK {
		t.Fatalf("add a job: %d", p.Status)
	}
	mustContain(t, p, `name="jobs[3].name"`, "autofocus", `name="job_count" value="4"`)
	v = formValues(p.Body, `action="/plans/`+id+`/edit"`)
	v.Set("csrf", zoeTok)
	v.Set("jobs[3].name", "Notify QA")
	v.Set("jobs[3].spec.content", "QA on call")
	v.Set("op", "up:3")
	p = zoe.post(purl+"/edit", v)
	v = formValues(p.Body, `action="/plans/`+id+`/edit"`)
	if v.Get("jobs[2].name") != "Notify QA" || v.Get("jobs[3].name") != "Migrate" {
		t.Fatalf("move up: %v", v)
	}
	// A job removed and the removal undone by not saving: remove shows
	// the form without it.
	v.Set("csrf", zoeTok)
	v.Set("op", "remove:0")
	if p := zoe.post(purl+"/edit", v); !strings.Contains(p.Body, `name="job_count" value="3"`) || strings.Contains(p.Body, `value="Announce"`) {
		t.Errorf("remove a job: the form still has it")
	}
	v.Del("op")
	v.Set("name", "Sprint 42 release (v2)")
	v.Set("jobs[0].spec.content", "Tell support and sales")
	v.Set("schedule_execute_time", "")
	if p := zoe.post(purl+"/edit", v); p.Status != http.StatusSeeOther || flashOf(p) != "Saved." {
		t.Fatalf("save the edit: %d %q %s", p.Status, flashOf(p), p.Body)
	}
	edited := getPlan(t, env, id)
	if edited.Name != "Sprint 42 release (v2)" || len(edited.Jobs) != 4 || edited.Jobs[2].Name != "Notify QA" ||
		edited.Jobs[0].ID != created.Jobs[0].ID || edited.Jobs[3].ID != created.Jobs[2].ID ||
		string(edited.Jobs[1].Spec) != string(created.Jobs[1].Spec) || !strings.Contains(string(edited.Jobs[0].Spec), "and sales") {
		raw, _ := json.Marshal(edited)
		t.Fatalf("after the edit: %s", raw)
	}

	// ---- moving on: only the owner, only what the status allows ----
	p = zoe.post(purl+"/finish-planning", url.Values{"csrf": {zoeTok}})
	if p.Status != http.StatusSeeOther || !strings.Contains(flashOf(p), "manager") {
		t.Errorf("a member finishing someone's planning: %d %q", p.Status, flashOf(p))
	}
	if p := mia.post(purl+"/finish-planning", url.Values{}); p.Status != http.StatusForbidden {
		t.Errorf("a button without its CSRF token: %d", p.Status)
	}
	if p := mia.post(purl+"/finish-planning", url.Values{"csrf": {miaTok}}); p.Status != http.StatusSeeOther || flashOf(p) != "Planning finished." {
		t.Fatalf("finish planning: %d %q", p.Status, flashOf(p))
	}
	p = mia.get(purl)
	// Approval is on: submit for approval, never execute.
	if got := planButtons(p.Body, id); !sameSet(got, []string{"submit-approval", "replan", "cancel"}) {
		t.Errorf("finish_planning with approval, the owner sees %v", got)
	}
	mustNotContain(t, p, `href="/plans/`+id+`/edit"`)
	if p := mia.post(purl+"/execute", url.Values{"csrf": {miaTok}}); !strings.Contains(flashOf(p), "needs approval") {
		t.Errorf("the API refuses what the page leaves out: %q", flashOf(p))
	}
	if p := mia.get(purl + "/edit"); p.Status != http.StatusSeeOther || !strings.Contains(flashOf(p), "only be edited while planning") {
		t.Errorf("editing past planning: %d %q", p.Status, flashOf(p))
	}
	if p := mia.post(purl+"/submit-approval", url.Values{"csrf": {miaTok}}); flashOf(p) != "Submitted for approval." {
		t.Fatalf("submit for approval: %q", flashOf(p))
	}

	// ---- approval: the approver answers, the others see who is awaited ----
	p = mia.get(purl)
	mustContain(t, p, "Waiting for:", "alan")
	mustNotContain(t, p, `id="approval-form"`)
	if got := planButtons(p.Body, id); !sameSet(got, []string{"replan", "cancel"}) {
		t.Errorf("wait_for_approval, the owner sees %v", got)
	}
	p = alan.get(purl)
	checkPage(t, purl, p, http.StatusOK)
	mustContain(t, p, `id="approval-form"`, `<label for="approve-comment">`, `formaction="/plans/`+id+`/deny"`)
	if p := alan.post(purl+"/approve", url.Values{"csrf": {alanTok}, "comment": {"ship it"}}); flashOf(p) != "Approved." {
		t.Fatalf("approve: %q", flashOf(p))
	}
	if st := getPlan(t, env, id).Status; st != plan.StatusExecuting {
		t.Fatalf("approved plan is %s", st)
	}
	p = alan.get(purl)
	mustContain(t, p, "ship it", "approved")
	mustNotContain(t, p, `id="approval-form"`)

	// ---- executing: the owner runs the jobs, others see no job buttons ----
	cur := getPlan(t, env, id)
	announce, deploy, notify, migrate := jobNamed(cur, "Announce"), jobNamed(cur, "Deploy"), jobNamed(cur, "Notify QA"), jobNamed(cur, "Migrate")
	jobAction := func(j plan.Job, action string) string {
		return fmt.Sprintf(`action="/plans/%s/jobs/%s/%s"`, id, j.ID, action)
	}
	p = admin.get(purl)
	mustNotContain(t, p, jobAction(announce, "execute"), jobAction(deploy, "skip"))
	mustContain(t, p, "The release owner or the job")
	p = mia.get(purl)
	checkPage(t, purl, p, http.StatusOK)
	mustContain(t, p, jobAction(announce, "execute"), `name="kind" value="text"`, `for="remark-`+announce.ID+`"`, jobAction(announce, "skip"),
		jobAction(deploy, "execute"), jobAction(deploy, "skip"), jobAction(migrate, "execute"))
	mustNotContain(t, p, jobAction(deploy, "retry"))
	if got := planButtons(p.Body, id); !sameSet(got, []string{"replan", "cancel"}) {
		t.Errorf("executing, the owner sees %v", got)
	}

	jobPost := func(j plan.Job, action string, extra ...string) page {
		t.Helper()
		form := url.Values{"csrf": {miaTok}}
		for i := 0; i+1 < len(extra); i += 2 {
			form.Set(extra[i], extra[i+1])
		}
		return mia.post(purl+"/jobs/"+j.ID+"/"+action, form)
	}
	if p := jobPost(announce, "execute", "kind", "text", "remark", "told them\r\nby mail"); flashOf(p) != "Job completed." {
		t.Fatalf("complete a text job: %q", flashOf(p))
	}
	if p := jobPost(deploy, "execute"); flashOf(p) != "Job started." {
		t.Fatalf("run a workflow job: %q", flashOf(p))
	}
	waitPlan(t, env, id, "deployed", func(p plan.Plan) bool { return jobNamed(p, "Deploy").Status == plan.JobDone })
	if p := jobPost(migrate, "execute"); flashOf(p) != "Job started." {
		t.Fatalf("run the failing job: %q", flashOf(p))
	}
	waitPlan(t, env, id, "migrate failed", func(p plan.Plan) bool { return jobNamed(p, "Migrate").Status == plan.JobFailed })
	p = mia.get(purl)
	mustContain(t, p, jobAction(migrate, "retry"), jobAction(migrate, "skip"), "told them\nby mail")
	mustNotContain(t, p, jobAction(migrate, "execute"), jobAction(deploy, "skip"))
	if p := jobPost(migrate, "retry"); flashOf(p) != "Job retried." {
		t.Fatalf("retry: %q", flashOf(p))
	}
	waitPlan(t, env, id, "migrate failed again", func(p plan.Plan) bool {
		j := jobNamed(p, "Migrate")
		return j.Status == plan.JobFailed
	})
	for _, j := range []plan.Job{notify, migrate} {
		if p := jobPost(j, "skip"); flashOf(p) != "Job skipped." {
			t.Fatalf("skip %s: %q", j.Name, flashOf(p))
		}
	}
	done := getPlan(t, env, id)
	if done.Status != plan.StatusSuccess {
		t.Fatalf("every job done or skipped: plan is %s", done.Status)
	}

	// ---- the end: the operation record tells the story ----
	p = mia.get(purl)
	checkPage(t, purl, p, http.StatusOK)
	if got := planButtons(p.Body, id); !sameSet(got, []string{"delete"}) {
		t.Errorf("success, the owner sees %v", got)
	}
	mustContain(t, p, `id="logs"`, "Created", "Edited", "Finished planning", "Submitted for approval", "Approved", "ship it",
		"Job completed", "Job run", "Job retried", "Job skipped", "Succeeded", "planning → planned", "zoe", "alan")
	if p := zoe.get(purl); strings.Contains(p.Body, `action="/plans/`+id+`/delete"`) {
		t.Error("a member who is not the owner nor the creator may delete the plan")
	}

	// ---- a denial, then planning again ----
	var second plan.Plan
	env.JSON(t, http.MethodPost, "/api/v1/release/plans", map[string]any{
		"name": "Hotfix", "manager_id": miaID, "approval": map[string]any{"enabled": true, "approvers": []string{alanID, zoeID}, "mode": "all"},
		"jobs": []map[string]any{{"name": "Note", "type": "text", "spec": map[string]any{"content": "x"}}},
	}, http.StatusCreated, &second)
	env.JSON(t, http.MethodPost, "/api/v1/release/plans/"+second.ID+"/finish-planning", nil, http.StatusOK, nil)
	env.JSON(t, http.MethodPost, "/api/v1/release/plans/"+second.ID+"/submit-approval", nil, http.StatusOK, nil)
	purl2 := "/plans/" + second.ID
	if p := alan.post(purl2+"/approve", url.Values{"csrf": {alanTok}, "comment": {"fine"}}); flashOf(p) != "Approved." {
		t.Fatalf("first approval: %q", flashOf(p))
	}
	p = zoe.get(purl2)
	mustContain(t, p, `id="approval-form"`, "fine", "Every approver")
	if p := zoe.post(purl2+"/deny", url.Values{"csrf": {zoeTok}, "comment": {"not on a Friday"}}); flashOf(p) != "Denied." {
		t.Fatalf("deny: %q", flashOf(p))
	}
	p = mia.get(purl2)
	mustContain(t, p, "not on a Friday", "denied")
	if got := planButtons(p.Body, second.ID); !sameSet(got, []string{"replan", "cancel", "delete"}) {
		t.Errorf("denied, the owner sees %v", got)
	}
	if p := mia.post(purl2+"/replan", url.Values{"csrf": {miaTok}}); flashOf(p) != "Back to planning." {
		t.Fatalf("replan: %q", flashOf(p))
	}
	mustContain(t, mia.get(purl2), `href="/plans/`+second.ID+`/edit"`)
	if p := mia.post(purl2+"/delete", url.Values{"csrf": {miaTok}}); p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/plans" {
		t.Fatalf("delete: %d %s", p.Status, p.Header.Get("Location"))
	}
	if status, _ := env.Do(t, http.MethodGet, "/api/v1/release/plans/"+second.ID, nil); status != http.StatusNotFound {
		t.Errorf("deleted plan: %d", status)
	}

	// ---- hook settings: admins change them, secrets stay hidden ----
	hooks := newHookServer(t)
	const settings = "/settings/plan-hook"
	p = zoe.get(settings)
	checkPage(t, settings, p, http.StatusOK)
	mustContain(t, p, `id="hook-readonly"`, "disabled", "/api/callback/release_plan")
	mustNotContain(t, p, `type="submit" class="primary"`)
	if p := zoe.post(settings, url.Values{"csrf": {zoeTok}, "enable": {"true"}}); p.Status != http.StatusForbidden {
		t.Errorf("a member saving the hook settings: %d", p.Status)
	}
	p = admin.get(settings)
	checkPage(t, settings, p, http.StatusOK)
	hv := formValues(p.Body, `id="hook-form"`)
	hv.Set("csrf", adminTok)
	hv.Set("check_timeout", "soon")
	if p := admin.post(settings, hv); p.Status != http.StatusUnprocessableEntity || !strings.Contains(p.Body, `id="f-check_timeout-err"`) {
		t.Errorf("a bad timeout: %d", p.Status)
	}
	hv.Set("check_timeout", "30m")
	hv.Set("enable", "true")
	p = admin.post(settings, hv)
	if p.Status != http.StatusUnprocessableEntity {
		t.Fatalf("enabled without an address: %d", p.Status)
	}
	mustContain(t, p, `id="f-hook_address-err"`, `id="f-hook_events-err"`, `aria-invalid="true"`)
	hv.Set("hook_address", hooks.URL+"/gate")
	hv["hook_events"] = []string{"finish_planning"}
	hv.Set("enable_callback", "true")
	p = admin.post(settings, hv)
	mustContain(t, p, `id="f-hook_secret-err"`)
	hv.Set("hook_secret", "gate-secret-0123")
	if p := admin.post(settings, hv); p.Status != http.StatusSeeOther {
		t.Fatalf("save the hook settings: %d %s", p.Status, p.Body)
	}
	p = admin.get(settings)
	mustContain(t, p, `value="******"`, `value="30m0s"`, `value="finish_planning" checked`)
	mustNotContain(t, p, "gate-secret-0123")
	// Saving again with the mask keeps the secret (the callback needs one).
	hv = formValues(p.Body, `id="hook-form"`)
	hv.Set("csrf", adminTok)
	if p := admin.post(settings, hv); p.Status != http.StatusSeeOther {
		t.Fatalf("save with the masked secret: %d %s", p.Status, p.Body)
	}

	// A plan waiting for the external check: only replan and cancel; the
	// hook request shows; a failed check says why.
	var third plan.Plan
	env.JSON(t, http.MethodPost, "/api/v1/release/plans", map[string]any{
		"name": "Gated", "manager_id": miaID, "jobs": []map[string]any{{"name": "Note", "type": "text", "spec": map[string]any{"content": "x"}}},
	}, http.StatusCreated, &third)
	purl3 := "/plans/" + third.ID
	if p := mia.post(purl3+"/finish-planning", url.Values{"csrf": {miaTok}}); p.Status != http.StatusSeeOther {
		t.Fatalf("finish planning: %d", p.Status)
	}
	waitPlan(t, env, third.ID, "hook sent", func(plan.Plan) bool {
		hooks.mu.Lock()
		defer hooks.mu.Unlock()
		return len(hooks.bodies) > 0
	})
	hooks.mu.Lock()
	if hooks.tokens[0] != "gate-secret-0123" || !strings.Contains(hooks.bodies[0], `"event_name":"finish_planning"`) {
		t.Errorf("hook: token %q body %s", hooks.tokens[0], hooks.bodies[0])
	}
	hooks.mu.Unlock()
	p = mia.get(purl3)
	checkPage(t, purl3, p, http.StatusOK)
	mustContain(t, p, `id="external-check"`, "Waiting for the external system", `id="hooks"`, "Planning finished")
	if got := planButtons(p.Body, third.ID); !sameSet(got, []string{"replan", "cancel"}) {
		t.Errorf("waiting for the check, the owner sees %v", got)
	}
	callback(t, env, "gate-secret-0123", third.ID, "finish_planning", "failed")
	p = mia.get(purl3)
	mustContain(t, p, "failed: the gate says failed")
	if got := planButtons(p.Body, third.ID); !sameSet(got, []string{"replan", "cancel", "delete"}) {
		t.Errorf("check failed, the owner sees %v", got)
	}

	// Both languages render every plan page.
	for _, lang := range []string{"zh", "en"} {
		mia.header.Set("Accept-Language", lang)
		for _, path := range []string{"/plans", "/plans/new", purl, purl3, settings} {
			checkPage(t, lang+" "+path, mia.get(path), http.StatusOK)
		}
		checkPage(t, lang+" deleted plan", mia.get(purl2), http.StatusNotFound)
	}
	mia.header.Del("Accept-Language")
}

// The plan and job buttons follow the API: in every status a plan can
// reach, each button the page offers its manager is accepted by the API
// (tried on a fresh plan in that status), and each one it leaves out is
// refused. internal/plan exports no transition table, so this is what
// holds the console's copy of the rules to the real ones.
func TestPlanButtonsFollowTheAPI(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(string(dialect), func(t *testing.T) {
			t.Parallel()
			testPlanButtons(t, apptest.New(t, dialect))
		})
	}
}

func testPlanButtons(t *testing.T, env *apptest.Env) {
	admin := loggedIn(t, env, "admin", adminPassword)
	var me struct {
		ID string `json:"id"`
	}
	env.JSON(t, http.MethodGet, "/api/v1/me", nil, http.StatusOK, &me)
	const api = "/api/v1/release/plans/"

	create := func(approval bool, end time.Time) string {
		t.Helper()
		body := map[string]any{"name": "Buttons", "manager_id": me.ID,
			"jobs": []map[string]any{{"name": "Note", "type": "text", "spec": map[string]any{"content": "x"}}}}
		if approval {
			body["approval"] = map[string]any{"enabled": true, "approvers": []string{me.ID}}
		}
		if !end.IsZero() {
			body["start_time"] = time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
			body["end_time"] = end.UTC().Format(time.RFC3339)
		}
		var p plan.Plan
		env.JSON(t, http.MethodPost, "/api/v1/release/plans", body, http.StatusCreated, &p)
		return p.ID
	}
	post := func(id, action string, body any) {
		t.Helper()
		env.JSON(t, http.MethodPost, api+id+"/"+action, body, http.StatusOK, nil)
	}
	complete := func(id string) {
		t.Helper()
		post(id, "jobs/"+getPlan(t, env, id).Jobs[0].ID+"/execute", map[string]any{})
	}
	// Plans whose window ends soon, finished now: by the time the test
	// gets to them, they have timed out.
	var timeouts []string
	for range 8 {
		id := create(false, time.Now().Add(3*time.Second))
		post(id, "finish-planning", nil)
		timeouts = append(timeouts, id)
	}

	planActs := []string{"finish-planning", "submit-approval", "execute", "replan", "cancel", "delete"}
	jobActs := []string{"execute", "skip", "retry"}
	call := func(id, kind, action string) (int, string) {
		t.Helper()
		var status int
		var raw []byte
		switch {
		case kind == "job":
			status, raw = env.Do(t, http.MethodPost, api+id+"/jobs/"+getPlan(t, env, id).Jobs[0].ID+"/"+action, map[string]any{})
		case action == "delete":
			status, raw = env.Do(t, http.MethodDelete, api+id, nil)
		default:
			status, raw = env.Do(t, http.MethodPost, api+id+"/"+action, nil)
		}
		return status, string(raw)
	}
	check := func(name, want string, make func() string) {
		t.Helper()
		id := make()
		if st := getPlan(t, env, id).Status; st != want {
			t.Fatalf("%s: the plan is %s, want %s", name, st, want)
		}
		p := admin.get("/plans/" + id)
		checkPage(t, name, p, http.StatusOK)
		shown := map[string][]string{"plan": planButtons(p.Body, id)}
		for _, m := range regexp.MustCompile(`action="/plans/`+regexp.QuoteMeta(id)+`/jobs/[^/"]+/(execute|skip|retry)"`).FindAllStringSubmatch(p.Body, -1) {
			shown["job"] = append(shown["job"], m[1])
		}
		for kind, all := range map[string][]string{"plan": planActs, "job": jobActs} {
			for _, a := range all {
				if slicesContains(shown[kind], a) {
					if status, raw := call(make(), kind, a); status >= 300 {
						t.Errorf("%s: the page offers the %s button %s, the API answers %d %s", name, kind, a, status, raw)
					}
					continue
				}
				if status, raw := call(id, kind, a); status < 400 || status >= 500 {
					t.Errorf("%s: the page leaves out the %s button %s, the API answers %d %s", name, kind, a, status, raw)
					id = make()
				}
			}
		}
		t.Logf("%s: plan buttons %v, job buttons %v", name, shown["plan"], shown["job"])
	}

	planning := func() string { return create(false, time.Time{}) }
	finished := func() string { id := planning(); post(id, "finish-planning", nil); return id }
	finishedApproval := func() string { id := create(true, time.Time{}); post(id, "finish-planning", nil); return id }
	waiting := func() string { id := finishedApproval(); post(id, "submit-approval", nil); return id }
	executing := func() string { id := finished(); post(id, "execute", nil); return id }
	check("planning", plan.StatusPlanning, planning)
	check("finish_planning without approval", plan.StatusFinishPlanning, finished)
	check("finish_planning with approval", plan.StatusFinishPlanning, finishedApproval)
	check("wait_for_approval", plan.StatusWaitApproval, waiting)
	check("executing", plan.StatusExecuting, executing)
	check("executing after approval", plan.StatusExecuting, func() string {
		id := waiting()
		post(id, "approve", map[string]any{"approve": true})
		return id
	})
	check("denied", plan.StatusDenied, func() string {
		id := waiting()
		post(id, "approve", map[string]any{"approve": false, "comment": "no"})
		return id
	})
	check("success", plan.StatusSuccess, func() string { id := executing(); complete(id); return id })
	check("cancel", plan.StatusCancel, func() string { id := planning(); post(id, "cancel", nil); return id })
	check("timeout", plan.StatusTimeout, func() string {
		if len(timeouts) == 0 {
			t.Fatal("not enough plans that time out")
		}
		id := timeouts[0]
		timeouts = timeouts[1:]
		waitPlan(t, env, id, "timed out", func(p plan.Plan) bool { return p.Status == plan.StatusTimeout })
		return id
	})

	// The external checks: the hook waits for the external system at
	// every moment.
	hooks := newHookServer(t)
	const secret = "buttons-secret"
	env.JSON(t, http.MethodPut, "/api/v1/release/settings/plan-hook", map[string]any{"enable": true, "enable_callback": true,
		"hook_address": hooks.URL, "hook_secret": secret, "hook_events": plan.HookEvents(), "check_timeout": "1h"}, http.StatusOK, nil)
	// settled waits until the plan's hook requests have been sent and
	// recorded. (Deleting a plan while a hook attempt is being recorded
	// can deadlock on PostgreSQL: internal/plan's Delete locks the plan,
	// then the hooks; recordHook the hook, then the plan.)
	settled := func(id string) string {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			var hs struct {
				Items []plan.HookDelivery `json:"items"`
			}
			env.JSON(t, http.MethodGet, api+id+"/hooks", nil, http.StatusOK, &hs)
			pending := len(hs.Items) == 0
			for _, h := range hs.Items {
				pending = pending || h.Status == "pending"
			}
			if !pending {
				return id
			}
			if time.Now().After(deadline) {
				t.Fatalf("plan %s: hooks still pending: %+v", id, hs.Items)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFP := func() string { return settled(finished()) }
	waitExec := func() string {
		id := waitFP()
		callback(t, env, secret, id, plan.HookFinishPlanning, "success")
		post(id, "execute", nil)
		return settled(id)
	}
	waitAll := func() string {
		id := waitExec()
		callback(t, env, secret, id, plan.HookStartExecute, "success")
		complete(id)
		return settled(id)
	}
	failed := func(make func() string, hookEvent string) func() string {
		return func() string { id := make(); callback(t, env, secret, id, hookEvent, "failed"); return id }
	}
	check("wait_for_finish_planning_external_check", plan.StatusWaitFinishPlanningCheck, waitFP)
	check("wait_for_finish_planning_external_check_failed", plan.StatusWaitFinishPlanningCheckFailed, failed(waitFP, plan.HookFinishPlanning))
	check("wait_for_execute_external_check", plan.StatusWaitExecuteCheck, waitExec)
	check("wait_for_execute_external_check_failed", plan.StatusWaitExecuteCheckFailed, failed(waitExec, plan.HookStartExecute))
	check("wait_for_all_done_external_check", plan.StatusWaitAllDoneCheck, waitAll)
	check("wait_for_all_done_external_check_failed", plan.StatusWaitAllDoneCheckFailed, failed(waitAll, plan.HookAllJobDone))
}

func slicesContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
