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
	"github.com/herald-release/herald/internal/release/engine"
)

// Jobs: running workflow jobs as release tasks, completing text jobs,
// skipping and retrying, and following tasks to their end.

// jobCheck is what every job action checks: the plan executes, the caller
// manages the plan or the job, and the window is open.
func (s *Service) jobCheck(p *planRow, c Caller, jobID, action string) (*jobRow, error) {
	j := p.job(jobID)
	if j == nil {
		return nil, apperr.NotFound("plan %s has no job %q", p.ID, jobID)
	}
	if !p.isManager(c.ID) && (j.ManagerID == "" || j.ManagerID != c.ID) {
		return nil, apperr.Forbidden("only the plan's manager or the job's manager may %s it", action)
	}
	if p.Status != StatusExecuting {
		return nil, wrongState(p, action+" a job", StatusExecuting)
	}
	if err := p.inWindow(s.now()); err != nil {
		return nil, err
	}
	return j, nil
}

// ExecuteJob runs a workflow job (its release task is created) or
// completes a text job with a remark.
func (s *Service) ExecuteJob(ctx context.Context, c Caller, planID, jobID, remark string) (*Plan, error) {
	if strings.ContainsRune(remark, 0) || len(remark) > MaxDescriptionLen {
		return nil, apperr.Field("remark", "must be at most %d bytes of text", MaxDescriptionLen)
	}
	var l *launch
	out, err := s.act(ctx, planID, func(tx db.Tx, p *planRow) error {
		j, err := s.jobCheck(p, c, jobID, "execute")
		if err != nil {
			return err
		}
		if j.Type == JobText {
			if j.Status != JobTodo {
				return apperr.InvalidState("job %s is %s: only a todo text job can be completed", j.ID, j.Status)
			}
			before := j.Status
			t := textSpec(j)
			if remark != "" {
				t.Remark = remark
			}
			j.Spec = json.RawMessage(mustJSON(t))
			j.Status = JobDone
			s.executedBy(j, c.Actor)
			if err := saveJob(ctx, tx, j); err != nil {
				return err
			}
			if err := s.writeLog(ctx, tx, p, c.Actor, jobLog(j, "job_complete", remark, statusChange{before}, statusChange{j.Status})); err != nil {
				return err
			}
			s.touch(p, c.Actor)
			if err := savePlan(ctx, tx, p); err != nil {
				return err
			}
			return s.checkAllDone(ctx, tx, p, c.Actor)
		}
		if j.Status != JobTodo {
			return apperr.InvalidState("job %s is %s: only a todo workflow job can be executed (retry a failed one)", j.ID, j.Status)
		}
		l, err = s.startLaunch(ctx, tx, p, j, c.Actor, "job_execute", false)
		return err
	})
	if err != nil || l == nil {
		return out, err
	}
	if err := s.finishLaunch(ctx, l); err != nil {
		return nil, err
	}
	return s.Get(ctx, planID)
}

// RetryJob runs a failed workflow job again: its failed task is retried
// by the engine, or a new task is created when the task cannot be retried.
func (s *Service) RetryJob(ctx context.Context, c Caller, planID, jobID string) (*Plan, error) {
	var l *launch
	_, err := s.act(ctx, planID, func(tx db.Tx, p *planRow) error {
		j, err := s.jobCheck(p, c, jobID, "retry")
		if err != nil {
			return err
		}
		if j.Type != JobWorkflow || j.Status != JobFailed {
			return apperr.InvalidState("job %s is a %s job in %s: only a failed workflow job can be retried", j.ID, j.Type, j.Status)
		}
		l, err = s.startLaunch(ctx, tx, p, j, c.Actor, "job_retry", false)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := s.finishLaunch(ctx, l); err != nil {
		return nil, err
	}
	return s.Get(ctx, planID)
}

// SkipJob skips a job that is todo or failed.
func (s *Service) SkipJob(ctx context.Context, c Caller, planID, jobID string) (*Plan, error) {
	return s.act(ctx, planID, func(tx db.Tx, p *planRow) error {
		j, err := s.jobCheck(p, c, jobID, "skip")
		if err != nil {
			return err
		}
		if j.Status != JobTodo && j.Status != JobFailed {
			return apperr.InvalidState("job %s is %s: only a todo or failed job can be skipped", j.ID, j.Status)
		}
		before := j.Status
		j.Status = JobSkipped
		s.executedBy(j, c.Actor)
		if err := saveJob(ctx, tx, j); err != nil {
			return err
		}
		if err := s.writeLog(ctx, tx, p, c.Actor, jobLog(j, "job_skip", "", statusChange{before}, statusChange{j.Status})); err != nil {
			return err
		}
		s.touch(p, c.Actor)
		if err := savePlan(ctx, tx, p); err != nil {
			return err
		}
		return s.checkAllDone(ctx, tx, p, c.Actor)
	})
}

func (s *Service) executedBy(j *jobRow, a event.Actor) {
	now := s.stamp()
	j.ExecByID, j.ExecByName, j.ExecutedAt = a.ID, a.Name, &now
}

// launch is a workflow job whose task is being started: marked running
// with a token in one transaction, the task created by the engine in its
// own, and recorded in a third that checks the token first.
type launch struct {
	planID, jobID, token string
	actor                event.Actor
	// retryTask is the failed task to retry; "" creates a new one.
	retryTask  string
	body       json.RawMessage
	prevStatus string
	prevTask   string
	prevTaskSt string
	// system: a scheduled launch; a refusal fails the job instead of
	// being answered to a caller.
	system bool
}

func (s *Service) startLaunch(ctx context.Context, tx db.Tx, p *planRow, j *jobRow, a event.Actor, action string, system bool) (*launch, error) {
	l := &launch{planID: p.ID, jobID: j.ID, token: id.New("lch"), actor: a, body: workflowBody(j),
		prevStatus: j.Status, prevTask: j.TaskID, prevTaskSt: j.TaskStatus, system: system}
	if j.Status == JobFailed && j.TaskID != "" && j.TaskStatus == engine.StatusFailed {
		l.retryTask = j.TaskID
	}
	now := s.stamp()
	j.Status, j.LaunchToken, j.LaunchedAt, j.Error = JobRunning, l.token, &now, ""
	if l.retryTask == "" {
		j.TaskID, j.TaskStatus = "", ""
	}
	s.executedBy(j, a)
	if err := saveJob(ctx, tx, j); err != nil {
		return nil, err
	}
	if err := s.writeLog(ctx, tx, p, a, jobLog(j, action, "", statusChange{l.prevStatus}, statusChange{j.Status})); err != nil {
		return nil, err
	}
	s.touch(p, a)
	return l, savePlan(ctx, tx, p)
}

// finishLaunch creates (or retries) the task, outside any transaction, and
// records it. A refusal by the engine (another task active in the
// environment, a body the engine rejects) is answered to the caller with
// the job back where it was; a scheduled launch fails the job instead.
func (s *Service) finishLaunch(ctx context.Context, l *launch) error {
	var task *engine.Task
	var err error
	if l.retryTask != "" {
		task, err = s.tasks.Retry(ctx, l.actor, l.retryTask)
	} else {
		var in engine.CreateInput
		if err = json.Unmarshal(l.body, &in); err == nil {
			task, err = s.tasks.Create(ctx, l.actor, in)
		}
	}
	refusal := apperr.From(err)
	if err != nil && refusal == nil {
		// An internal error: the task may or may not exist. The job stays
		// running without a task; reconciliation fails it after launchGrace.
		return fmt.Errorf("plan %s job %s: start its task: %w", l.planID, l.jobID, err)
	}
	var orphan string
	txErr := s.db.InTx(ctx, func(tx db.Tx) error {
		taskStatus := ""
		if task != nil {
			// Lock the task before the plan, as the engine's transactions
			// (and so our subscriber) do: a task that finished since Create
			// is seen finished here, or its end waits for this commit and
			// then finds the job.
			err := tx.QueryRow(ctx, `SELECT status FROM release_tasks WHERE id = $1`+forUpdate(tx), task.ID).Scan(&taskStatus)
			if err != nil && !errors.Is(err, db.ErrNoRows) {
				return err
			}
		}
		p, err := lockPlan(ctx, tx, l.planID)
		if err != nil {
			return err
		}
		j := p.job(l.jobID)
		if j == nil || j.LaunchToken != l.token || j.Status != JobRunning {
			// Reset (replan) or the plan cancelled meanwhile: the task is
			// no longer wanted.
			if task != nil && (j == nil || j.TaskID != task.ID) {
				orphan = task.ID
			}
			return nil
		}
		j.LaunchToken = ""
		if refusal != nil {
			if l.system {
				j.Status, j.Error = JobFailed, refusal.Message
				if err := saveJob(ctx, tx, j); err != nil {
					return err
				}
				return s.writeLog(ctx, tx, p, l.actor, jobLog(j, "job_status", "the task could not be started: "+refusal.Message,
					statusChange{JobRunning}, statusChange{JobFailed}))
			}
			j.Status, j.TaskID, j.TaskStatus = l.prevStatus, l.prevTask, l.prevTaskSt
			if err := saveJob(ctx, tx, j); err != nil {
				return err
			}
			return s.writeLog(ctx, tx, p, l.actor, jobLog(j, "job_status", "the task could not be started: "+refusal.Message,
				statusChange{JobRunning}, statusChange{j.Status}))
		}
		j.TaskID = task.ID
		j.TaskStatus = task.Status
		if taskStatus != "" {
			j.TaskStatus = taskStatus
		}
		if err := saveJob(ctx, tx, j); err != nil {
			return err
		}
		if err := s.writeLog(ctx, tx, p, l.actor, jobLog(j, "job_task", "release task "+task.ID, nil,
			map[string]string{"task_id": task.ID, "task_status": j.TaskStatus})); err != nil {
			return err
		}
		return s.taskEnded(ctx, tx, p, j, j.TaskStatus)
	})
	if orphan != "" {
		s.cancelTasks(ctx, SystemActor, []string{orphan})
	}
	if txErr != nil {
		return txErr
	}
	if refusal != nil && !l.system {
		return refusal
	}
	return nil
}

// taskEnded moves a running job whose task reached status: done on
// success, failed on failure or cancellation; then the plan may be done.
func (s *Service) taskEnded(ctx context.Context, tx db.Tx, p *planRow, j *jobRow, status string) error {
	if j.Status != JobRunning || engine.Active(status) || status == "" {
		return nil
	}
	to, detail := JobDone, "release task "+j.TaskID+" succeeded"
	switch status {
	case engine.StatusFailed:
		to, detail = JobFailed, "release task "+j.TaskID+" failed"
	case engine.StatusCancelled:
		to, detail = JobFailed, "release task "+j.TaskID+" was cancelled"
	}
	j.Status, j.TaskStatus, j.LaunchToken = to, status, ""
	if to == JobFailed {
		j.Error = detail
	}
	if err := saveJob(ctx, tx, j); err != nil {
		return err
	}
	if err := s.writeLog(ctx, tx, p, SystemActor, jobLog(j, "job_status", detail, statusChange{JobRunning}, statusChange{to})); err != nil {
		return err
	}
	s.touch(p, SystemActor)
	if err := savePlan(ctx, tx, p); err != nil {
		return err
	}
	return s.checkAllDone(ctx, tx, p, SystemActor)
}

// onEvent follows release tasks: it runs inside the engine's transaction
// for every event, keeps a job's task status current and moves the job
// when its task ends.
func (s *Service) onEvent(ctx context.Context, tx db.Tx, ev *event.Envelope) error {
	if ev.ObjectKind != event.KindReleaseTask || ev.Task == nil || ev.Task.ID == "" {
		return nil
	}
	switch ev.EventType {
	case event.FullCompleted, event.ReleaseFailed, event.ReleaseCancelled:
	default:
		_, err := tx.Exec(ctx, `UPDATE release_plan_jobs SET task_status = $2 WHERE task_id = $1 AND status = 'running'`,
			ev.Task.ID, ev.Task.Status)
		return err
	}
	rows, err := tx.Query(ctx, `SELECT DISTINCT plan_id FROM release_plan_jobs WHERE task_id = $1 AND status = 'running'`, ev.Task.ID)
	if err != nil {
		return err
	}
	var plans []string
	for rows.Next() {
		var pid string
		if err := rows.Scan(&pid); err != nil {
			rows.Close()
			return err
		}
		plans = append(plans, pid)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, pid := range plans {
		p, err := lockPlan(ctx, tx, pid)
		if err != nil {
			return err
		}
		for _, j := range p.Jobs {
			if j.TaskID == ev.Task.ID && j.Status == JobRunning {
				if err := s.taskEnded(ctx, tx, p, j, ev.Task.Status); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
