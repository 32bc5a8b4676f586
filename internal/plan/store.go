package plan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/herald-release/herald/internal/apperr"
	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/id"
)

// planRow is a release_plans row with its jobs.
type planRow struct {
	ID                string
	Number            int64
	Name              string
	ManagerID         string
	StartTime         *time.Time
	EndTime           *time.Time
	ScheduleTime      *time.Time
	Description       string
	Sprints           []Sprint
	ApprovalEnabled   bool
	Approvers         []string
	ApprovalMode      string
	Status            string
	InstanceCode      string
	CheckFailedReason string
	CheckDeadline     *time.Time
	PlanningTime      *time.Time
	ApprovalTime      *time.Time
	ExecutingTime     *time.Time
	SuccessTime       *time.Time
	CreatedByID       string
	CreatedByName     string
	UpdatedByID       string
	UpdatedByName     string
	CreatedAt         time.Time
	UpdatedAt         time.Time

	Jobs []*jobRow
}

// jobRow is a release_plan_jobs row. Spec is the stored spec: TextSpec, or
// {"workflow": <task body>}.
type jobRow struct {
	ID          string
	PlanID      string
	Position    int
	Name        string
	Type        string
	ManagerID   string
	Spec        json.RawMessage
	Status      string
	TaskID      string
	TaskStatus  string
	LaunchToken string
	LaunchedAt  *time.Time
	Error       string
	ExecByID    string
	ExecByName  string
	ExecutedAt  *time.Time
}

func (p *planRow) job(jobID string) *jobRow {
	for _, j := range p.Jobs {
		if j.ID == jobID {
			return j
		}
	}
	return nil
}

// inWindow tells whether t is inside the release window; a plan without a
// window is always inside it.
func (p *planRow) inWindow(t time.Time) error {
	const layout = "2006-01-02 15:04:05 UTC"
	if p.StartTime != nil && t.Before(*p.StartTime) {
		return apperr.InvalidState("outside the release window: it opens at %s (now %s)",
			p.StartTime.UTC().Format(layout), t.UTC().Format(layout))
	}
	if p.EndTime != nil && t.After(*p.EndTime) {
		return apperr.InvalidState("outside the release window: it closed at %s (now %s)",
			p.EndTime.UTC().Format(layout), t.UTC().Format(layout))
	}
	return nil
}

func (p *planRow) allDone() bool {
	if len(p.Jobs) == 0 {
		return false
	}
	for _, j := range p.Jobs {
		if j.Status != JobDone && j.Status != JobSkipped {
			return false
		}
	}
	return true
}

func (p *planRow) isManager(userID string) bool { return userID != "" && userID == p.ManagerID }

const planCols = `id, number, name, manager_id, start_time, end_time, schedule_execute_time, description,
	jira_sprints, approval_enabled, approvers, approval_mode, status, instance_code, check_failed_reason,
	check_deadline, planning_time, approval_time, executing_time, success_time,
	created_by_id, created_by_name, updated_by_id, updated_by_name, created_at, updated_at`

func scanPlan(r interface{ Scan(...any) error }) (*planRow, error) {
	var p planRow
	var sprints, approvers string
	err := r.Scan(&p.ID, &p.Number, &p.Name, &p.ManagerID, &p.StartTime, &p.EndTime, &p.ScheduleTime, &p.Description,
		&sprints, &p.ApprovalEnabled, &approvers, &p.ApprovalMode, &p.Status, &p.InstanceCode, &p.CheckFailedReason,
		&p.CheckDeadline, &p.PlanningTime, &p.ApprovalTime, &p.ExecutingTime, &p.SuccessTime,
		&p.CreatedByID, &p.CreatedByName, &p.UpdatedByID, &p.UpdatedByName, &p.CreatedAt, &p.UpdatedAt)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(sprints), &p.Sprints); err != nil {
		return nil, fmt.Errorf("plan %s: stored jira_sprints: %w", p.ID, err)
	}
	if err := json.Unmarshal([]byte(approvers), &p.Approvers); err != nil {
		return nil, fmt.Errorf("plan %s: stored approvers: %w", p.ID, err)
	}
	return &p, nil
}

const jobCols = `id, plan_id, position, name, type, manager_id, spec, status, task_id, task_status,
	launch_token, launched_at, error, executed_by_id, executed_by_name, executed_at`

func scanJob(r interface{ Scan(...any) error }) (*jobRow, error) {
	var j jobRow
	var spec string
	if err := r.Scan(&j.ID, &j.PlanID, &j.Position, &j.Name, &j.Type, &j.ManagerID, &spec, &j.Status, &j.TaskID,
		&j.TaskStatus, &j.LaunchToken, &j.LaunchedAt, &j.Error, &j.ExecByID, &j.ExecByName, &j.ExecutedAt); err != nil {
		return nil, err
	}
	j.Spec = json.RawMessage(spec)
	return &j, nil
}

// loadPlan reads a plan with its jobs; lock takes the row lock on
// PostgreSQL so that the plan's changes happen one at a time.
func loadPlan(ctx context.Context, q db.Querier, planID, lock string) (*planRow, error) {
	if strings.ContainsRune(planID, 0) {
		return nil, apperr.NotFound("release plan %q not found", planID)
	}
	p, err := scanPlan(q.QueryRow(ctx, `SELECT `+planCols+` FROM release_plans WHERE id = $1`+lock, planID))
	if errors.Is(err, db.ErrNoRows) {
		return nil, apperr.NotFound("release plan %q not found", planID)
	}
	if err != nil {
		return nil, err
	}
	if p.Jobs, err = loadJobs(ctx, q, []string{planID}); err != nil {
		return nil, err
	}
	return p, nil
}

func lockPlan(ctx context.Context, tx db.Tx, planID string) (*planRow, error) {
	return loadPlan(ctx, tx, planID, forUpdate(tx))
}

func loadJobs(ctx context.Context, q db.Querier, planIDs []string) ([]*jobRow, error) {
	if len(planIDs) == 0 {
		return nil, nil
	}
	ph := make([]string, len(planIDs))
	args := make([]any, len(planIDs))
	for i, id := range planIDs {
		ph[i] = fmt.Sprintf("$%d", i+1)
		args[i] = id
	}
	rows, err := q.Query(ctx, `SELECT `+jobCols+` FROM release_plan_jobs WHERE plan_id IN (`+strings.Join(ph, ", ")+`)
		ORDER BY plan_id, position`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*jobRow
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain data is marshalled here
	}
	return string(b)
}

func insertPlan(ctx context.Context, tx db.Tx, p *planRow) error {
	err := tx.QueryRow(ctx, `INSERT INTO release_plan_counters (name, last) VALUES ('plan', 1)
		ON CONFLICT (name) DO UPDATE SET last = release_plan_counters.last + 1 RETURNING last`).Scan(&p.Number)
	if err != nil {
		return fmt.Errorf("number the plan: %w", err)
	}
	_, err = tx.Exec(ctx, `INSERT INTO release_plans (`+planCols+`) VALUES
		($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26)`,
		p.ID, p.Number, p.Name, p.ManagerID, p.StartTime, p.EndTime, p.ScheduleTime, p.Description,
		mustJSON(p.Sprints), p.ApprovalEnabled, mustJSON(p.Approvers), p.ApprovalMode, p.Status, p.InstanceCode,
		p.CheckFailedReason, p.CheckDeadline, p.PlanningTime, p.ApprovalTime, p.ExecutingTime, p.SuccessTime,
		p.CreatedByID, p.CreatedByName, p.UpdatedByID, p.UpdatedByName, p.CreatedAt, p.UpdatedAt)
	return err
}

// savePlan writes the plan row (not its jobs).
func savePlan(ctx context.Context, tx db.Tx, p *planRow) error {
	_, err := tx.Exec(ctx, `UPDATE release_plans SET name = $2, manager_id = $3, start_time = $4, end_time = $5,
		schedule_execute_time = $6, description = $7, jira_sprints = $8, approval_enabled = $9, approvers = $10,
		approval_mode = $11, status = $12, instance_code = $13, check_failed_reason = $14, check_deadline = $15,
		planning_time = $16, approval_time = $17, executing_time = $18, success_time = $19,
		updated_by_id = $20, updated_by_name = $21, updated_at = $22
		WHERE id = $1`,
		p.ID, p.Name, p.ManagerID, p.StartTime, p.EndTime, p.ScheduleTime, p.Description, mustJSON(p.Sprints),
		p.ApprovalEnabled, mustJSON(p.Approvers), p.ApprovalMode, p.Status, p.InstanceCode, p.CheckFailedReason,
		p.CheckDeadline, p.PlanningTime, p.ApprovalTime, p.ExecutingTime, p.SuccessTime,
		p.UpdatedByID, p.UpdatedByName, p.UpdatedAt)
	return err
}

func insertJob(ctx context.Context, tx db.Tx, j *jobRow) error {
	_, err := tx.Exec(ctx, `INSERT INTO release_plan_jobs (`+jobCols+`) VALUES
		($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
		j.ID, j.PlanID, j.Position, j.Name, j.Type, j.ManagerID, string(j.Spec), j.Status, j.TaskID, j.TaskStatus,
		j.LaunchToken, j.LaunchedAt, j.Error, j.ExecByID, j.ExecByName, j.ExecutedAt)
	return err
}

func saveJob(ctx context.Context, tx db.Tx, j *jobRow) error {
	_, err := tx.Exec(ctx, `UPDATE release_plan_jobs SET position = $2, name = $3, type = $4, manager_id = $5,
		spec = $6, status = $7, task_id = $8, task_status = $9, launch_token = $10, launched_at = $11, error = $12,
		executed_by_id = $13, executed_by_name = $14, executed_at = $15 WHERE id = $1`,
		j.ID, j.Position, j.Name, j.Type, j.ManagerID, string(j.Spec), j.Status, j.TaskID, j.TaskStatus,
		j.LaunchToken, j.LaunchedAt, j.Error, j.ExecByID, j.ExecByName, j.ExecutedAt)
	return err
}

// replaceJobs stores p.Jobs as the plan's jobs, removing the others.
func replaceJobs(ctx context.Context, tx db.Tx, p *planRow) error {
	if _, err := tx.Exec(ctx, `DELETE FROM release_plan_jobs WHERE plan_id = $1`, p.ID); err != nil {
		return err
	}
	for _, j := range p.Jobs {
		if err := insertJob(ctx, tx, j); err != nil {
			return err
		}
	}
	return nil
}

// logEntry is what writeLog records.
type logEntry struct {
	Action     string
	TargetType string // "plan" or "job"
	TargetID   string
	TargetName string
	Detail     string
	Before     any
	After      any
}

// writeLog adds a line to the plan's operation record, in tx.
func (s *Service) writeLog(ctx context.Context, tx db.Tx, p *planRow, actor event.Actor, e logEntry) error {
	enc := func(v any) string {
		if v == nil {
			return ""
		}
		return mustJSON(v)
	}
	if e.TargetType == "" {
		e.TargetType = "plan"
		e.TargetID = p.ID
		e.TargetName = p.Name
	}
	_, err := tx.Exec(ctx, `INSERT INTO release_plan_logs
		(id, plan_id, actor_id, actor_name, action, target_type, target_id, target_name, detail, before_json, after_json, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		id.New("plog"), p.ID, actor.ID, actor.Name, e.Action, e.TargetType, e.TargetID, e.TargetName, e.Detail,
		enc(e.Before), enc(e.After), s.stamp())
	if err != nil {
		return fmt.Errorf("plan %s: write the operation record: %w", p.ID, err)
	}
	return nil
}

// jobLog is a log entry about a job.
func jobLog(j *jobRow, action, detail string, before, after any) logEntry {
	return logEntry{Action: action, TargetType: "job", TargetID: j.ID, TargetName: j.Name, Detail: detail, Before: before, After: after}
}

// userNames maps user ids to names; unknown ids are left out.
func userNames(ctx context.Context, q db.Querier, ids []string) (map[string]string, error) {
	out := map[string]string{}
	uniq := map[string]bool{}
	var args []any
	var ph []string
	for _, id := range ids {
		if id == "" || uniq[id] {
			continue
		}
		uniq[id] = true
		args = append(args, id)
		ph = append(ph, fmt.Sprintf("$%d", len(args)))
	}
	if len(args) == 0 {
		return out, nil
	}
	rows, err := q.Query(ctx, `SELECT id, name FROM users WHERE id IN (`+strings.Join(ph, ", ")+`)`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, err
		}
		out[id] = name
	}
	return out, rows.Err()
}

func (p *planRow) userIDs() []string {
	ids := []string{p.ManagerID}
	ids = append(ids, p.Approvers...)
	for _, j := range p.Jobs {
		ids = append(ids, j.ManagerID)
	}
	return ids
}

// decisions reads the approvers' answers of the plan's current round.
func decisions(ctx context.Context, q db.Querier, p *planRow) ([]Decision, error) {
	rows, err := q.Query(ctx, `SELECT user_id, user_name, approve, comment, created_at FROM release_plan_approvals
		WHERE plan_id = $1 AND instance_code = $2 ORDER BY created_at, user_id`, p.ID, p.InstanceCode)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Decision{}
	for rows.Next() {
		var d Decision
		if err := rows.Scan(&d.UserID, &d.UserName, &d.Approve, &d.Comment, &d.At); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// approvalStatus judges a round's answers by the plan's mode.
func approvalStatus(p *planRow, ds []Decision) string {
	approved := map[string]bool{}
	for _, d := range ds {
		if !d.Approve {
			return ApprovalDenied
		}
		approved[d.UserID] = true
	}
	if p.ApprovalMode == ModeAll {
		for _, a := range p.Approvers {
			if !approved[a] {
				return ApprovalPending
			}
		}
		return ApprovalApproved
	}
	if len(approved) > 0 {
		return ApprovalApproved
	}
	return ApprovalPending
}

// view turns rows into the API's Plan.
func (s *Service) view(ctx context.Context, q db.Querier, p *planRow, names map[string]string) (*Plan, error) {
	if names == nil {
		var err error
		if names, err = userNames(ctx, q, p.userIDs()); err != nil {
			return nil, err
		}
	}
	out := &Plan{
		ID: p.ID, Index: p.Number, Name: p.Name, ManagerID: p.ManagerID, Manager: names[p.ManagerID],
		StartTime: p.StartTime, EndTime: p.EndTime, ScheduleExecuteTime: p.ScheduleTime,
		Description: p.Description, JiraSprints: p.Sprints, Status: p.Status, InstanceCode: p.InstanceCode,
		Approval:     Approval{Enabled: p.ApprovalEnabled, Approvers: p.Approvers, Mode: p.ApprovalMode, Decisions: []Decision{}},
		PlanningTime: p.PlanningTime, ApprovalTime: p.ApprovalTime, ExecutingTime: p.ExecutingTime, SuccessTime: p.SuccessTime,
		CreatedBy: event.Actor{ID: p.CreatedByID, Name: p.CreatedByName},
		UpdatedBy: event.Actor{ID: p.UpdatedByID, Name: p.UpdatedByName},
		CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt,
	}
	if out.JiraSprints == nil {
		out.JiraSprints = []Sprint{}
	}
	if out.Approval.Approvers == nil {
		out.Approval.Approvers = []string{}
	}
	if p.ApprovalEnabled && p.Status != StatusPlanning && p.Status != StatusFinishPlanning && p.Status != StatusWaitFinishPlanningCheck &&
		p.Status != StatusWaitFinishPlanningCheckFailed {
		ds, err := decisions(ctx, q, p)
		if err != nil {
			return nil, err
		}
		out.Approval.Decisions = ds
		out.Approval.Status = approvalStatus(p, ds)
	}
	if ev, ok := waitingFor(p.Status); ok {
		out.ExternalCheck = &ExternalCheck{HookEvent: ev, Deadline: p.CheckDeadline}
	}
	for ev, st := range checkStatuses {
		if p.Status == st[1] {
			out.ExternalCheck = &ExternalCheck{HookEvent: ev, FailedReason: p.CheckFailedReason}
		}
	}
	out.Jobs = make([]Job, len(p.Jobs))
	for i, j := range p.Jobs {
		out.Jobs[i] = jobView(j)
	}
	return out, nil
}

func jobView(j *jobRow) Job {
	v := Job{ID: j.ID, Name: j.Name, Type: j.Type, ManagerID: j.ManagerID, Status: j.Status, Spec: j.Spec,
		ExecutedAt: j.ExecutedAt, Error: j.Error}
	if j.ExecByID != "" || j.ExecByName != "" {
		v.ExecutedBy = &event.Actor{ID: j.ExecByID, Name: j.ExecByName}
	}
	if j.Type == JobWorkflow {
		v.Spec = json.RawMessage(mustJSON(WorkflowSpec{Workflow: workflowBody(j), TaskID: j.TaskID, Status: j.TaskStatus}))
	}
	return v
}

// workflowBody is the task body a workflow job's stored spec holds.
func workflowBody(j *jobRow) json.RawMessage {
	var w struct {
		Workflow json.RawMessage `json:"workflow"`
	}
	_ = json.Unmarshal(j.Spec, &w)
	if len(w.Workflow) == 0 {
		return json.RawMessage(`{}`)
	}
	return w.Workflow
}

func textSpec(j *jobRow) TextSpec {
	var t TextSpec
	_ = json.Unmarshal(j.Spec, &t)
	return t
}
