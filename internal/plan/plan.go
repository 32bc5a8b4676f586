// Package plan runs release plans (CONTRACT §7): a named, owned bundle of
// release jobs (text items and workflow items that each run a release
// task) with a release window, an optional scheduled execution, an
// optional approval, and an external system that is told of the plan's
// moments and may be asked to check them.
//
// # Statuses
//
//	planning ──finish-planning──▶ finish_planning ──submit-approval──▶ wait_for_approval ──approve──▶ executing
//	                                    │                                     └──deny──▶ denied
//	                                    └──execute (no approval configured)──▶ executing
//	executing ──every job done or skipped──▶ success
//
// When the plan hook is enabled with a callback for a moment, the move of
// that moment goes through wait_for_E_external_check (E is finish_planning,
// execute or all_done) until the external system answers
// POST /api/callback/release_plan: success goes on, failed (or no answer
// within check_timeout, or a hook that could not be delivered) stops in
// wait_for_E_external_check_failed. Every status but success and cancel
// can be cancelled (running tasks are cancelled too), and all of those but
// planning replanned: back to planning with a new instance_code, jobs that
// are done kept, the others reset and their running tasks cancelled. A plan
// that still has work when its window ends (finish_planning,
// wait_for_approval, executing, or waiting for the finish-planning or
// execute check) becomes timeout; tasks already running are left to end,
// and their jobs still follow them.
//
// Approval moves an approved plan on to execution at once (as the seed's
// system does), so the manager's next step is running the jobs; execute
// is for plans without approval.
//
// # Who may do what
//
// Anyone signed in may create and edit a plan while it is planning
// (planning is collaborative). The plan's manager, or an admin, moves it
// (finish-planning, submit-approval, replan, cancel). Only approvers
// answer an approval. Only the plan's manager executes the plan, and only
// the plan's manager or the job's own manager executes, skips or retries
// a job, and only inside the release window; admins included.
//
// # Scheduled execution
//
// When a plan round becomes executing with a schedule_execute_time, a
// River job (unique per plan and instance_code, so it survives restarts
// and runs once) starts every workflow job still todo or failed at that
// time, inside the window, as the system. A schedule time already past
// when execution begins (a late approval or check) runs at once. An
// environment runs one task at a time, so jobs of one environment start
// one after the other, in the plan's order. Text jobs are always completed
// by people.
//
// # Hook and callback
//
// At each moment listed in hook_events (finish_planning, start_execute,
// all_job_done) Herald POSTs the seed's body to hook_address through the
// egress policy, with X-Herald-Event: release_plan, X-Herald-Action: the
// moment, X-Herald-Token: hook_secret, and the Standard Webhooks headers:
// webhook-id (the hook request's id, the same on every retry),
// webhook-timestamp, and webhook-signature "v1," + base64(HMAC-SHA256(key,
// id + "." + timestamp + "." + body)). The key is SigningKey(hook_secret):
// for a secret of the form "whsec_<base64>" its decoded bytes, otherwise
// the secret's UTF-8 bytes, so a receiver verifies with any Standard
// Webhooks library given "whsec_" + base64(hook_secret). Transport errors,
// 408, 429 and 5xx are retried on HERALD_RETRY_SCHEDULE (Retry-After
// honoured); every attempt is kept (GET /api/v1/release/plans/{id}/hooks).
// A request that fails for good fails the check waiting for it. The body
// is built when the moment happens and is sent unchanged on every attempt.
//
// The callback (POST /api/callback/release_plan) authenticates with
// X-Herald-Token = hook_secret and must quote the plan's current
// instance_code and the moment the plan waits for. The same answer twice
// is applied once and answered 200 both times.
//
// # Divergence from the seed
//
// In the seed, a plan is complete once every job is done, skipped or
// failed. Here a failed job keeps the plan executing: the plan becomes
// success only when every job is done or skipped, so a failure is either
// fixed (retry) or consciously accepted (skip), never silently counted as
// a release.
//
// # Consistency
//
// Every change is one transaction that also writes the operation record,
// the plan events (CONTRACT §6, each moment once per instance_code through
// its dedupe key), the hook request and the River jobs it causes. Release
// tasks are created by the engine in its own transaction, so starting a
// workflow job takes two of ours around it; a workflow job follows its
// task through the engine's task events, which this package receives
// inside the engine's transaction (event.Publisher.Subscribe), and a
// periodic reconciliation catches anything missed.
package plan

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/riverqueue/river"

	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/inventory"
	"github.com/herald-release/herald/internal/queue"
	"github.com/herald-release/herald/internal/release/engine"
	"github.com/herald-release/herald/internal/secret"
)

// Plan statuses, exactly those of the seed.
const (
	StatusPlanning       = "planning"
	StatusFinishPlanning = "finish_planning"
	StatusWaitApproval   = "wait_for_approval"
	StatusExecuting      = "executing"
	StatusDenied         = "denied"
	StatusTimeout        = "timeout"
	StatusSuccess        = "success"
	StatusCancel         = "cancel"

	StatusWaitFinishPlanningCheck       = "wait_for_finish_planning_external_check"
	StatusWaitFinishPlanningCheckFailed = "wait_for_finish_planning_external_check_failed"
	StatusWaitExecuteCheck              = "wait_for_execute_external_check"
	StatusWaitExecuteCheckFailed        = "wait_for_execute_external_check_failed"
	StatusWaitAllDoneCheck              = "wait_for_all_done_external_check"
	StatusWaitAllDoneCheckFailed        = "wait_for_all_done_external_check_failed"
)

// Statuses lists every plan status.
func Statuses() []string {
	return []string{StatusPlanning, StatusFinishPlanning, StatusWaitApproval, StatusExecuting, StatusDenied,
		StatusTimeout, StatusSuccess, StatusCancel,
		StatusWaitFinishPlanningCheck, StatusWaitFinishPlanningCheckFailed,
		StatusWaitExecuteCheck, StatusWaitExecuteCheckFailed,
		StatusWaitAllDoneCheck, StatusWaitAllDoneCheckFailed}
}

// Job types and statuses.
const (
	JobText     = "text"
	JobWorkflow = "workflow"

	JobTodo    = "todo"
	JobRunning = "running"
	JobDone    = "done"
	JobFailed  = "failed"
	JobSkipped = "skipped"
)

// Hook events: the moments the external system hears of (hook_events,
// event_name of the hook body, hook_event of the callback).
const (
	HookFinishPlanning = "finish_planning"
	HookStartExecute   = "start_execute"
	HookAllJobDone     = "all_job_done"
)

// HookEvents lists the hook events in the order they happen.
func HookEvents() []string { return []string{HookFinishPlanning, HookStartExecute, HookAllJobDone} }

// Approval modes.
const (
	ModeAny = "any"
	ModeAll = "all"
)

// checkStatuses maps a hook event to the statuses of waiting for its
// external check and of that check having failed.
var checkStatuses = map[string][2]string{
	HookFinishPlanning: {StatusWaitFinishPlanningCheck, StatusWaitFinishPlanningCheckFailed},
	HookStartExecute:   {StatusWaitExecuteCheck, StatusWaitExecuteCheckFailed},
	HookAllJobDone:     {StatusWaitAllDoneCheck, StatusWaitAllDoneCheckFailed},
}

// waitingFor returns the hook event a status waits on, if it is a wait.
func waitingFor(status string) (string, bool) {
	for ev, s := range checkStatuses {
		if s[0] == status {
			return ev, true
		}
	}
	return "", false
}

// final statuses: nothing moves the plan any more.
func final(status string) bool { return status == StatusSuccess || status == StatusCancel }

// timesOut lists the statuses that become timeout when the window ends:
// the plan still had work to do (an approval, a check before execution,
// jobs). A plan in planning or denied waits for people to replan it, and
// the all-done check and the failed checks have their own ends.
var timesOut = []string{StatusFinishPlanning, StatusWaitApproval, StatusExecuting,
	StatusWaitFinishPlanningCheck, StatusWaitExecuteCheck}

// SystemActor acts for Herald itself: scheduled execution, timeouts, task
// results, external checks.
var SystemActor = event.Actor{ID: "system", Name: "system"}

// Tasks is what plans need of the release engine; *engine.Engine is one.
type Tasks interface {
	Create(ctx context.Context, actor event.Actor, in engine.CreateInput) (*engine.Task, error)
	Get(ctx context.Context, taskID string) (*engine.Task, error)
	Retry(ctx context.Context, actor event.Actor, taskID string) (*engine.Task, error)
	Cancel(ctx context.Context, actor event.Actor, taskID string) (*engine.Task, error)
}

// QueueName is the River queue of the plan jobs: hooks, schedules,
// timeouts, reconciliation.
const QueueName = "plan"

// Defaults of Options.
const (
	DefaultReconcileEvery = 30 * time.Second
	// launchGrace is how long a workflow job may stay running without a
	// task before reconciliation decides its process died while creating
	// the task.
	launchGrace = 2 * time.Minute
)

// DefaultHookRetrySchedule is the hook's retry schedule when Options has none.
var DefaultHookRetrySchedule = []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute,
	10 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour}

// Options configure a Service.
type Options struct {
	DB        *db.DB
	Queue     *queue.Queue
	Publisher *event.Publisher
	Tasks     Tasks
	// Inventory checks that a workflow job's environment exists.
	Inventory *inventory.Service
	Box       *secret.Box
	// HTTP sends hooks; it must go through the egress policy.
	HTTP *http.Client
	// CheckURL validates hook_address at save time.
	CheckURL func(string) error
	// PublicURL gives HERALD_PUBLIC_URL for links in events.
	PublicURL func() string
	// Version is Herald's version, for the User-Agent.
	Version string
	// HookRetrySchedule is the wait before each retry of a hook request.
	HookRetrySchedule []time.Duration
	// ReconcileEvery is the period of the reconciliation job.
	ReconcileEvery time.Duration
	Log            *slog.Logger
}

// Service runs release plans.
type Service struct {
	db      *db.DB
	q       *queue.Queue
	pub     *event.Publisher
	tasks   Tasks
	inv     *inventory.Service
	box     *secret.Box
	http    *http.Client
	check   func(string) error
	url     func() string
	version string
	retries []time.Duration
	every   time.Duration
	log     *slog.Logger
	now     func() time.Time
}

// New builds the service and registers its queue, workers, periodic
// reconciliation and its subscriber to task events. Call it before the
// queue is built.
func New(o Options) (*Service, error) {
	if o.DB == nil || o.Queue == nil || o.Publisher == nil || o.Tasks == nil || o.Box == nil {
		return nil, errors.New("plan: DB, Queue, Publisher, Tasks and Box are required")
	}
	s := &Service{
		db: o.DB, q: o.Queue, pub: o.Publisher, tasks: o.Tasks, inv: o.Inventory, box: o.Box,
		http: o.HTTP, check: o.CheckURL, url: o.PublicURL, version: o.Version,
		retries: o.HookRetrySchedule, every: o.ReconcileEvery, log: o.Log, now: time.Now,
	}
	if s.url == nil {
		s.url = func() string { return "" }
	}
	if len(s.retries) == 0 {
		s.retries = DefaultHookRetrySchedule
	}
	if s.every <= 0 {
		s.every = DefaultReconcileEvery
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	o.Queue.AddQueue(QueueName, 10)
	w := o.Queue.Workers()
	river.AddWorker(w, &hookWorker{s: s})
	river.AddWorker(w, &scheduleWorker{s: s})
	river.AddWorker(w, &windowWorker{s: s})
	river.AddWorker(w, &checkTimeoutWorker{s: s})
	river.AddWorker(w, &reconcileWorker{s: s})
	o.Queue.AddPeriodic(river.NewPeriodicJob(river.PeriodicInterval(s.every),
		func() (river.JobArgs, *river.InsertOpts) {
			return ReconcileArgs{}, &river.InsertOpts{Queue: QueueName}
		},
		&river.PeriodicJobOpts{RunOnStart: true}))
	o.Publisher.Subscribe(s.onEvent)
	return s, nil
}

func (s *Service) stamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// forUpdate locks selected rows on PostgreSQL; SQLite's write transactions
// are already exclusive.
func forUpdate(tx db.Tx) string {
	if tx.Dialect() == db.Postgres {
		return " FOR UPDATE"
	}
	return ""
}

func contains(list []string, v string) bool { return slices.Contains(list, v) }
