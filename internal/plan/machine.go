package plan

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/riverqueue/river"

	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/event"
)

// The state machine: each function changes p in tx, writes the operation
// record, the events and the jobs the change causes. Callers hold the
// plan's row lock.

type statusChange struct {
	Status string `json:"status"`
}

func (s *Service) touch(p *planRow, actor event.Actor) {
	p.UpdatedAt = s.stamp()
	p.UpdatedByID, p.UpdatedByName = actor.ID, actor.Name
}

// move sets the plan's status, saves the plan and records the move as
// action.
func (s *Service) move(ctx context.Context, tx db.Tx, p *planRow, actor event.Actor, action, to, detail string) error {
	from := p.Status
	p.Status = to
	s.touch(p, actor)
	if err := savePlan(ctx, tx, p); err != nil {
		return err
	}
	return s.writeLog(ctx, tx, p, actor, logEntry{Action: action, Detail: detail,
		Before: statusChange{from}, After: statusChange{to}})
}

// newInstanceCode names a plan round.
func newInstanceCode() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// finishPlanning ends planning: planning → finish_planning, or its
// external check.
func (s *Service) finishPlanning(ctx context.Context, tx db.Tx, p *planRow, actor event.Actor) error {
	hs, err := loadSettings(ctx, tx)
	if err != nil {
		return err
	}
	now := s.stamp()
	p.PlanningTime = &now
	to := StatusFinishPlanning
	if hs.waits(HookFinishPlanning) {
		to = checkStatuses[HookFinishPlanning][0]
	}
	if err := s.move(ctx, tx, p, actor, "finish_planning", to, ""); err != nil {
		return err
	}
	if p.EndTime != nil {
		// The round's window end: a plan with work left then times out.
		if _, err := s.q.InsertTx(ctx, tx, WindowArgs{PlanID: p.ID, InstanceCode: p.InstanceCode},
			&river.InsertOpts{Queue: QueueName, ScheduledAt: *p.EndTime, UniqueOpts: river.UniqueOpts{ByArgs: true}}); err != nil {
			return fmt.Errorf("plan %s: schedule the window end: %w", p.ID, err)
		}
	}
	return s.moment(ctx, tx, p, actor, hs, HookFinishPlanning, nil)
}

// moment is one of the three moments the external system hears of: the
// plan event, the hook request, and when the plan waits for the check,
// its deadline. p already has the status of the moment.
func (s *Service) moment(ctx context.Context, tx db.Tx, p *planRow, actor event.Actor, hs *hookSettings, hookEvent string, extra func(*EventPlan)) error {
	if ev, ok := waitingFor(p.Status); ok && ev == hookEvent {
		deadline := s.stamp().Add(hs.CheckTimeout)
		p.CheckDeadline = &deadline
		p.CheckFailedReason = ""
		if err := savePlan(ctx, tx, p); err != nil {
			return err
		}
		if _, err := s.q.InsertTx(ctx, tx, CheckTimeoutArgs{PlanID: p.ID, InstanceCode: p.InstanceCode, HookEvent: hookEvent},
			&river.InsertOpts{Queue: QueueName, ScheduledAt: deadline, UniqueOpts: river.UniqueOpts{ByArgs: true}}); err != nil {
			return fmt.Errorf("plan %s: schedule the check timeout: %w", p.ID, err)
		}
	}
	if err := s.publish(ctx, tx, p, actor, momentEvents[hookEvent], func(o *EventPlan) {
		o.HookEvent = hookEvent
		if extra != nil {
			extra(o)
		}
	}); err != nil {
		return err
	}
	if hs.sends(hookEvent) {
		return s.enqueueHook(ctx, tx, p, hookEvent)
	}
	return nil
}

// startExecute starts execution: → executing, or its external check.
// before runs once the status is set and before the moment's event (the
// approval's own event goes first).
func (s *Service) startExecute(ctx context.Context, tx db.Tx, p *planRow, actor event.Actor, action string, before func() error) error {
	hs, err := loadSettings(ctx, tx)
	if err != nil {
		return err
	}
	wait := hs.waits(HookStartExecute)
	if wait {
		if err := s.move(ctx, tx, p, actor, action, checkStatuses[HookStartExecute][0], ""); err != nil {
			return err
		}
	} else if err := s.becomeExecuting(ctx, tx, p, actor, action, ""); err != nil {
		return err
	}
	if before != nil {
		if err := before(); err != nil {
			return err
		}
	}
	if err := s.moment(ctx, tx, p, actor, hs, HookStartExecute, nil); err != nil {
		return err
	}
	if wait {
		return nil
	}
	return s.checkAllDone(ctx, tx, p, actor)
}

// becomeExecuting moves the plan to executing and schedules its scheduled
// execution. A schedule time already past (the approval or the check came
// late) runs the jobs at once: the plan was meant to run by then.
func (s *Service) becomeExecuting(ctx context.Context, tx db.Tx, p *planRow, actor event.Actor, action, detail string) error {
	now := s.stamp()
	p.ExecutingTime = &now
	p.CheckDeadline = nil
	if err := s.move(ctx, tx, p, actor, action, StatusExecuting, detail); err != nil {
		return err
	}
	if p.ScheduleTime == nil {
		return nil
	}
	at := *p.ScheduleTime
	if at.Before(now) {
		at = now
	}
	if _, err := s.q.InsertTx(ctx, tx, ScheduleArgs{PlanID: p.ID, InstanceCode: p.InstanceCode},
		&river.InsertOpts{Queue: QueueName, ScheduledAt: at, UniqueOpts: river.UniqueOpts{ByArgs: true}}); err != nil {
		return fmt.Errorf("plan %s: schedule the execution: %w", p.ID, err)
	}
	return nil
}

// checkAllDone ends execution once every job is done or skipped: the
// all_job_done moment, then success or the all-done external check.
func (s *Service) checkAllDone(ctx context.Context, tx db.Tx, p *planRow, actor event.Actor) error {
	if p.Status != StatusExecuting || !p.allDone() {
		return nil
	}
	hs, err := loadSettings(ctx, tx)
	if err != nil {
		return err
	}
	if hs.waits(HookAllJobDone) {
		if err := s.move(ctx, tx, p, actor, "all_job_done", checkStatuses[HookAllJobDone][0], "every job is done or skipped"); err != nil {
			return err
		}
		return s.moment(ctx, tx, p, actor, hs, HookAllJobDone, nil)
	}
	// No check: the plan succeeds in this transaction, so the moment's
	// event and hook already say success.
	if err := s.markSuccess(ctx, tx, p, actor, "every job is done or skipped"); err != nil {
		return err
	}
	if err := s.moment(ctx, tx, p, actor, hs, HookAllJobDone, nil); err != nil {
		return err
	}
	return s.publish(ctx, tx, p, actor, event.PlanSuccess, nil)
}

func (s *Service) markSuccess(ctx context.Context, tx db.Tx, p *planRow, actor event.Actor, detail string) error {
	now := s.stamp()
	p.SuccessTime = &now
	p.CheckDeadline = nil
	return s.move(ctx, tx, p, actor, "success", StatusSuccess, detail)
}

func (s *Service) succeed(ctx context.Context, tx db.Tx, p *planRow, actor event.Actor, detail string) error {
	if err := s.markSuccess(ctx, tx, p, actor, detail); err != nil {
		return err
	}
	return s.publish(ctx, tx, p, actor, event.PlanSuccess, nil)
}

// checkFailed stops the plan in the failed status of the check it waited for.
func (s *Service) checkFailed(ctx context.Context, tx db.Tx, p *planRow, actor event.Actor, action, reason string) error {
	ev, ok := waitingFor(p.Status)
	if !ok {
		return nil
	}
	p.CheckFailedReason = reason
	p.CheckDeadline = nil
	return s.move(ctx, tx, p, actor, action, checkStatuses[ev][1], reason)
}

// checkPassed goes on from the check the plan waited for.
func (s *Service) checkPassed(ctx context.Context, tx db.Tx, p *planRow, actor event.Actor, action, detail string) error {
	ev, _ := waitingFor(p.Status)
	p.CheckDeadline = nil
	switch ev {
	case HookFinishPlanning:
		return s.move(ctx, tx, p, actor, action, StatusFinishPlanning, detail)
	case HookStartExecute:
		if err := s.becomeExecuting(ctx, tx, p, actor, action, detail); err != nil {
			return err
		}
		return s.checkAllDone(ctx, tx, p, actor)
	case HookAllJobDone:
		return s.succeed(ctx, tx, p, actor, detail)
	}
	return nil
}

// resetJobs prepares the jobs of a new round: done jobs stay done, the
// others start again. It returns the tasks still running, for the caller
// to cancel once the transaction has committed.
func (s *Service) resetJobs(ctx context.Context, tx db.Tx, p *planRow) ([]string, error) {
	var running []string
	for _, j := range p.Jobs {
		if j.Status == JobDone {
			continue
		}
		if j.Status == JobRunning && j.TaskID != "" {
			running = append(running, j.TaskID)
		}
		j.Status, j.TaskID, j.TaskStatus, j.LaunchToken, j.LaunchedAt, j.Error = JobTodo, "", "", "", nil, ""
		j.ExecByID, j.ExecByName, j.ExecutedAt = "", "", nil
		if err := saveJob(ctx, tx, j); err != nil {
			return nil, err
		}
	}
	return running, nil
}

// runningTasks lists the tasks of the plan's running jobs.
func runningTasks(p *planRow) []string {
	var out []string
	for _, j := range p.Jobs {
		if j.Status == JobRunning && j.TaskID != "" {
			out = append(out, j.TaskID)
		}
	}
	return out
}

// cancelTasks asks the engine to cancel tasks a plan no longer wants; a
// task that already ended is fine.
func (s *Service) cancelTasks(ctx context.Context, actor event.Actor, taskIDs []string) {
	for _, id := range taskIDs {
		if _, err := s.tasks.Cancel(context.WithoutCancel(ctx), actor, id); err != nil {
			s.log.Info("plan: cancelling a task the plan no longer runs", "task", id, "result", err)
		}
	}
}
