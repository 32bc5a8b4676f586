package console

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/herald-release/herald/internal/identity"
	"github.com/herald-release/herald/internal/inventory"
	"github.com/herald-release/herald/internal/plan"
)

// The plan form: a new plan, and a plan edited while it is planning (the
// API refuses edits in any other status). Planning is collaborative:
// anyone signed in may edit. Jobs are added, removed, moved and edited in
// the form itself; without JavaScript, the buttons that change the
// form's shape post it and get it back changed, unsaved, as the callback
// form does.

// jobForm is one job as the form edits it.
type jobForm struct {
	ID, Type, Name, ManagerID string
	// A text job.
	Content, Remark string
	// A workflow job: the release task body (CONTRACT §5), its main
	// fields one by one and the others as a JSON object.
	ProjectID, Environment, Version, TaskType, Strategy string
	More                                                string
}

// workflowFields are the task body fields the form edits one by one, as
// the input name after "jobs[i].spec.workflow." and the body's key.
var workflowFields = []string{"project_id", "environment", "version", "type", "strategy"}

func (j *jobForm) workflowField(key string) *string {
	switch key {
	case "project_id":
		return &j.ProjectID
	case "environment":
		return &j.Environment
	case "version":
		return &j.Version
	case "type":
		return &j.TaskType
	case "strategy":
		return &j.Strategy
	}
	return nil
}

type planForm struct {
	Name, ManagerID, Start, End, Schedule, Description, Sprints string
	ApprovalEnabled                                             bool
	Approvers                                                   []string
	Mode                                                        string
	Jobs                                                        []jobForm
}

func jobPrefix(i int) string { return "jobs[" + strconv.Itoa(i) + "]" }

// maxFormJobs bounds what the form reads; the API's own limit is lower
// and answers with its message.
const maxFormJobs = 2 * plan.MaxJobs

func readPlanForm(v url.Values) planForm {
	f := planForm{
		Name: v.Get("name"), ManagerID: v.Get("manager_id"),
		Start: v.Get("start_time"), End: v.Get("end_time"), Schedule: v.Get("schedule_execute_time"),
		Description: v.Get("description"), Sprints: v.Get("jira_sprints"),
		ApprovalEnabled: v.Get("approval.enabled") != "", Approvers: v["approval.approvers"], Mode: v.Get("approval.mode"),
	}
	n, _ := strconv.Atoi(v.Get("job_count"))
	for i := range min(n, maxFormJobs) {
		p := jobPrefix(i)
		j := jobForm{ID: v.Get(p + ".id"), Type: v.Get(p + ".type"), Name: v.Get(p + ".name"), ManagerID: v.Get(p + ".manager_id")}
		switch j.Type {
		case plan.JobText:
			j.Content, j.Remark = v.Get(p+".spec.content"), v.Get(p+".spec.remark")
		case plan.JobWorkflow:
			for _, k := range workflowFields {
				*j.workflowField(k) = v.Get(p + ".spec.workflow." + k)
			}
			j.More = v.Get(p + ".spec.workflow")
		default:
			continue
		}
		f.Jobs = append(f.Jobs, j)
	}
	return f
}

// fromPlan is the form of a stored plan.
func fromPlan(p *plan.Plan) planForm {
	f := planForm{
		Name: p.Name, ManagerID: p.ManagerID, Description: p.Description, Sprints: formatSprints(p.JiraSprints),
		Start: inputTimeOf(p.StartTime), End: inputTimeOf(p.EndTime), Schedule: inputTimeOf(p.ScheduleExecuteTime),
		ApprovalEnabled: p.Approval.Enabled, Approvers: p.Approval.Approvers, Mode: p.Approval.Mode,
	}
	for _, j := range p.Jobs {
		jf := jobForm{ID: j.ID, Type: j.Type, Name: j.Name, ManagerID: j.ManagerID}
		switch j.Type {
		case plan.JobText:
			var t plan.TextSpec
			_ = json.Unmarshal(j.Spec, &t)
			jf.Content, jf.Remark = t.Content, t.Remark
		case plan.JobWorkflow:
			var ws plan.WorkflowSpec
			_ = json.Unmarshal(j.Spec, &ws)
			var body map[string]json.RawMessage
			_ = json.Unmarshal(ws.Workflow, &body)
			for _, k := range workflowFields {
				var s string
				if raw, ok := body[k]; ok && json.Unmarshal(raw, &s) == nil {
					*jf.workflowField(k) = s
					delete(body, k)
				}
			}
			if len(body) > 0 {
				b, _ := json.MarshalIndent(body, "", "  ")
				jf.More = string(b)
			}
		}
		f.Jobs = append(f.Jobs, jf)
	}
	return f
}

// values writes the form as its inputs' values, jobs numbered from 0.
func (f planForm) values() url.Values {
	v := url.Values{}
	v.Set("name", f.Name)
	v.Set("manager_id", f.ManagerID)
	v.Set("start_time", f.Start)
	v.Set("end_time", f.End)
	v.Set("schedule_execute_time", f.Schedule)
	v.Set("description", f.Description)
	v.Set("jira_sprints", f.Sprints)
	if f.ApprovalEnabled {
		v.Set("approval.enabled", "true")
	}
	v["approval.approvers"] = f.Approvers
	v.Set("approval.mode", f.Mode)
	v.Set("job_count", strconv.Itoa(len(f.Jobs)))
	for i, j := range f.Jobs {
		p := jobPrefix(i)
		v.Set(p+".id", j.ID)
		v.Set(p+".type", j.Type)
		v.Set(p+".name", j.Name)
		v.Set(p+".manager_id", j.ManagerID)
		switch j.Type {
		case plan.JobText:
			v.Set(p+".spec.content", j.Content)
			v.Set(p+".spec.remark", j.Remark)
		case plan.JobWorkflow:
			for _, k := range workflowFields {
				v.Set(p+".spec.workflow."+k, *j.workflowField(k))
			}
			v.Set(p+".spec.workflow", j.More)
		}
	}
	return v
}

// input builds the API body. Every field is sent, null clearing a time
// (a PUT keeps the fields it does not name). A job left as it was is sent
// exactly as stored, so that a job done in an earlier round stays done
// (the API resets a job whose spec changed). What the form cannot even
// encode is reported on the form.
func (f planForm) input(form *Form, l *Lang, cur *plan.Plan) map[string]any {
	in := map[string]any{
		"name":         strings.TrimSpace(f.Name),
		"manager_id":   f.ManagerID,
		"description":  normalizeNL(f.Description),
		"jira_sprints": parseSprints(f.Sprints),
		"approval":     map[string]any{"enabled": f.ApprovalEnabled, "approvers": nonNil(f.Approvers), "mode": f.Mode},
	}
	for k, s := range map[string]string{"start_time": f.Start, "end_time": f.End, "schedule_execute_time": f.Schedule} {
		t, ok := utcInput(s)
		switch {
		case !ok:
			form.Errors = append(form.Errors, FieldError{Field: k, Message: l.T("plans.time_invalid")})
		case t == "":
			in[k] = nil
		default:
			in[k] = t
		}
	}
	stored := map[string]plan.Job{}
	if cur != nil {
		for _, j := range cur.Jobs {
			stored[j.ID] = j
		}
	}
	jobs := []map[string]any{}
	for i, j := range f.Jobs {
		job := map[string]any{"name": strings.TrimSpace(j.Name), "type": j.Type, "manager_id": j.ManagerID}
		if j.ID != "" {
			job["id"] = j.ID
		}
		old, known := stored[j.ID]
		known = known && j.ID != "" && old.Type == j.Type
		switch j.Type {
		case plan.JobText:
			t := plan.TextSpec{Content: normalizeNL(j.Content), Remark: normalizeNL(j.Remark)}
			if known {
				var o plan.TextSpec
				if json.Unmarshal(old.Spec, &o) == nil && sameText(o.Content, t.Content) && sameText(o.Remark, t.Remark) {
					t = o
				}
			}
			job["spec"] = t
		case plan.JobWorkflow:
			field := jobPrefix(i) + ".spec.workflow"
			body := map[string]any{}
			if s := strings.TrimSpace(j.More); s != "" {
				dec := json.NewDecoder(strings.NewReader(s))
				dec.UseNumber()
				if err := dec.Decode(&body); err != nil || body == nil || dec.More() {
					form.Errors = append(form.Errors, FieldError{Field: field, Message: l.T("plans.workflow_invalid")})
					body = map[string]any{}
				}
			}
			for _, k := range workflowFields {
				if s := strings.TrimSpace(*j.workflowField(k)); s != "" {
					body[k] = s
				}
			}
			raw, _ := json.Marshal(body)
			if known {
				var o plan.WorkflowSpec
				if json.Unmarshal(old.Spec, &o) == nil && sameJSON(o.Workflow, raw) {
					raw = o.Workflow
				}
			}
			job["spec"] = map[string]any{"workflow": json.RawMessage(raw)}
		}
		jobs = append(jobs, job)
	}
	in["jobs"] = jobs
	return in
}

// sameText: equal but for line ends and surrounding space, which a
// browser's text area may change.
func sameText(a, b string) bool {
	return strings.TrimSpace(normalizeNL(a)) == strings.TrimSpace(normalizeNL(b))
}

// sameJSON: the same JSON value, whatever the order of keys and spacing.
func sameJSON(a, b []byte) bool {
	read := func(raw []byte) (any, bool) {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		return v, dec.Decode(&v) == nil
	}
	va, ok1 := read(a)
	vb, ok2 := read(b)
	return ok1 && ok2 && reflect.DeepEqual(va, vb)
}

// formatSprints writes sprints one a line: "id | name | link", the parts
// not set left out at the end.
func formatSprints(sprints []plan.Sprint) string {
	var b strings.Builder
	for _, s := range sprints {
		parts := []string{s.ID, s.Name, s.Link}
		for len(parts) > 1 && parts[len(parts)-1] == "" {
			parts = parts[:len(parts)-1]
		}
		b.WriteString(strings.Join(parts, " | ") + "\n")
	}
	return b.String()
}

// parseSprints reads what formatSprints writes; a line without "|" may
// also list several ids separated by commas.
func parseSprints(s string) []map[string]string {
	out := []map[string]string{}
	for _, line := range strings.Split(normalizeNL(s), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if !strings.Contains(line, "|") {
			for _, id := range splitList(line) {
				out = append(out, map[string]string{"id": id})
			}
			continue
		}
		parts := strings.SplitN(line, "|", 3)
		sp := map[string]string{"id": strings.TrimSpace(parts[0])}
		if len(parts) > 1 && strings.TrimSpace(parts[1]) != "" {
			sp["name"] = strings.TrimSpace(parts[1])
		}
		if len(parts) > 2 && strings.TrimSpace(parts[2]) != "" {
			sp["link"] = strings.TrimSpace(parts[2])
		}
		out = append(out, sp)
	}
	return out
}

// utcInput turns a datetime-local value, read as UTC, into RFC 3339.
func utcInput(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", true
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02 15:04:05", time.RFC3339} {
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

func inputTimeOf(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04")
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// ---- pages ----

// jobField is one job block of the form.
type jobField struct {
	Prefix string
	Index  int
	Type   string
	// Status is the stored job's status (a done job stays done while it is
	// left unchanged).
	Status string
	Last   bool
	Focus  bool
}

type planFormData struct {
	Plan     *plan.Plan // nil when new
	Users    []identity.User
	Projects []inventory.Project
	Jobs     []jobField
	names    map[string]string
}

// UserOptions are the users to choose from, with the current value kept
// even when its user is gone; empty, when not "", labels "no choice".
func (d planFormData) UserOptions(cur, empty string) []option {
	var out []option
	if empty != "" {
		out = append(out, option{"", empty})
	}
	seen := false
	for _, u := range d.Users {
		out = append(out, option{u.ID, u.Name})
		seen = seen || u.ID == cur
	}
	if !seen && cur != "" {
		out = append(out, option{cur, cur})
	}
	return out
}

// Approvers are the users to check as approvers, with the approvers
// already chosen who are not among them.
func (d planFormData) Approvers(chosen []string) []option {
	var out []option
	for _, u := range d.Users {
		out = append(out, option{u.ID, u.Name})
	}
	for _, id := range chosen {
		if _, ok := d.names[id]; !ok && id != "" {
			out = append(out, option{id, id})
		}
	}
	return out
}

// ProjectOptions are the projects a workflow job may release.
func (d planFormData) ProjectOptions(cur, empty string) []option {
	out := []option{{"", empty}}
	seen := false
	for _, p := range d.Projects {
		out = append(out, option{p.ID, p.Name})
		seen = seen || p.ID == cur
	}
	if !seen && cur != "" {
		out = append(out, option{cur, cur})
	}
	return out
}

func (q *request) renderPlanForm(status int, f *Form, pf planForm, cur *plan.Plan, focus int) error {
	d := planFormData{Plan: cur}
	d.Users, d.names = q.usersByID()
	var projects list[inventory.Project]
	if err := q.get(withQuery(projectsAPI, "limit", "500"), &projects); err != nil {
		return err
	}
	d.Projects = projects.Items
	statuses := map[string]string{}
	if cur != nil {
		for _, j := range cur.Jobs {
			statuses[j.ID] = j.Status
		}
	}
	for i, j := range pf.Jobs {
		d.Jobs = append(d.Jobs, jobField{Prefix: jobPrefix(i), Index: i, Type: j.Type, Status: statuses[j.ID],
			Last: i == len(pf.Jobs)-1, Focus: i == focus})
	}
	f.Name = "plan"
	f.Values = pf.values()
	title := q.lang.T("plans.new")
	if cur != nil {
		title = q.lang.T("plans.edit_title", cur.Name)
	}
	q.render(status, "plan_form", title, "plans", d, f)
	return nil
}

func (c *Console) newPlan(q *request) error {
	pf := planForm{Mode: plan.ModeAny}
	if u := q.user(); u != nil {
		pf.ManagerID = u.ID
	}
	return q.renderPlanForm(http.StatusOK, &Form{}, pf, nil, -1)
}

// editablePlan reads the plan to edit; a plan past planning goes back to
// its page, saying why.
func (q *request) editablePlan(id string) (*plan.Plan, bool, error) {
	var p plan.Plan
	if err := q.get(planAPI(id), &p); err != nil {
		return nil, false, err
	}
	if p.Status != plan.StatusPlanning {
		setFlash(q.w, q.r, "error", q.lang.T("plans.not_editable", q.lang.Status(p.Status)))
		http.Redirect(q.w, q.r, planPage(id), http.StatusSeeOther)
		return nil, false, nil
	}
	return &p, true, nil
}

func (c *Console) editPlan(q *request) error {
	p, ok, err := q.editablePlan(q.r.PathValue("id"))
	if !ok {
		return err
	}
	return q.renderPlanForm(http.StatusOK, &Form{}, fromPlan(p), p, -1)
}

// savePlan creates or updates the plan, or applies a change of the form's
// shape (add, remove or move a job) and shows the form again unsaved.
func (c *Console) savePlan(q *request) error {
	id := q.r.PathValue("id")
	var cur *plan.Plan
	if id != "" {
		var ok bool
		var err error
		if cur, ok, err = q.editablePlan(id); !ok {
			return err
		}
	}
	v := q.r.PostForm
	pf := readPlanForm(v)
	op := v.Get("op")
	verb, arg, _ := strings.Cut(op, ":")
	i, err := strconv.Atoi(arg)
	if err != nil || i < 0 || i >= len(pf.Jobs) {
		i = -1
	}
	switch verb {
	case "add":
		if arg == plan.JobText || arg == plan.JobWorkflow {
			pf.Jobs = append(pf.Jobs, jobForm{Type: arg})
		}
		return q.renderPlanForm(http.StatusOK, &Form{}, pf, cur, len(pf.Jobs)-1)
	case "remove":
		if i >= 0 {
			pf.Jobs = slices.Delete(pf.Jobs, i, i+1)
		}
		return q.renderPlanForm(http.StatusOK, &Form{}, pf, cur, -1)
	case "up", "down":
		j := i - 1
		if verb == "down" {
			j = i + 1
		}
		if i >= 0 && j >= 0 && j < len(pf.Jobs) {
			pf.Jobs[i], pf.Jobs[j] = pf.Jobs[j], pf.Jobs[i]
		} else {
			j = -1
		}
		return q.renderPlanForm(http.StatusOK, &Form{}, pf, cur, j)
	}
	f := &Form{}
	in := pf.input(f, q.lang, cur)
	if len(f.Errors) > 0 {
		f.Message = q.lang.T("form.fix")
		return q.renderPlanForm(http.StatusUnprocessableEntity, f, pf, cur, -1)
	}
	var saved plan.Plan
	if cur != nil {
		err = q.api(http.MethodPut, planAPI(cur.ID), in, &saved)
	} else {
		err = q.api(http.MethodPost, plansAPI, in, &saved)
	}
	if err != nil {
		if err := f.failed(err); err != nil {
			return err
		}
		return q.renderPlanForm(http.StatusUnprocessableEntity, f, pf, cur, -1)
	}
	if cur != nil {
		return q.redirect(planPage(saved.ID), "flash.saved")
	}
	return q.redirect(planPage(saved.ID), "flash.plan_created", saved.Name)
}
