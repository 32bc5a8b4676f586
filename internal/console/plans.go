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
)

// Release plans (CONTRACT §7). The pages read the plan as the contract
// names its fields and leave every rule (who may act, in which status,
// inside which window) to the API, whose refusals they show.

const plansAPI = "/api/v1/release/plans"

type planApproval struct {
	Enabled   bool     `json:"enabled"`
	Approvers []string `json:"approvers"`
	Mode      string   `json:"mode"`
}

type planJob struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Type      string          `json:"type"`
	ManagerID string          `json:"manager_id"`
	Status    string          `json:"status"`
	Spec      json.RawMessage `json:"spec"`
}

// Content is a text job's content.
func (j planJob) Content() string {
	var s struct {
		Content string `json:"content"`
		Remark  string `json:"remark"`
	}
	_ = json.Unmarshal(j.Spec, &s)
	return strings.TrimSpace(s.Content + "\n" + s.Remark)
}

// TaskID is a workflow job's release task.
func (j planJob) TaskID() string {
	var s struct {
		TaskID string `json:"task_id"`
	}
	_ = json.Unmarshal(j.Spec, &s)
	return s.TaskID
}

type plan struct {
	ID                  string       `json:"id"`
	Name                string       `json:"name"`
	Status              string       `json:"status"`
	ManagerID           string       `json:"manager_id"`
	StartTime           any          `json:"start_time"`
	EndTime             any          `json:"end_time"`
	ScheduleExecuteTime any          `json:"schedule_execute_time"`
	Description         string       `json:"description"`
	JiraSprints         []any        `json:"jira_sprints"`
	InstanceCode        string       `json:"instance_code"`
	Jobs                []planJob    `json:"jobs"`
	Approval            planApproval `json:"approval"`
	CreatedAt           any          `json:"created_at"`
	UpdatedAt           any          `json:"updated_at"`
}

// Actions are the plan buttons worth offering in the plan's status; the
// API has the last word.
func (p plan) Actions() []string {
	switch {
	case p.Status == "planning":
		return []string{"finish-planning", "cancel"}
	case p.Status == "finish_planning" && p.Approval.Enabled:
		return []string{"submit-approval", "execute", "replan", "cancel"}
	case p.Status == "finish_planning":
		return []string{"execute", "replan", "cancel"}
	case p.Status == "wait_for_approval":
		return []string{"cancel"}
	case p.Status == "executing":
		return []string{"cancel"}
	case p.Status == "denied", p.Status == "timeout", strings.HasSuffix(p.Status, "_external_check_failed"):
		return []string{"replan", "cancel"}
	case strings.HasSuffix(p.Status, "_external_check"):
		return []string{"cancel"}
	}
	return nil
}

// Approving tells whether approvers may answer now.
func (p plan) Approving() bool { return p.Status == "wait_for_approval" }

// Editing tells whether the plan's jobs may be run.
func (p plan) Executing() bool { return p.Status == "executing" }

type plansData struct {
	Missing bool
	Plans   []plan
	Next    string
	Users   []identity.User
	Names   map[string]string
	Example string
}

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

const jobsExample = `[
  {"name": "Announce", "type": "text", "spec": {"content": "Tell support"}},
  {"name": "Deploy", "type": "workflow", "spec": {"workflow": {"project_id": "shop", "environment": "prod", "version": "v1.2.3", "strategy": "canary", "canary": {"count": 1}}}}
]`

func (c *Console) plans(q *request) error { return q.renderPlans(http.StatusOK, nil) }

func (q *request) renderPlans(status int, f *Form) error {
	d := plansData{Example: jobsExample}
	var l list[plan]
	switch err := q.get(withQuery(plansAPI, "cursor", q.r.URL.Query().Get("cursor")), &l); {
	case noRoute(err):
		d.Missing = true
	case err != nil:
		return err
	}
	d.Plans, d.Next = l.Items, l.next("/plans", nil)
	d.Users, d.Names = q.usersByID()
	q.render(status, "plans", q.lang.T("plans.title"), "plans", d, f)
	return nil
}

// utcInput turns a datetime-local value, read as UTC, into RFC 3339.
func utcInput(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", true
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC().Format(time.RFC3339), true
		}
	}
	return "", false
}

// inputTime shows an RFC 3339 time in a datetime-local input, in UTC.
func inputTime(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04")
}

func (c *Console) createPlan(q *request) error {
	v := q.r.PostForm
	f := &Form{Name: "plan", Values: v}
	in := map[string]any{
		"name":         strings.TrimSpace(v.Get("name")),
		"manager_id":   v.Get("manager_id"),
		"description":  v.Get("description"),
		"jira_sprints": splitList(v.Get("jira_sprints")),
		"approval":     map[string]any{"enabled": v.Get("approval.enabled") != "", "approvers": nonNil(v["approval.approvers"]), "mode": v.Get("approval.mode")},
	}
	for _, k := range []string{"start_time", "end_time", "schedule_execute_time"} {
		s, ok := utcInput(v.Get(k))
		if !ok {
			f.Errors = append(f.Errors, FieldError{Field: k, Message: "is not a date and time"})
		}
		if s != "" {
			in[k] = s
		}
	}
	jobs := json.RawMessage(`[]`)
	if s := strings.TrimSpace(v.Get("jobs")); s != "" {
		if !json.Valid([]byte(s)) {
			f.Errors = append(f.Errors, FieldError{Field: "jobs", Message: q.lang.T("plans.jobs_invalid")})
		}
		jobs = json.RawMessage(s)
	}
	in["jobs"] = jobs
	if len(f.Errors) > 0 {
		f.Message = q.lang.T("form.fix")
		return q.renderPlans(http.StatusUnprocessableEntity, f)
	}
	var p plan
	if err := q.api(http.MethodPost, plansAPI, in, &p); err != nil {
		if err := f.failed(err); err != nil {
			return err
		}
		return q.renderPlans(http.StatusUnprocessableEntity, f)
	}
	return q.redirect("/plans/"+url.PathEscape(p.ID), "flash.plan_created", p.Name)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

type planData struct {
	Plan  plan
	Names map[string]string
	Logs  []planLog
}

// planLog is one line of the operation record, read leniently: the
// contract names the route, not the entry's fields.
type planLog struct {
	Time, Actor, Action, Detail string
}

func readPlanLog(m map[string]any) planLog {
	l := planLog{Time: timeText(first(m, "created_at", "time", "timestamp")), Action: toString(first(m, "action", "event", "type"))}
	switch a := first(m, "actor", "operator", "user").(type) {
	case map[string]any:
		l.Actor = toString(first(a, "name", "id"))
	default:
		l.Actor = toString(a)
	}
	l.Detail = toString(first(m, "detail", "message", "comment", "remark"))
	return l
}

func first(m map[string]any, keys ...string) any {
	for _, k := range keys {
		if v, ok := m[k]; ok && v != nil {
			return v
		}
	}
	return nil
}

func (c *Console) plan(q *request) error {
	id := q.r.PathValue("id")
	var d planData
	if err := q.get(plansAPI+"/"+url.PathEscape(id), &d.Plan); err != nil {
		return err
	}
	_, d.Names = q.usersByID()
	var logs list[map[string]any]
	if err := q.get(plansAPI+"/"+url.PathEscape(id)+"/logs", &logs); err == nil {
		for _, m := range logs.Items {
			d.Logs = append(d.Logs, readPlanLog(m))
		}
	} else if !noRoute(err) && !isStatus(err, http.StatusNotFound) {
		return err
	}
	q.render(http.StatusOK, "plan", d.Plan.Name, "plans", d, nil)
	return nil
}

var planActions = []string{"finish-planning", "submit-approval", "execute", "replan", "cancel", "approve", "deny"}

// planAction is a plan button: the API call, then back to the plan with
// its answer.
func (c *Console) planAction(q *request) error {
	id, action := q.r.PathValue("id"), q.r.PathValue("action")
	if !slices.Contains(planActions, action) {
		return c.notFound(q)
	}
	base := plansAPI + "/" + url.PathEscape(id)
	var err error
	switch action {
	case "approve", "deny":
		err = q.api(http.MethodPost, base+"/approve", map[string]any{"approve": action == "approve", "comment": q.r.PostForm.Get("comment")}, nil)
	default:
		err = q.api(http.MethodPost, base+"/"+action, map[string]any{}, nil)
	}
	return q.afterAction("/plans/"+url.PathEscape(id), err, "flash.plan_"+strings.ReplaceAll(action, "-", "_"))
}

var jobActions = []string{"execute", "skip", "retry"}

func (c *Console) planJobAction(q *request) error {
	id, job, action := q.r.PathValue("id"), q.r.PathValue("job"), q.r.PathValue("action")
	if !slices.Contains(jobActions, action) {
		return c.notFound(q)
	}
	body := map[string]any{}
	if r := q.r.PostForm.Get("remark"); r != "" {
		body["remark"] = r
	}
	err := q.api(http.MethodPost, plansAPI+"/"+url.PathEscape(id)+"/jobs/"+url.PathEscape(job)+"/"+action, body, nil)
	return q.afterAction("/plans/"+url.PathEscape(id), err, "flash.job_"+action)
}

// afterAction goes back to page: with the success message, or with the
// API's refusal (wrong state, not the manager, outside the window).
func (q *request) afterAction(page string, err error, okKey string) error {
	if err != nil {
		f := &Form{}
		if ferr := f.failed(err); ferr != nil && !isStatus(err, http.StatusForbidden) {
			return ferr
		}
		var ae *APIError
		msg := err.Error()
		if errors.As(err, &ae) {
			msg = ae.Message
		}
		setFlash(q.w, q.r, "error", msg)
		http.Redirect(q.w, q.r, page, http.StatusSeeOther)
		return nil
	}
	return q.redirect(page, okKey)
}
