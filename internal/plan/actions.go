package plan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/herald-release/herald/internal/apperr"
	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/id"
	"github.com/herald-release/herald/internal/page"
)

// Caller is who calls the API: the actor, and whether the caller is an
// admin (admins may move any plan, but never execute someone else's).
type Caller struct {
	event.Actor
	Admin bool
}

// may tells whether the caller may change the plan's status: its manager,
// or an admin.
func (c Caller) may(p *planRow) error {
	if p.isManager(c.ID) || c.Admin {
		return nil
	}
	return apperr.Forbidden("only the plan's manager (or an admin) may do this")
}

// Create stores a new plan in planning.
func (s *Service) Create(ctx context.Context, c Caller, in Input) (*Plan, error) {
	sp, err := s.validate(ctx, in)
	if err != nil {
		return nil, err
	}
	now := s.stamp()
	p := &planRow{
		ID: id.New("pln"), Status: StatusPlanning, InstanceCode: newInstanceCode(),
		CreatedByID: c.ID, CreatedByName: c.Name, UpdatedByID: c.ID, UpdatedByName: c.Name,
		CreatedAt: now, UpdatedAt: now,
	}
	p.apply(sp)
	for i, js := range sp.Jobs {
		p.Jobs = append(p.Jobs, &jobRow{ID: id.New("pjob"), PlanID: p.ID, Position: i, Name: js.Name, Type: js.Type,
			ManagerID: js.ManagerID, Spec: js.Spec, Status: JobTodo})
	}
	err = s.db.InTx(ctx, func(tx db.Tx) error {
		if err := insertPlan(ctx, tx, p); err != nil {
			return err
		}
		for _, j := range p.Jobs {
			if err := insertJob(ctx, tx, j); err != nil {
				return err
			}
		}
		return s.writeLog(ctx, tx, p, c.Actor, logEntry{Action: "create", After: editable(p)})
	})
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, p.ID)
}

func (p *planRow) apply(sp *spec) {
	p.Name, p.ManagerID, p.StartTime, p.EndTime, p.ScheduleTime = sp.Name, sp.ManagerID, sp.Start, sp.End, sp.Schedule
	p.Description, p.Sprints = sp.Description, sp.Sprints
	p.ApprovalEnabled, p.Approvers, p.ApprovalMode = sp.Approval.Enabled, sp.Approval.Approvers, sp.Approval.Mode
}

// editable is what an edit can change, for the operation record.
func editable(p *planRow) map[string]any {
	jobs := make([]map[string]any, len(p.Jobs))
	for i, j := range p.Jobs {
		jobs[i] = map[string]any{"id": j.ID, "name": j.Name, "type": j.Type, "manager_id": j.ManagerID, "spec": j.Spec, "status": j.Status}
	}
	return map[string]any{
		"name": p.Name, "manager_id": p.ManagerID, "start_time": p.StartTime, "end_time": p.EndTime,
		"schedule_execute_time": p.ScheduleTime, "description": p.Description, "jira_sprints": p.Sprints,
		"approval": map[string]any{"enabled": p.ApprovalEnabled, "approvers": p.Approvers, "mode": p.ApprovalMode},
		"jobs":     jobs,
	}
}

// Get reads a plan.
func (s *Service) Get(ctx context.Context, planID string) (*Plan, error) {
	p, err := loadPlan(ctx, s.db, planID, "")
	if err != nil {
		return nil, err
	}
	return s.view(ctx, s.db, p, nil)
}

// Filter narrows List.
type Filter struct {
	Status    string
	ManagerID string
}

// List lists plans, newest first.
func (s *Service) List(ctx context.Context, f Filter, pp page.Params) (page.Page[*Plan], error) {
	if f.Status != "" && !contains(Statuses(), f.Status) {
		return page.Page[*Plan]{}, apperr.Field("status", "is not a plan status: %q", f.Status)
	}
	if strings.ContainsRune(f.ManagerID+pp.After, 0) {
		return page.Page[*Plan]{}, apperr.Field("manager_id", "must not contain NUL characters")
	}
	rows, err := s.db.Query(ctx, `SELECT `+planCols+` FROM release_plans
		WHERE ($1 = '' OR id < $1) AND ($2 = '' OR status = $2) AND ($3 = '' OR manager_id = $3)
		ORDER BY id DESC LIMIT $4`, pp.After, f.Status, f.ManagerID, pp.Limit+1)
	if err != nil {
		return page.Page[*Plan]{}, err
	}
	var rs []*planRow
	for rows.Next() {
		p, err := scanPlan(rows)
		if err != nil {
			rows.Close()
			return page.Page[*Plan]{}, err
		}
		rs = append(rs, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return page.Page[*Plan]{}, err
	}
	ids := make([]string, len(rs))
	byID := map[string]*planRow{}
	for i, p := range rs {
		ids[i] = p.ID
		byID[p.ID] = p
	}
	jobs, err := loadJobs(ctx, s.db, ids)
	if err != nil {
		return page.Page[*Plan]{}, err
	}
	var users []string
	for _, j := range jobs {
		byID[j.PlanID].Jobs = append(byID[j.PlanID].Jobs, j)
	}
	for _, p := range rs {
		users = append(users, p.userIDs()...)
	}
	names, err := userNames(ctx, s.db, users)
	if err != nil {
		return page.Page[*Plan]{}, err
	}
	out := make([]*Plan, len(rs))
	for i, p := range rs {
		if out[i], err = s.view(ctx, s.db, p, names); err != nil {
			return page.Page[*Plan]{}, err
		}
	}
	return page.Make(out, pp, func(p *Plan) string { return p.ID }), nil
}

// Update edits a plan in planning. Fields the body leaves out keep their
// values; every edit gives the plan a new instance_code.
func (s *Service) Update(ctx context.Context, c Caller, planID string, body map[string]json.RawMessage) (*Plan, error) {
	cur, err := loadPlan(ctx, s.db, planID, "")
	if err != nil {
		return nil, err
	}
	if cur.Status != StatusPlanning {
		return nil, apperr.InvalidState("plan %s is %s: it can only be edited while planning (replan it first)", planID, cur.Status)
	}
	merged := currentInput(cur)
	for k, v := range body {
		merged[k] = v
	}
	in, err := DecodeInput([]byte(mustJSON(merged)))
	if err != nil {
		return nil, err
	}
	sp, err := s.validate(ctx, in)
	if err != nil {
		return nil, err
	}
	err = s.db.InTx(ctx, func(tx db.Tx) error {
		p, err := lockPlan(ctx, tx, planID)
		if err != nil {
			return err
		}
		if p.Status != StatusPlanning {
			return apperr.InvalidState("plan %s is %s: it can only be edited while planning (replan it first)", planID, p.Status)
		}
		before := editable(p)
		old := map[string]*jobRow{}
		for _, j := range p.Jobs {
			old[j.ID] = j
		}
		p.apply(sp)
		p.Jobs = nil
		for i, js := range sp.Jobs {
			j := &jobRow{ID: js.ID, PlanID: p.ID, Position: i, Name: js.Name, Type: js.Type, ManagerID: js.ManagerID, Spec: js.Spec, Status: JobTodo}
			if o := old[js.ID]; o != nil {
				if o.Type == js.Type && string(o.Spec) == string(js.Spec) {
					// Unchanged: a job done in an earlier round stays done.
					j.Status, j.TaskID, j.TaskStatus, j.Error = o.Status, o.TaskID, o.TaskStatus, o.Error
					j.ExecByID, j.ExecByName, j.ExecutedAt = o.ExecByID, o.ExecByName, o.ExecutedAt
				}
			} else {
				j.ID = id.New("pjob")
			}
			p.Jobs = append(p.Jobs, j)
		}
		p.InstanceCode = newInstanceCode()
		s.touch(p, c.Actor)
		if err := savePlan(ctx, tx, p); err != nil {
			return err
		}
		if err := replaceJobs(ctx, tx, p); err != nil {
			return err
		}
		return s.writeLog(ctx, tx, p, c.Actor, logEntry{Action: "update", Before: before, After: editable(p)})
	})
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, planID)
}

// Delete removes a plan that is not under way: in planning, denied,
// stopped by a failed check, or ended. Its manager, its creator or an
// admin may.
func (s *Service) Delete(ctx context.Context, c Caller, planID string) error {
	return s.db.InTx(ctx, func(tx db.Tx) error {
		p, err := lockPlan(ctx, tx, planID)
		if err != nil {
			return err
		}
		if !p.isManager(c.ID) && p.CreatedByID != c.ID && !c.Admin {
			return apperr.Forbidden("only the plan's manager, its creator or an admin may delete it")
		}
		deletable := p.Status == StatusPlanning || p.Status == StatusDenied || final(p.Status) || p.Status == StatusTimeout ||
			strings.HasSuffix(p.Status, "_external_check_failed")
		if !deletable || len(runningTasks(p)) > 0 {
			return apperr.InvalidState("plan %s is %s: cancel it before deleting it", planID, p.Status)
		}
		_, err = tx.Exec(ctx, `DELETE FROM release_plans WHERE id = $1`, planID)
		return err
	})
}

// act runs fn on the locked plan and returns the plan as it is after.
func (s *Service) act(ctx context.Context, planID string, fn func(tx db.Tx, p *planRow) error) (*Plan, error) {
	err := s.db.InTx(ctx, func(tx db.Tx) error {
		p, err := lockPlan(ctx, tx, planID)
		if err != nil {
			return err
		}
		return fn(tx, p)
	})
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, planID)
}

func wrongState(p *planRow, action string, want ...string) error {
	return apperr.InvalidState("plan %s is %s: %s needs %s", p.ID, p.Status, action, strings.Join(want, " or "))
}

// FinishPlanning ends planning (planning → finish_planning or its
// external check).
func (s *Service) FinishPlanning(ctx context.Context, c Caller, planID string) (*Plan, error) {
	return s.act(ctx, planID, func(tx db.Tx, p *planRow) error {
		if err := c.may(p); err != nil {
			return err
		}
		if p.Status != StatusPlanning {
			return wrongState(p, "finish-planning", StatusPlanning)
		}
		if len(p.Jobs) == 0 {
			return apperr.InvalidState("plan %s has no jobs: add at least one before finishing planning", p.ID)
		}
		if p.EndTime != nil && s.now().After(*p.EndTime) {
			return apperr.InvalidState("the release window ended at %s: move it before finishing planning",
				p.EndTime.UTC().Format("2006-01-02 15:04:05 UTC"))
		}
		return s.finishPlanning(ctx, tx, p, c.Actor)
	})
}

// SubmitApproval asks the approvers (finish_planning → wait_for_approval).
func (s *Service) SubmitApproval(ctx context.Context, c Caller, planID string) (*Plan, error) {
	return s.act(ctx, planID, func(tx db.Tx, p *planRow) error {
		if err := c.may(p); err != nil {
			return err
		}
		if p.Status != StatusFinishPlanning {
			return wrongState(p, "submit-approval", StatusFinishPlanning)
		}
		if !p.ApprovalEnabled {
			return apperr.InvalidState("plan %s has no approval configured: execute it directly", p.ID)
		}
		if err := s.move(ctx, tx, p, c.Actor, "submit_approval", StatusWaitApproval, ""); err != nil {
			return err
		}
		return s.publish(ctx, tx, p, c.Actor, event.PlanApprovalRequested, nil)
	})
}

// Approve records an approver's answer; the plan goes on to execution
// once the mode's approvals are in, and to denied at the first denial.
func (s *Service) Approve(ctx context.Context, c Caller, planID string, approve bool, comment string) (*Plan, error) {
	if len(comment) > MaxDescriptionLen {
		return nil, apperr.Field("comment", "must be at most %d bytes", MaxDescriptionLen)
	}
	if strings.ContainsRune(comment, 0) {
		return nil, apperr.Field("comment", "must not contain NUL characters")
	}
	return s.act(ctx, planID, func(tx db.Tx, p *planRow) error {
		if p.Status != StatusWaitApproval {
			return wrongState(p, "approve", StatusWaitApproval)
		}
		if !contains(p.Approvers, c.ID) {
			return apperr.Forbidden("only the plan's approvers may approve or deny it")
		}
		now := s.stamp()
		n, err := tx.Exec(ctx, `INSERT INTO release_plan_approvals (plan_id, instance_code, user_id, user_name, approve, comment, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (plan_id, instance_code, user_id) DO NOTHING`,
			p.ID, p.InstanceCode, c.ID, c.Name, approve, comment, now)
		if err != nil {
			return err
		}
		if n == 0 {
			return apperr.Conflict("you have already answered this approval")
		}
		ds, err := decisions(ctx, tx, p)
		if err != nil {
			return err
		}
		result := approvalStatus(p, ds)
		action := "approve"
		if !approve {
			action = "deny"
		}
		if err := s.writeLog(ctx, tx, p, c.Actor, logEntry{Action: action, Detail: comment,
			Before: map[string]any{"status": p.Status}, After: map[string]any{"approval": result}}); err != nil {
			return err
		}
		withComment := func(o *EventPlan) { o.Comment = comment }
		switch result {
		case ApprovalDenied:
			p.ApprovalTime = &now
			if err := s.move(ctx, tx, p, c.Actor, "denied", StatusDenied, comment); err != nil {
				return err
			}
			return s.publish(ctx, tx, p, c.Actor, event.PlanDenied, withComment)
		case ApprovalApproved:
			p.ApprovalTime = &now
			return s.startExecute(ctx, tx, p, c.Actor, "start_execute", func() error {
				return s.publish(ctx, tx, p, c.Actor, event.PlanApproved, withComment)
			})
		}
		s.touch(p, c.Actor)
		return savePlan(ctx, tx, p)
	})
}

// Execute starts execution of a plan without approval (finish_planning →
// executing or its external check): its manager only, inside the window.
func (s *Service) Execute(ctx context.Context, c Caller, planID string) (*Plan, error) {
	return s.act(ctx, planID, func(tx db.Tx, p *planRow) error {
		if !p.isManager(c.ID) {
			return apperr.Forbidden("only the plan's manager may execute it")
		}
		if p.Status != StatusFinishPlanning {
			return wrongState(p, "execute", StatusFinishPlanning)
		}
		if p.ApprovalEnabled {
			return apperr.InvalidState("plan %s needs approval: submit it for approval; approval starts the execution", p.ID)
		}
		if err := p.inWindow(s.now()); err != nil {
			return err
		}
		return s.startExecute(ctx, tx, p, c.Actor, "execute", nil)
	})
}

// Replan takes the plan back to planning with a new instance_code: jobs
// done stay done, the others start again (their running tasks are
// cancelled), approvals and checks of the old round no longer count.
func (s *Service) Replan(ctx context.Context, c Caller, planID string) (*Plan, error) {
	var cancel []string
	out, err := s.act(ctx, planID, func(tx db.Tx, p *planRow) error {
		if err := c.may(p); err != nil {
			return err
		}
		if p.Status == StatusPlanning || final(p.Status) {
			return apperr.InvalidState("plan %s is %s: there is nothing to replan", p.ID, p.Status)
		}
		var err error
		if cancel, err = s.resetJobs(ctx, tx, p); err != nil {
			return err
		}
		old := p.InstanceCode
		p.InstanceCode = newInstanceCode()
		p.PlanningTime, p.ApprovalTime, p.ExecutingTime, p.SuccessTime, p.CheckDeadline = nil, nil, nil, nil, nil
		p.CheckFailedReason = ""
		return s.move(ctx, tx, p, c.Actor, "replan", StatusPlanning, fmt.Sprintf("instance_code %s → %s", old, p.InstanceCode))
	})
	if err == nil {
		s.cancelTasks(ctx, c.Actor, cancel)
	}
	return out, err
}

// Cancel ends the plan (→ cancel) and cancels its running tasks.
func (s *Service) Cancel(ctx context.Context, c Caller, planID string) (*Plan, error) {
	var cancel []string
	out, err := s.act(ctx, planID, func(tx db.Tx, p *planRow) error {
		if err := c.may(p); err != nil {
			return err
		}
		if final(p.Status) {
			return apperr.InvalidState("plan %s is already %s", p.ID, p.Status)
		}
		cancel = runningTasks(p)
		p.CheckDeadline = nil
		if err := s.move(ctx, tx, p, c.Actor, "cancel", StatusCancel, ""); err != nil {
			return err
		}
		return s.publish(ctx, tx, p, c.Actor, event.PlanCancelled, nil)
	})
	if err == nil {
		s.cancelTasks(ctx, c.Actor, cancel)
	}
	return out, err
}

// Logs lists the operation record, oldest first.
func (s *Service) Logs(ctx context.Context, planID string, pp page.Params) (page.Page[*LogEntry], error) {
	if _, err := loadPlan(ctx, s.db, planID, ""); err != nil {
		return page.Page[*LogEntry]{}, err
	}
	rows, err := s.db.Query(ctx, `SELECT id, plan_id, actor_id, actor_name, action, target_type, target_id, target_name,
		detail, before_json, after_json, created_at FROM release_plan_logs WHERE plan_id = $1 AND id > $2 ORDER BY id LIMIT $3`,
		planID, pp.After, pp.Limit+1)
	if err != nil {
		return page.Page[*LogEntry]{}, err
	}
	defer rows.Close()
	var out []*LogEntry
	for rows.Next() {
		var l LogEntry
		var before, after string
		if err := rows.Scan(&l.ID, &l.PlanID, &l.Actor.ID, &l.Actor.Name, &l.Action, &l.TargetType, &l.TargetID, &l.TargetName,
			&l.Detail, &before, &after, &l.CreatedAt); err != nil {
			return page.Page[*LogEntry]{}, err
		}
		if before != "" {
			l.Before = json.RawMessage(before)
		}
		if after != "" {
			l.After = json.RawMessage(after)
		}
		out = append(out, &l)
	}
	if err := rows.Err(); err != nil {
		return page.Page[*LogEntry]{}, err
	}
	return page.Make(out, pp, func(l *LogEntry) string { return l.ID }), nil
}

// isNotFound tells a missing plan (or row) apart.
func isNotFound(err error) bool {
	ae := apperr.From(err)
	return ae != nil && ae.Status == 404 || errors.Is(err, db.ErrNoRows)
}
