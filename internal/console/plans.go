package console

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/herald-release/herald/internal/identity"
	"github.com/herald-release/herald/internal/plan"
)

// Release plans (CONTRACT §7). The pages decode the API's answers into
// internal/plan's types and send every change through the API, which has
// the last word on every rule (who may act, in which status, inside which
// window); the pages only leave out the buttons the API would refuse.

const (
	plansAPI    = "/api/v1/release/plans"
	planHookAPI = "/api/v1/release/settings/plan-hook"
)

// planAPI is the API path of a plan, or of one of its sub-resources.
func planAPI(id string, rest ...string) string {
	return plansAPI + "/" + escapePath(append([]string{id}, rest...)...)
}

func planPage(id string) string { return "/plans/" + url.PathEscape(id) }

type plansData struct {
	Missing bool
	Plans   []plan.Plan
	Next    string
}

// usersByID lists the users, for choosers, and maps their ids to names.
func (q *request) usersByID() ([]identity.User, map[string]string) {
	var l list[identity.User]
	names := map[string]string{}
	if q.get(withQuery(usersAPI, "limit", "500"), &l) == nil {
		for _, u := range l.Items {
			names[u.ID] = u.Name
		}
	}
	return l.Items, names
}

func (c *Console) plans(q *request) error {
	var d plansData
	var l list[plan.Plan]
	switch err := q.get(withQuery(plansAPI, "cursor", q.r.URL.Query().Get("cursor")), &l); {
	case noRoute(err):
		d.Missing = true
	case err != nil:
		return err
	}
	d.Plans, d.Next = l.Items, l.next("/plans", nil)
	q.render(http.StatusOK, "plans", q.lang.T("plans.title"), "plans", d, nil)
	return nil
}

// ---- what the plan's status allows ----

// Plan buttons. internal/plan exports no transition table: each Service
// method (FinishPlanning, SubmitApproval, Execute, Replan, Cancel, Delete)
// checks the status it needs. planStatusActions follows those checks, and
// TestPlanButtonsFollowTheAPI holds the two together by trying, in every
// status a test can reach, each button shown and each one left out.
const (
	actFinishPlanning = "finish-planning"
	actSubmitApproval = "submit-approval"
	actExecute        = "execute"
	actReplan         = "replan"
	actCancel         = "cancel"
	actDelete         = "delete"
)

// finalStatus: nothing moves the plan any more.
func finalStatus(s string) bool { return s == plan.StatusSuccess || s == plan.StatusCancel }

// planStatusActions are the plan buttons the API accepts in the plan's
// status, whoever asks.
func planStatusActions(p *plan.Plan) []string {
	var out []string
	switch {
	case p.Status == plan.StatusPlanning:
		out = append(out, actFinishPlanning)
	case p.Status == plan.StatusFinishPlanning && p.Approval.Enabled:
		// With approval, approving starts the execution; execute is
		// refused.
		out = append(out, actSubmitApproval)
	case p.Status == plan.StatusFinishPlanning:
		out = append(out, actExecute)
	}
	if p.Status != plan.StatusPlanning && !finalStatus(p.Status) {
		out = append(out, actReplan)
	}
	if !finalStatus(p.Status) {
		out = append(out, actCancel)
	}
	if planDeletable(p) {
		out = append(out, actDelete)
	}
	return out
}

// planDeletable: a plan not under way, with no job still running.
func planDeletable(p *plan.Plan) bool {
	ok := p.Status == plan.StatusPlanning || p.Status == plan.StatusDenied || p.Status == plan.StatusTimeout ||
		finalStatus(p.Status) || strings.HasSuffix(p.Status, "_external_check_failed")
	for _, j := range p.Jobs {
		if j.Status == plan.JobRunning {
			return false
		}
	}
	return ok
}

// mayAct tells whether u may press a plan button, as the API decides:
// the manager or an admin moves the plan, only the manager executes it,
// and the manager, the creator or an admin deletes it.
func mayAct(p *plan.Plan, u *identity.User, action string) bool {
	if u == nil {
		return false
	}
	manager := u.ID == p.ManagerID
	switch action {
	case actExecute:
		return manager
	case actDelete:
		return manager || u.ID == p.CreatedBy.ID || u.IsAdmin()
	}
	return manager || u.IsAdmin()
}

// planButton is one plan button.
type planButton struct {
	Action string
	// Confirm is the question asked first, for the buttons that undo work.
	Confirm string
	Class   string
}

// Job buttons.
const (
	jobExecute  = "execute"
	jobComplete = "complete" // execute, for a text job: with a remark
	jobSkip     = "skip"
	jobRetry    = "retry"
)

// jobStatusActions are the job buttons the API accepts (internal/plan's
// ExecuteJob, SkipJob, RetryJob): only while the plan executes; a todo
// job runs (workflow) or is completed (text), a failed workflow job is
// retried, and either is skipped.
func jobStatusActions(p *plan.Plan, j plan.Job) []string {
	if p.Status != plan.StatusExecuting {
		return nil
	}
	switch j.Status {
	case plan.JobTodo:
		if j.Type == plan.JobText {
			return []string{jobComplete, jobSkip}
		}
		return []string{jobExecute, jobSkip}
	case plan.JobFailed:
		if j.Type == plan.JobWorkflow {
			return []string{jobRetry, jobSkip}
		}
		return []string{jobSkip}
	}
	return nil
}

// mayRunJob: the plan's manager or the job's own manager (admins too
// need to be one of them).
func mayRunJob(p *plan.Plan, j plan.Job, u *identity.User) bool {
	return u != nil && u.ID != "" && (u.ID == p.ManagerID || u.ID == j.ManagerID)
}

// ---- the plan's page ----

type planData struct {
	Plan  *plan.Plan
	Names map[string]string
	// Buttons are the plan buttons for the viewer; Held tells that the
	// status allows more that only the manager (or an admin) may press.
	Buttons []planButton
	Held    bool
	CanEdit bool
	// Approval: the viewer may answer now; the viewer's answer of this
	// round; approvers still to answer.
	CanAnswer bool
	Answer    *plan.Decision
	Awaiting  []string
	Jobs      []jobView
	Logs      []logView
	LogsNext  string
	Hooks     []plan.HookDelivery
	// Window tells when the window is not open now (execution is refused).
	Window string
}

// jobView is a job with what its row shows.
type jobView struct {
	plan.Job
	Text     plan.TextSpec
	Workflow plan.WorkflowSpec
	// Body is the workflow's release task, the fields a reader cares about.
	Body    map[string]any
	Buttons []string
	// Held: the job has buttons the viewer may not press.
	Held bool
}

// Target describes a workflow job's release: project / environment, version.
func (j jobView) Target() string {
	var parts []string
	for _, k := range []string{"project_id", "environment"} {
		if s := toString(j.Body[k]); s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, " / ")
}

// Version is the version a workflow job releases, by name or id.
func (j jobView) Version() string {
	if s := toString(j.Body["version"]); s != "" {
		return s
	}
	return toString(j.Body["version_id"])
}

// TaskType is a workflow job's task type (deploy when not set).
func (j jobView) TaskType() string { return toString(j.Body["type"]) }

// Strategy is a workflow job's strategy (rolling when not set).
func (j jobView) Strategy() string { return toString(j.Body["strategy"]) }

func newJobView(p *plan.Plan, j plan.Job, u *identity.User) jobView {
	v := jobView{Job: j}
	switch j.Type {
	case plan.JobText:
		_ = json.Unmarshal(j.Spec, &v.Text)
	case plan.JobWorkflow:
		_ = json.Unmarshal(j.Spec, &v.Workflow)
		_ = json.Unmarshal(v.Workflow.Workflow, &v.Body)
	}
	if acts := jobStatusActions(p, j); len(acts) > 0 {
		if mayRunJob(p, j, u) {
			v.Buttons = acts
		} else {
			v.Held = true
		}
	}
	return v
}

// logView is one line of the operation record.
type logView struct {
	plan.LogEntry
	From, To string
}

func newLogView(l plan.LogEntry) logView {
	v := logView{LogEntry: l}
	var before, after struct {
		Status string `json:"status"`
	}
	_ = json.Unmarshal(l.Before, &before)
	_ = json.Unmarshal(l.After, &after)
	if before.Status != after.Status {
		v.From, v.To = before.Status, after.Status
	}
	return v
}

func (c *Console) plan(q *request) error {
	id := q.r.PathValue("id")
	var p plan.Plan
	if err := q.get(planAPI(id), &p); err != nil {
		return err
	}
	d := planData{Plan: &p}
	_, d.Names = q.usersByID()
	u := q.user()

	for _, a := range planStatusActions(&p) {
		if !mayAct(&p, u, a) {
			d.Held = true
			continue
		}
		b := planButton{Action: a, Class: "primary"}
		switch a {
		case actCancel:
			b.Confirm, b.Class = q.lang.T("plans.cancel_confirm"), "danger"
		case actDelete:
			b.Confirm, b.Class = q.lang.T("plans.delete_confirm", p.Name), "danger"
		case actReplan:
			b.Confirm, b.Class = q.lang.T("plans.replan_confirm"), ""
		}
		d.Buttons = append(d.Buttons, b)
	}
	d.CanEdit = p.Status == plan.StatusPlanning

	answered := map[string]bool{}
	for i, dec := range p.Approval.Decisions {
		answered[dec.UserID] = true
		if u != nil && dec.UserID == u.ID {
			d.Answer = &p.Approval.Decisions[i]
		}
	}
	if p.Status == plan.StatusWaitApproval {
		for _, a := range p.Approval.Approvers {
			if !answered[a] {
				d.Awaiting = append(d.Awaiting, a)
			}
		}
		d.CanAnswer = u != nil && slices.Contains(p.Approval.Approvers, u.ID) && d.Answer == nil
	}

	for _, j := range p.Jobs {
		d.Jobs = append(d.Jobs, newJobView(&p, j, u))
	}
	if p.Status == plan.StatusExecuting || p.Status == plan.StatusFinishPlanning {
		now := time.Now()
		switch {
		case p.StartTime != nil && now.Before(*p.StartTime):
			d.Window = q.lang.T("plans.window_opens", timeText(p.StartTime))
		case p.EndTime != nil && now.After(*p.EndTime):
			d.Window = q.lang.T("plans.window_closed", timeText(p.EndTime))
		}
	}

	var logs list[plan.LogEntry]
	if err := q.get(withQuery(planAPI(id, "logs"), "limit", "200", "cursor", q.r.URL.Query().Get("logs_cursor")), &logs); err != nil {
		return err
	}
	for _, l := range logs.Items {
		d.Logs = append(d.Logs, newLogView(l))
	}
	if logs.NextCursor != "" {
		d.LogsNext = planPage(id) + "?" + url.Values{"logs_cursor": {logs.NextCursor}}.Encode() + "#logs-h"
	}
	var hooks list[plan.HookDelivery]
	if err := q.get(planAPI(id, "hooks"), &hooks); err != nil {
		return err
	}
	d.Hooks = hooks.Items
	q.render(http.StatusOK, "plan", p.Name, "plans", d, nil)
	return nil
}

// ---- buttons ----

var planActions = []string{actFinishPlanning, actSubmitApproval, actExecute, actReplan, actCancel, actDelete, "approve", "deny"}

// planAction is a plan button: the API call, then back to the plan with
// its answer.
func (c *Console) planAction(q *request) error {
	id, action := q.r.PathValue("id"), q.r.PathValue("action")
	if !slices.Contains(planActions, action) {
		return c.notFound(q)
	}
	var err error
	switch action {
	case "approve", "deny":
		err = q.api(http.MethodPost, planAPI(id, "approve"), map[string]any{"approve": action == "approve", "comment": q.r.PostForm.Get("comment")}, nil)
	case actDelete:
		var p plan.Plan
		if err := q.get(planAPI(id), &p); err != nil {
			return err
		}
		if err := q.api(http.MethodDelete, planAPI(id), nil, nil); err != nil {
			return q.afterAction(planPage(id), err, "")
		}
		return q.redirect("/plans", "flash.deleted", p.Name)
	default:
		err = q.api(http.MethodPost, planAPI(id, action), map[string]any{}, nil)
	}
	return q.afterAction(planPage(id), err, "flash.plan_"+strings.ReplaceAll(action, "-", "_"))
}

var jobActions = []string{jobExecute, jobSkip, jobRetry}

func (c *Console) planJobAction(q *request) error {
	id, job, action := q.r.PathValue("id"), q.r.PathValue("job"), q.r.PathValue("action")
	if !slices.Contains(jobActions, action) {
		return c.notFound(q)
	}
	body := map[string]any{}
	if r := q.r.PostForm.Get("remark"); action == jobExecute && r != "" {
		body["remark"] = normalizeNL(r)
	}
	err := q.api(http.MethodPost, planAPI(id, "jobs", job, action), body, nil)
	key := "flash.job_" + action
	if action == jobExecute && q.r.PostForm.Get("kind") == plan.JobText {
		key = "flash.job_complete"
	}
	return q.afterAction(planPage(id), err, key)
}

// afterAction goes back to page: with the success message, or with the
// API's refusal (wrong state, not the manager, outside the window).
func (q *request) afterAction(page string, err error, okKey string) error {
	if err != nil {
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status == http.StatusUnauthorized || ae.Status == http.StatusNotFound || ae.Status >= 500 {
			return err
		}
		setFlash(q.w, q.r, "error", ae.Message)
		http.Redirect(q.w, q.r, page, http.StatusSeeOther)
		return nil
	}
	return q.redirect(page, okKey)
}

// normalizeNL turns a browser's CRLF line ends into LF.
func normalizeNL(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }
