package plan

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/herald-release/herald/internal/apperr"
	"github.com/herald-release/herald/internal/duration"
	"github.com/herald-release/herald/internal/release/engine"
	"github.com/herald-release/herald/internal/validate"
)

// Input is the body of POST /api/v1/release/plans, and of PUT, where the
// fields left out keep their values. Times are RFC 3339 strings or null.
type Input struct {
	Name                string            `json:"name"`
	ManagerID           string            `json:"manager_id"`
	StartTime           json.RawMessage   `json:"start_time"`
	EndTime             json.RawMessage   `json:"end_time"`
	ScheduleExecuteTime json.RawMessage   `json:"schedule_execute_time"`
	Description         string            `json:"description"`
	JiraSprints         []json.RawMessage `json:"jira_sprints"`
	Jobs                []JobInput        `json:"jobs"`
	Approval            *ApprovalInput    `json:"approval"`
}

// JobInput is one job of Input. ID names an existing job on PUT (its
// status and task are kept when its type and spec are unchanged); other
// ids are replaced by new ones.
type JobInput struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Type      string          `json:"type"`
	ManagerID string          `json:"manager_id"`
	Spec      json.RawMessage `json:"spec"`
}

// ApprovalInput configures the approval.
type ApprovalInput struct {
	Enabled   bool     `json:"enabled"`
	Approvers []string `json:"approvers"`
	Mode      string   `json:"mode"`
}

// Limits of a plan.
const (
	MaxNameLen        = 200
	MaxDescriptionLen = 64 << 10
	MaxJobs           = 100
	MaxSprints        = 100
	MaxApprovers      = 50
)

// spec is a validated Input.
type spec struct {
	Name        string
	ManagerID   string
	Start, End  *time.Time
	Schedule    *time.Time
	Description string
	Sprints     []Sprint
	Jobs        []jobSpec
	Approval    ApprovalInput
}

type jobSpec struct {
	ID        string
	Name      string
	Type      string
	ManagerID string
	// Spec is the stored spec: TextSpec or {"workflow": <task body>}.
	Spec json.RawMessage
}

// DecodeInput reads a JSON body into an Input, naming the field of a value
// of the wrong type.
func DecodeInput(b []byte) (Input, error) {
	var in Input
	if err := json.Unmarshal(b, &in); err != nil {
		return in, jsonError(err, "")
	}
	return in, nil
}

// jsonError turns a decoding error into a 4xx naming the field.
func jsonError(err error, prefix string) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		switch {
		case prefix != "" && field != "":
			field = prefix + "." + field
		case prefix != "":
			field = prefix
		case field == "":
			field = "body"
		}
		what := "has the wrong type"
		switch te.Type.Kind().String() {
		case "string":
			what = "must be a string"
		case "bool":
			what = "must be true or false"
		case "slice", "array":
			what = "must be an array"
		case "map", "struct":
			what = "must be an object"
		case "int", "int64", "float64":
			what = "must be a number"
		}
		if te.Type.String() == "duration.Duration" {
			what = duration.Describe
		}
		return apperr.Field(field, "%s", what)
	}
	if prefix == "" {
		prefix = "body"
	}
	return apperr.Field(prefix, "is not valid JSON: %v", err)
}

func parseTime(raw json.RawMessage, field string, errs *validate.Errors) *time.Time {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return nil
	}
	var str string
	if json.Unmarshal(raw, &str) != nil {
		errs.Add(field, "must be an RFC 3339 time such as \"2026-01-06T20:00:00Z\", or null")
		return nil
	}
	if str == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, str)
	if err != nil {
		errs.Add(field, "must be an RFC 3339 time such as \"2026-01-06T20:00:00Z\", not %q", str)
		return nil
	}
	t = t.UTC().Truncate(time.Microsecond)
	return &t
}

// hasNUL finds a NUL character in raw JSON: PostgreSQL cannot store one.
func hasNUL(raw []byte) bool { return bytes.Contains(raw, []byte(`\u0000`)) }

// validate checks an Input and returns it normalized. Users, environments
// and jobs are looked up outside any transaction.
func (s *Service) validate(ctx context.Context, in Input) (*spec, error) {
	var errs validate.Errors
	out := &spec{
		Name:        strings.TrimSpace(in.Name),
		ManagerID:   strings.TrimSpace(in.ManagerID),
		Description: in.Description,
	}
	switch {
	case out.Name == "":
		errs.Add("name", "is required")
	case utf8.RuneCountInString(out.Name) > MaxNameLen:
		errs.Add("name", "must be at most %d characters", MaxNameLen)
	}
	if strings.ContainsRune(out.Name+out.ManagerID+out.Description, 0) {
		errs.Add("body", "must not contain NUL characters")
	}
	if len(out.Description) > MaxDescriptionLen {
		errs.Add("description", "must be at most %d bytes", MaxDescriptionLen)
	}
	if out.ManagerID == "" {
		errs.Add("manager_id", "is required: the release owner, a user id")
	}

	out.Start = parseTime(in.StartTime, "start_time", &errs)
	out.End = parseTime(in.EndTime, "end_time", &errs)
	out.Schedule = parseTime(in.ScheduleExecuteTime, "schedule_execute_time", &errs)
	switch {
	case (out.Start == nil) != (out.End == nil):
		if out.Start == nil {
			errs.Add("start_time", "is required with end_time: the window has both ends or none")
		} else {
			errs.Add("end_time", "is required with start_time: the window has both ends or none")
		}
	case out.Start != nil && !out.End.After(*out.Start):
		errs.Add("end_time", "must be after start_time")
	}
	if out.Schedule != nil && out.Start != nil && out.End != nil &&
		(out.Schedule.Before(*out.Start) || out.Schedule.After(*out.End)) {
		errs.Add("schedule_execute_time", "must be inside the release window (start_time to end_time)")
	}

	if len(in.JiraSprints) > MaxSprints {
		errs.Add("jira_sprints", "at most %d sprints", MaxSprints)
	}
	out.Sprints = []Sprint{}
	for i, raw := range in.JiraSprints {
		field := fmt.Sprintf("jira_sprints[%d]", i)
		sp, msg := parseSprint(raw)
		if msg != "" {
			errs.Add(field, "%s", msg)
			continue
		}
		out.Sprints = append(out.Sprints, sp)
	}

	if in.Approval != nil {
		out.Approval = *in.Approval
	}
	out.Approval.Mode = strings.TrimSpace(out.Approval.Mode)
	if out.Approval.Mode == "" {
		out.Approval.Mode = ModeAny
	}
	if out.Approval.Mode != ModeAny && out.Approval.Mode != ModeAll {
		errs.Add("approval.mode", "must be \"any\" or \"all\", not %q", out.Approval.Mode)
	}
	if out.Approval.Approvers == nil {
		out.Approval.Approvers = []string{}
	}
	seen := map[string]bool{}
	for i, a := range out.Approval.Approvers {
		if strings.ContainsRune(a, 0) {
			errs.Add(fmt.Sprintf("approval.approvers[%d]", i), "must not contain NUL characters")
		}
		if seen[a] {
			errs.Add(fmt.Sprintf("approval.approvers[%d]", i), "%q is listed twice", a)
		}
		seen[a] = true
	}
	if len(out.Approval.Approvers) > MaxApprovers {
		errs.Add("approval.approvers", "at most %d approvers", MaxApprovers)
	}
	if out.Approval.Enabled && len(out.Approval.Approvers) == 0 {
		errs.Add("approval.approvers", "name at least one approver (a user id) when approval is enabled")
	}

	if len(in.Jobs) > MaxJobs {
		errs.Add("jobs", "at most %d jobs", MaxJobs)
	}
	ids := map[string]bool{}
	for i, j := range in.Jobs {
		field := fmt.Sprintf("jobs[%d]", i)
		js := jobSpec{ID: strings.TrimSpace(j.ID), Name: strings.TrimSpace(j.Name), Type: j.Type, ManagerID: strings.TrimSpace(j.ManagerID)}
		if js.ID != "" {
			if ids[js.ID] {
				errs.Add(field+".id", "%q is listed twice", js.ID)
			}
			ids[js.ID] = true
		}
		switch {
		case js.Name == "":
			errs.Add(field+".name", "is required")
		case utf8.RuneCountInString(js.Name) > MaxNameLen:
			errs.Add(field+".name", "must be at most %d characters", MaxNameLen)
		}
		if strings.ContainsRune(js.Name+js.ManagerID+js.ID, 0) || hasNUL(j.Spec) {
			errs.Add(field, "must not contain NUL characters")
			continue
		}
		switch j.Type {
		case JobText:
			var t TextSpec
			if len(bytes.TrimSpace(j.Spec)) > 0 && string(bytes.TrimSpace(j.Spec)) != "null" {
				if err := json.Unmarshal(j.Spec, &t); err != nil {
					errs.Merge(field+".spec", fieldErrs(jsonError(err, "")))
					continue
				}
			}
			js.Spec = json.RawMessage(mustJSON(t))
		case JobWorkflow:
			body, verrs := s.validateWorkflow(ctx, j.Spec)
			if len(verrs) > 0 {
				errs.Merge(field+".spec", verrs)
				continue
			}
			js.Spec = json.RawMessage(mustJSON(map[string]json.RawMessage{"workflow": body}))
		case "":
			errs.Add(field+".type", "is required: \"text\" or \"workflow\"")
			continue
		default:
			errs.Add(field+".type", "must be \"text\" or \"workflow\", not %q", j.Type)
			continue
		}
		out.Jobs = append(out.Jobs, js)
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}

	// Users: the manager, the approvers and the job managers must exist.
	var want []string
	want = append(want, out.ManagerID)
	want = append(want, out.Approval.Approvers...)
	for _, j := range out.Jobs {
		want = append(want, j.ManagerID)
	}
	names, err := userNames(ctx, s.db, want)
	if err != nil {
		return nil, err
	}
	if _, ok := names[out.ManagerID]; !ok {
		errs.Add("manager_id", "no user %q", out.ManagerID)
	}
	for i, a := range out.Approval.Approvers {
		if _, ok := names[a]; !ok {
			errs.Add(fmt.Sprintf("approval.approvers[%d]", i), "no user %q", a)
		}
	}
	for i, j := range out.Jobs {
		if _, ok := names[j.ManagerID]; j.ManagerID != "" && !ok {
			errs.Add(fmt.Sprintf("jobs[%d].manager_id", i), "no user %q", j.ManagerID)
		}
	}
	return out, errs.Err()
}

func fieldErrs(err error) validate.Errors {
	if ae := apperr.From(err); ae != nil && len(ae.Details) > 0 {
		out := make(validate.Errors, len(ae.Details))
		copy(out, ae.Details)
		for i := range out {
			if out[i].Field == "body" {
				out[i].Field = ""
			}
		}
		return out
	}
	return validate.Errors{{Field: "", Message: err.Error()}}
}

func parseSprint(raw json.RawMessage) (Sprint, string) {
	var sp Sprint
	var str string
	if json.Unmarshal(raw, &str) == nil {
		sp.ID = strings.TrimSpace(str)
	} else if err := json.Unmarshal(raw, &sp); err != nil {
		return sp, "must be a sprint id or an object {\"id\", \"name\", \"link\"}"
	}
	sp.ID, sp.Name, sp.Link = strings.TrimSpace(sp.ID), strings.TrimSpace(sp.Name), strings.TrimSpace(sp.Link)
	if sp.ID == "" {
		return sp, "needs an id"
	}
	if strings.ContainsRune(sp.ID+sp.Name+sp.Link, 0) {
		return sp, "must not contain NUL characters"
	}
	if sp.Link != "" {
		u, err := url.Parse(sp.Link)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return sp, "link must be an http(s) URL"
		}
	}
	return sp, ""
}

// validateWorkflow checks a workflow job's spec: {"workflow": <task body
// of CONTRACT §5>}; task_id and status, as a GET shows them, are ignored.
// The engine checks the rest when the task is created.
func (s *Service) validateWorkflow(ctx context.Context, raw json.RawMessage) (json.RawMessage, validate.Errors) {
	var errs validate.Errors
	var w struct {
		Workflow json.RawMessage `json:"workflow"`
	}
	if err := json.Unmarshal(raw, &w); err != nil || len(bytes.TrimSpace(w.Workflow)) == 0 || string(bytes.TrimSpace(w.Workflow)) == "null" {
		errs.Add("workflow", "is required: the release task to run, as the body of POST /api/v1/release/tasks")
		return nil, errs
	}
	var in engine.CreateInput
	if err := json.Unmarshal(w.Workflow, &in); err != nil {
		errs.Merge("workflow", fieldErrs(jsonError(err, "")))
		return nil, errs
	}
	if in.ProjectID == "" {
		errs.Add("workflow.project_id", "is required")
	}
	if in.Environment == "" {
		errs.Add("workflow.environment", "is required")
	}
	if in.Type != "" && in.Type != engine.TypeDeploy && in.Type != engine.TypeRollback && in.Type != engine.TypeStop {
		errs.Add("workflow.type", "must be deploy, rollback or stop, not %q", in.Type)
	}
	if in.Strategy != "" && in.Strategy != engine.StrategyCanary && in.Strategy != engine.StrategyRolling && in.Strategy != engine.StrategyBlueGreen {
		errs.Add("workflow.strategy", "must be canary, rolling or blue_green, not %q", in.Strategy)
	}
	if in.Executor != nil {
		// A plan's spec is shown to every reader and sent to the hook; an
		// executor can hold a private key, which must not travel there.
		errs.Add("workflow.executor", "cannot be set in a release plan: the task uses its environment's executor")
	}
	if len(errs) == 0 && s.inv != nil {
		if _, err := s.inv.GetEnvironment(ctx, in.ProjectID, in.Environment); err != nil {
			if ae := apperr.From(err); ae != nil && ae.Status == 404 {
				errs.Add("workflow.environment", "no environment %q in project %q", in.Environment, in.ProjectID)
			} else {
				errs.Add("workflow.environment", "cannot be checked: %v", err)
			}
		}
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, w.Workflow); err != nil {
		errs.Add("workflow", "is not valid JSON")
	} else if !utf8.Valid(compact.Bytes()) {
		// Stored as sent: PostgreSQL refuses text that is not UTF-8.
		errs.Add("workflow", "must be UTF-8 text")
	}
	return compact.Bytes(), errs
}

// currentInput is the Input that describes p as it is: the base that a
// PUT's fields replace.
func currentInput(p *planRow) map[string]json.RawMessage {
	tm := func(t *time.Time) json.RawMessage {
		if t == nil {
			return json.RawMessage("null")
		}
		return json.RawMessage(mustJSON(t.UTC().Format(time.RFC3339Nano)))
	}
	jobs := make([]JobInput, len(p.Jobs))
	for i, j := range p.Jobs {
		jobs[i] = JobInput{ID: j.ID, Name: j.Name, Type: j.Type, ManagerID: j.ManagerID, Spec: j.Spec}
	}
	return map[string]json.RawMessage{
		"name":                  json.RawMessage(mustJSON(p.Name)),
		"manager_id":            json.RawMessage(mustJSON(p.ManagerID)),
		"start_time":            tm(p.StartTime),
		"end_time":              tm(p.EndTime),
		"schedule_execute_time": tm(p.ScheduleTime),
		"description":           json.RawMessage(mustJSON(p.Description)),
		"jira_sprints":          json.RawMessage(mustJSON(p.Sprints)),
		"jobs":                  json.RawMessage(mustJSON(jobs)),
		"approval":              json.RawMessage(mustJSON(ApprovalInput{Enabled: p.ApprovalEnabled, Approvers: p.Approvers, Mode: p.ApprovalMode})),
	}
}
