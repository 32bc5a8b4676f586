package plan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/release/engine"
)

// River jobs of plans. Each carries the plan round (instance_code) it was
// made for and does nothing when the plan has moved on to another round,
// so a replan never needs to find and delete them.

// ScheduleArgs is a plan's scheduled execution: at schedule_execute_time
// the workflow jobs still todo or failed are run. An environment runs one
// task at a time, so jobs behind an earlier job of the plan in the same
// environment wait for a follow-up (Wave > 0, JobIDs the jobs still to
// start), which tries again every followUpEvery.
type ScheduleArgs struct {
	PlanID       string   `json:"plan_id"`
	InstanceCode string   `json:"instance_code"`
	Wave         int      `json:"wave,omitempty"`
	JobIDs       []string `json:"job_ids,omitempty"`
}

// followUpEvery is how often a scheduled execution looks whether the jobs
// waiting for their environment can start.
const followUpEvery = 3 * time.Second

// envOf names a workflow job's environment.
func envOf(j *jobRow) string {
	var w struct {
		ProjectID   string `json:"project_id"`
		Environment string `json:"environment"`
	}
	_ = json.Unmarshal(workflowBody(j), &w)
	return w.ProjectID + "/" + w.Environment
}

// Kind names the job for River.
func (ScheduleArgs) Kind() string { return "plan.schedule" }

type scheduleWorker struct {
	river.WorkerDefaults[ScheduleArgs]
	s *Service
}

func (w *scheduleWorker) Timeout(*river.Job[ScheduleArgs]) time.Duration { return 10 * time.Minute }

func (w *scheduleWorker) Work(ctx context.Context, job *river.Job[ScheduleArgs]) error {
	return w.s.runSchedule(ctx, job.Args)
}

// runSchedule is the scheduled execution of a plan round: inside the
// window, every workflow job still todo or failed is started, as the
// system.
func (s *Service) runSchedule(ctx context.Context, a ScheduleArgs) error {
	var launches []*launch
	err := s.db.InTx(ctx, func(tx db.Tx) error {
		p, err := lockPlan(ctx, tx, a.PlanID)
		if err != nil {
			return err
		}
		if p.InstanceCode != a.InstanceCode {
			return nil
		}
		if p.Status != StatusExecuting {
			return s.writeLog(ctx, tx, p, SystemActor, logEntry{Action: "schedule_execute",
				Detail: fmt.Sprintf("scheduled execution skipped: the plan is %s", p.Status)})
		}
		if err := p.inWindow(s.now()); err != nil {
			return s.writeLog(ctx, tx, p, SystemActor, logEntry{Action: "schedule_execute",
				Detail: "scheduled execution skipped: " + err.Error()})
		}
		busy := map[string]bool{}
		for _, j := range p.Jobs {
			if j.Type == JobWorkflow && j.Status == JobRunning {
				busy[envOf(j)] = true
			}
		}
		var names, waiting []string
		for _, j := range p.Jobs {
			if j.Type != JobWorkflow {
				continue
			}
			if a.Wave == 0 && j.Status != JobTodo && j.Status != JobFailed {
				continue
			}
			if a.Wave > 0 && (!contains(a.JobIDs, j.ID) || j.Status != JobTodo) {
				continue
			}
			env := envOf(j)
			if busy[env] {
				waiting = append(waiting, j.ID)
				continue
			}
			busy[env] = true
			l, err := s.startLaunch(ctx, tx, p, j, SystemActor, "job_execute", true)
			if err != nil {
				return err
			}
			launches = append(launches, l)
			names = append(names, j.Name)
		}
		if len(waiting) > 0 {
			if _, err := s.q.InsertTx(ctx, tx, ScheduleArgs{PlanID: p.ID, InstanceCode: p.InstanceCode, Wave: a.Wave + 1, JobIDs: waiting},
				&river.InsertOpts{Queue: QueueName, ScheduledAt: s.now().Add(followUpEvery), UniqueOpts: river.UniqueOpts{ByArgs: true}}); err != nil {
				return err
			}
		}
		if len(names) == 0 && a.Wave > 0 {
			return nil // still waiting: nothing to record
		}
		return s.writeLog(ctx, tx, p, SystemActor, logEntry{Action: "schedule_execute",
			Detail: fmt.Sprintf("scheduled execution: %d workflow job(s) started %v, %d waiting for their environment", len(names), names, len(waiting))})
	})
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range launches {
		if err := s.finishLaunch(ctx, l); err != nil {
			errs = append(errs, err)
		}
	}
	// A launch that failed internally leaves its job running without a
	// task; reconciliation settles it. Retrying the whole schedule would
	// start the others twice.
	if err := errors.Join(errs...); err != nil {
		s.log.Error("plan: scheduled execution could not start every job", "plan", a.PlanID, "error", err)
	}
	return nil
}

// WindowArgs ends a plan round's window at end_time.
type WindowArgs struct {
	PlanID       string `json:"plan_id"`
	InstanceCode string `json:"instance_code"`
}

// Kind names the job for River.
func (WindowArgs) Kind() string { return "plan.window_end" }

type windowWorker struct {
	river.WorkerDefaults[WindowArgs]
	s *Service
}

func (w *windowWorker) Work(ctx context.Context, job *river.Job[WindowArgs]) error {
	s := w.s
	err := s.db.InTx(ctx, func(tx db.Tx) error {
		p, err := lockPlan(ctx, tx, job.Args.PlanID)
		if err != nil {
			return err
		}
		if p.InstanceCode != job.Args.InstanceCode || !contains(timesOut, p.Status) {
			return nil
		}
		if p.EndTime != nil && s.now().Before(*p.EndTime) {
			// River ran it early (clock skew between processes): wait.
			return river.JobSnooze(p.EndTime.Sub(s.now()))
		}
		p.CheckDeadline = nil
		if err := s.move(ctx, tx, p, SystemActor, "timeout", StatusTimeout, "the release window ended with work left"); err != nil {
			return err
		}
		return s.publish(ctx, tx, p, SystemActor, event.PlanTimeout, nil)
	})
	if isNotFound(err) {
		return nil
	}
	return err
}

// CheckTimeoutArgs fails an external check that got no answer in time.
type CheckTimeoutArgs struct {
	PlanID       string `json:"plan_id"`
	InstanceCode string `json:"instance_code"`
	HookEvent    string `json:"hook_event"`
}

// Kind names the job for River.
func (CheckTimeoutArgs) Kind() string { return "plan.check_timeout" }

type checkTimeoutWorker struct {
	river.WorkerDefaults[CheckTimeoutArgs]
	s *Service
}

func (w *checkTimeoutWorker) Work(ctx context.Context, job *river.Job[CheckTimeoutArgs]) error {
	s := w.s
	err := s.db.InTx(ctx, func(tx db.Tx) error {
		p, err := lockPlan(ctx, tx, job.Args.PlanID)
		if err != nil {
			return err
		}
		ev, ok := waitingFor(p.Status)
		if p.InstanceCode != job.Args.InstanceCode || !ok || ev != job.Args.HookEvent {
			return nil
		}
		if p.CheckDeadline != nil && s.now().Before(*p.CheckDeadline) {
			return river.JobSnooze(p.CheckDeadline.Sub(s.now()))
		}
		hs, err := loadSettings(ctx, tx)
		if err != nil {
			return err
		}
		return s.checkFailed(ctx, tx, p, SystemActor, "check_timeout",
			fmt.Sprintf("no answer from the external system within check_timeout (%s)", hs.CheckTimeout))
	})
	if isNotFound(err) {
		return nil
	}
	return err
}

// ReconcileArgs is the periodic reconciliation of running jobs.
type ReconcileArgs struct{}

// Kind names the job for River.
func (ReconcileArgs) Kind() string { return "plan.reconcile" }

type reconcileWorker struct {
	river.WorkerDefaults[ReconcileArgs]
	s *Service
}

func (w *reconcileWorker) Work(ctx context.Context, _ *river.Job[ReconcileArgs]) error {
	return w.s.Reconcile(ctx)
}

// Reconcile settles running workflow jobs whose task ended without the
// plan hearing of it, and fails those left without a task by a process
// that died while creating it.
func (s *Service) Reconcile(ctx context.Context) error {
	type running struct {
		planID, jobID, taskID, token string
		launched                     *time.Time
	}
	rows, err := s.db.Query(ctx, `SELECT plan_id, id, task_id, launch_token, launched_at FROM release_plan_jobs WHERE status = 'running'`)
	if err != nil {
		return err
	}
	var rs []running
	for rows.Next() {
		var r running
		if err := rows.Scan(&r.planID, &r.jobID, &r.taskID, &r.token, &r.launched); err != nil {
			rows.Close()
			return err
		}
		rs = append(rs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	now := s.now()
	for _, r := range rs {
		if r.taskID == "" && (r.launched == nil || now.Sub(*r.launched) < launchGrace) {
			continue
		}
		err := s.db.InTx(ctx, func(tx db.Tx) error {
			status := ""
			if r.taskID != "" {
				err := tx.QueryRow(ctx, `SELECT status FROM release_tasks WHERE id = $1`+forUpdate(tx), r.taskID).Scan(&status)
				if errors.Is(err, db.ErrNoRows) {
					status = engine.StatusCancelled // deleted with its environment
				} else if err != nil {
					return err
				}
			}
			p, err := lockPlan(ctx, tx, r.planID)
			if err != nil {
				return err
			}
			j := p.job(r.jobID)
			if j == nil || j.Status != JobRunning || j.TaskID != r.taskID {
				return nil
			}
			if r.taskID != "" {
				return s.taskEnded(ctx, tx, p, j, status)
			}
			if j.LaunchToken != r.token {
				return nil
			}
			j.Status, j.LaunchToken = JobFailed, ""
			j.Error = "Herald stopped while starting the job's release task; check the environment's tasks, then retry or skip the job"
			if err := saveJob(ctx, tx, j); err != nil {
				return err
			}
			return s.writeLog(ctx, tx, p, SystemActor, jobLog(j, "job_status", j.Error, statusChange{JobRunning}, statusChange{JobFailed}))
		})
		if err != nil && !isNotFound(err) {
			return err
		}
	}
	return nil
}
