package plan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/event"
)

// EventPlan is the release_plan object of plan events (CONTRACT §6): the
// plan as it stood at the moment of the event.
type EventPlan struct {
	ID                  string         `json:"id"`
	Index               int64          `json:"index"`
	Name                string         `json:"name"`
	Status              string         `json:"status"`
	Manager             string         `json:"manager"`
	ManagerID           string         `json:"manager_id"`
	InstanceCode        string         `json:"instance_code"`
	StartTime           *time.Time     `json:"start_time"`
	EndTime             *time.Time     `json:"end_time"`
	ScheduleExecuteTime *time.Time     `json:"schedule_execute_time"`
	Approval            *EventApproval `json:"approval,omitempty"`
	Jobs                []EventJob     `json:"jobs"`
	// HookEvent is the moment of a moment event (finish_planning,
	// start_execute, all_job_done).
	HookEvent string `json:"hook_event,omitempty"`
	// Comment is the approver's comment of plan_approved and plan_denied.
	Comment string `json:"comment,omitempty"`
}

// EventApproval says who is asked to approve.
type EventApproval struct {
	Mode      string        `json:"mode"`
	Approvers []event.Actor `json:"approvers"`
}

// EventJob is a job as events show it.
type EventJob struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Type      string `json:"type"`
	Status    string `json:"status"`
	ManagerID string `json:"manager_id,omitempty"`
	TaskID    string `json:"task_id,omitempty"`
}

// momentEvents maps hook events to the plan events of the same moments.
var momentEvents = map[string]string{
	HookFinishPlanning: event.PlanFinishPlanning,
	HookStartExecute:   event.PlanStartExecute,
	HookAllJobDone:     event.PlanAllJobDone,
}

// publish writes a plan event in tx. Its dedupe key makes each event once
// per plan round (instance_code): a moment replayed after a crash, or a
// second path to the same moment, is a no-op.
func (s *Service) publish(ctx context.Context, tx db.Tx, p *planRow, actor event.Actor, eventType string, extra func(*EventPlan)) error {
	names, err := userNames(ctx, tx, p.userIDs())
	if err != nil {
		return err
	}
	obj := EventPlan{
		ID: p.ID, Index: p.Number, Name: p.Name, Status: p.Status, Manager: names[p.ManagerID], ManagerID: p.ManagerID,
		InstanceCode: p.InstanceCode, StartTime: p.StartTime, EndTime: p.EndTime, ScheduleExecuteTime: p.ScheduleTime,
		Jobs: make([]EventJob, len(p.Jobs)),
	}
	if p.ApprovalEnabled {
		a := &EventApproval{Mode: p.ApprovalMode, Approvers: make([]event.Actor, len(p.Approvers))}
		for i, id := range p.Approvers {
			a.Approvers[i] = event.Actor{ID: id, Name: names[id]}
		}
		obj.Approval = a
	}
	for i, j := range p.Jobs {
		obj.Jobs[i] = EventJob{ID: j.ID, Name: j.Name, Type: j.Type, Status: j.Status, ManagerID: j.ManagerID, TaskID: j.TaskID}
	}
	if extra != nil {
		extra(&obj)
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	a := actor
	ev := &event.Envelope{
		EventType:   eventType,
		ReleasePlan: raw,
		Timestamp:   s.stamp(),
		Actor:       &a,
		URL:         s.url() + "/plans/" + p.ID,
	}
	if ev.Project, err = planProject(ctx, tx, p); err != nil {
		return err
	}
	if p.ExecutingTime != nil && (eventType == event.PlanAllJobDone || eventType == event.PlanSuccess || eventType == event.PlanTimeout) {
		ev.Duration = humanDuration(ev.Timestamp.Sub(*p.ExecutingTime))
	}
	_, err = s.pub.Publish(ctx, tx, ev, event.Options{
		ObjectID:  p.ID,
		PlanID:    p.ID,
		DedupeKey: fmt.Sprintf("%s:%s:%s", p.ID, p.InstanceCode, eventType),
	})
	return err
}

// planProject is the project a plan's events belong to: the one project
// all its workflow jobs release, so that the project's callback
// configurations hear of it; none (global configurations only) otherwise.
func planProject(ctx context.Context, tx db.Tx, p *planRow) (*event.ProjectRef, error) {
	project := ""
	for _, j := range p.Jobs {
		if j.Type != JobWorkflow {
			continue
		}
		var w struct {
			ProjectID string `json:"project_id"`
		}
		_ = json.Unmarshal(workflowBody(j), &w)
		if project != "" && w.ProjectID != project {
			return nil, nil
		}
		project = w.ProjectID
	}
	if project == "" {
		return nil, nil
	}
	var ref event.ProjectRef
	err := tx.QueryRow(ctx, `SELECT id, name, description FROM projects WHERE id = $1`, project).
		Scan(&ref.ID, &ref.Name, &ref.Description)
	if errors.Is(err, db.ErrNoRows) {
		return nil, nil // deleted since: the event is global
	}
	if err != nil {
		return nil, err
	}
	return &ref, nil
}

// humanDuration renders a duration for people: milliseconds under a
// second, whole seconds above.
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
