package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/herald-release/herald/internal/apperr"
	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/id"
	"github.com/herald-release/herald/internal/inventory"
	"github.com/herald-release/herald/internal/page"
	"github.com/herald-release/herald/internal/release/executor"
)

// The engine's API for handlers: create, read and act on tasks.

// Create validates and stores a task and queues its runner. Unknown
// project or environment are 404; everything else wrong in the body is a
// field-level 422; an environment with an active task is 409 conflict.
func (e *Engine) Create(ctx context.Context, actor event.Actor, in CreateInput) (*Task, error) {
	errs := in.normalize()
	if in.Type == TypeStop && in.Strategy == StrategyBlueGreen {
		errs.Add("strategy", "a stop task cannot be blue_green: there is nothing to switch to; use rolling")
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	if _, err := e.inv.GetEnvironment(ctx, in.ProjectID, in.Environment); err != nil {
		return nil, err
	}
	ver, err := e.resolveVersion(ctx, &in)
	if err != nil {
		return nil, err
	}
	var sealed string
	if in.Executor != nil {
		b, err := json.Marshal(in.Executor)
		if err != nil {
			return nil, err
		}
		if sealed, err = e.box.Seal(b); err != nil {
			return nil, err
		}
	}

	now := e.stamp()
	t := &taskRow{
		ID: id.New("tsk"), ProjectID: in.ProjectID, Environment: in.Environment,
		Type: in.Type, Strategy: in.Strategy, Status: StatusPending, Options: in.options(),
		Executor: sealed, Run: 1,
		CreatedByID: actor.ID, CreatedByName: actor.Name, ActorID: actor.ID, ActorName: actor.Name,
		CreatedAt: now, UpdatedAt: now,
	}
	if ver != nil {
		t.VersionID, t.VersionName, t.VersionDescription, t.Artifact = ver.ID, ver.Name, ver.Description, ver.Artifact
	}
	err = e.db.InTx(ctx, func(tx db.Tx) error {
		// Locking the environment row orders this task after a blue-green
		// switch finishing concurrently (so the live group read is current),
		// after a concurrent create (so its 409 can name the task), and
		// against a concurrent delete of the environment.
		var live string
		err := tx.QueryRow(ctx, `SELECT live_group FROM environments WHERE project_id = $1 AND name = $2`+forUpdate(tx),
			in.ProjectID, in.Environment).Scan(&live)
		if errors.Is(err, db.ErrNoRows) {
			return apperr.NotFound("environment %q not found in project %q", in.Environment, in.ProjectID)
		}
		if err != nil {
			return err
		}
		var other string
		err = tx.QueryRow(ctx, `SELECT id FROM release_tasks WHERE active_env = $1`, t.activeKey()).Scan(&other)
		if err == nil {
			return apperr.Conflict("environment %s already has an active task %s: wait for it to finish or cancel it", t.activeKey(), other)
		}
		if !errors.Is(err, db.ErrNoRows) {
			return err
		}
		all, err := e.inv.AllHosts(ctx, tx, in.ProjectID, in.Environment)
		if err != nil {
			return err
		}
		if t.Strategy == StrategyBlueGreen {
			t.TargetGroup = IdleGroup(live)
		}
		picked, verrs := selectHosts(all, in.Hosts, t.Strategy, t.TargetGroup)
		if c := t.Options.Canary; c != nil && c.Count > len(picked) && len(picked) > 0 {
			verrs.Add("canary.count", "is %d but the task has %d hosts", c.Count, len(picked))
		}
		if err := verrs.Err(); err != nil {
			return err
		}
		names := make([]string, len(picked))
		byName := make(map[string]*inventory.Host, len(picked))
		for i, h := range picked {
			names[i] = h.Name
			byName[h.Name] = h
		}
		pi := PlanInput{Strategy: t.Strategy, Hosts: names, BatchSize: in.BatchSize, BatchPercent: in.BatchPercent}
		if c := t.Options.Canary; c != nil {
			pi.CanaryCount = CanaryCount(len(names), c.Count, c.Percent)
		}
		if err := e.enqueueRun(ctx, tx, t); err != nil {
			return err
		}
		if err := insertTask(ctx, tx, t); err != nil {
			switch {
			case errors.Is(err, db.ErrUnique):
				return apperr.Conflict("environment %s already has an active task: wait for it to finish or cancel it", t.activeKey())
			case errors.Is(err, db.ErrForeignKey):
				return apperr.NotFound("environment %q not found in project %q", in.Environment, in.ProjectID)
			}
			return err
		}
		return insertPlan(ctx, tx, t.ID, MakePlan(pi), func(name string) *hostRow {
			h := byName[name]
			return &hostRow{Address: h.Address, Group: h.Labels[GroupLabel]}
		})
	})
	if err != nil {
		return nil, err
	}
	e.kick(ctx)
	return e.Get(ctx, t.ID)
}

// resolveVersion finds the version a task releases: the one named, or for
// a rollback the latest that succeeded before the one released last, or
// for a stop the one running now (for the script's information; it may be
// none).
func (e *Engine) resolveVersion(ctx context.Context, in *CreateInput) (*inventory.Version, error) {
	notFound := func(field, key string, err error) error {
		if ae := apperr.From(err); ae != nil && ae.Status == 404 {
			return apperr.Field(field, "no version %q in project %q", key, in.ProjectID)
		}
		return err
	}
	switch {
	case in.VersionID != "":
		v, err := e.inv.GetVersion(ctx, in.ProjectID, in.VersionID)
		if err != nil {
			return nil, notFound("version_id", in.VersionID, err)
		}
		if in.Version != "" && in.Version != v.Name {
			return nil, apperr.Field("version", "is %q but version_id %s is %q: give one of them", in.Version, v.ID, v.Name)
		}
		return v, nil
	case in.Version != "":
		v, err := e.inv.GetVersionByName(ctx, e.db, in.ProjectID, in.Version)
		if err != nil {
			return nil, notFound("version", in.Version, err)
		}
		return v, nil
	}
	var vid string
	var err error
	switch in.Type {
	case TypeRollback:
		var last string
		if last, err = lastReleasedVersion(ctx, e.db, in.ProjectID, in.Environment); err != nil {
			return nil, err
		}
		if vid, err = previousVersion(ctx, e.db, in.ProjectID, in.Environment, last); err != nil {
			return nil, err
		}
		if vid == "" {
			return nil, apperr.Field("version_id", "no earlier version succeeded in %s/%s, so there is nothing to roll back to: give version_id", in.ProjectID, in.Environment)
		}
	case TypeStop:
		if vid, err = currentVersion(ctx, e.db, in.ProjectID, in.Environment); err != nil || vid == "" {
			return nil, err
		}
	default:
		return nil, nil
	}
	return e.inv.GetVersion(ctx, in.ProjectID, vid)
}

// Get reads a task with its hosts and batches.
func (e *Engine) Get(ctx context.Context, taskID string) (*Task, error) {
	t, err := loadTask(ctx, e.db, taskID, "")
	if err != nil {
		return nil, err
	}
	hosts, err := loadHosts(ctx, e.db, taskID, 0)
	if err != nil {
		return nil, err
	}
	batches, err := loadBatches(ctx, e.db, taskID)
	if err != nil {
		return nil, err
	}
	out := e.view(t)
	out.Hosts = make([]Host, len(hosts))
	byBatch := map[int][]string{}
	slices.SortFunc(hosts, func(a, b *hostRow) int { return a.Position - b.Position })
	for i, h := range hosts {
		out.Hosts[i] = Host{Name: h.Name, Address: h.Address, Group: h.Group, Canary: h.Canary, Status: h.Status,
			Batch: h.Batch, Phase: h.Phase, StartedAt: h.StartedAt, FinishedAt: h.FinishedAt, ExitCode: h.ExitCode, Error: h.Error}
		byBatch[h.Batch] = append(byBatch[h.Batch], h.Name)
		out.Counts.Total++
		if h.Canary {
			out.Counts.Canary++
		}
		switch h.Status {
		case HostSuccess:
			out.Counts.Completed++
		case HostFailed:
			out.Counts.Failed++
		}
	}
	out.Batches = make([]Batch, len(batches))
	for i, b := range batches {
		names := byBatch[b.Number]
		if names == nil {
			names = []string{}
		}
		out.Batches[i] = Batch{Number: b.Number, Phase: b.Phase, Status: b.Status, Hosts: names, StartedAt: b.StartedAt, FinishedAt: b.FinishedAt}
	}
	return out, nil
}

// view is the API shape of a task row, without hosts and batches.
func (e *Engine) view(t *taskRow) *Task {
	out := &Task{
		ID: t.ID, ProjectID: t.ProjectID, Environment: t.Environment, VersionID: t.VersionID, Version: t.VersionName,
		Type: t.Type, Strategy: t.Strategy, Status: t.Status, Phase: t.Phase, TaskOptions: t.Options,
		TargetGroup: t.TargetGroup, CancelRequested: t.CancelRequested, AutoPromoteAt: t.PromoteAt,
		Run: t.Run, Error: t.Error, RollbackOf: t.RollbackOf, RollbackTaskID: t.RollbackTaskID,
		CreatedBy: event.Actor{ID: t.CreatedByID, Name: t.CreatedByName},
		CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt, StartedAt: t.StartedAt, FinishedAt: t.FinishedAt,
	}
	if t.Executor != "" {
		if spec, err := e.openSpec(t.Executor); err == nil {
			m := inventory.MaskExecutor(spec)
			out.Executor = &m
		}
	}
	switch {
	case t.StartedAt == nil:
		out.Duration = humanDuration(0)
	case t.FinishedAt != nil:
		out.Duration = humanDuration(t.FinishedAt.Sub(*t.StartedAt))
	default:
		out.Duration = humanDuration(e.now().Sub(*t.StartedAt))
	}
	return out
}

func (e *Engine) openSpec(sealed string) (executor.Spec, error) {
	var spec executor.Spec
	plain, err := e.box.Open(sealed)
	if err != nil {
		return spec, fmt.Errorf("the task's executor cannot be decrypted (was HERALD_SECRET_KEY changed?): %w", err)
	}
	if err := json.Unmarshal(plain, &spec); err != nil {
		return spec, fmt.Errorf("the task's executor is corrupt: %w", err)
	}
	return spec, nil
}

// Filter selects tasks in List.
type Filter struct {
	ProjectID   string
	Environment string
	Status      string
}

// List lists tasks, newest first, with their counts but without hosts.
func (e *Engine) List(ctx context.Context, f Filter, p page.Params) (page.Page[*Task], error) {
	if f.Status != "" && !slices.Contains(statuses, f.Status) {
		return page.Page[*Task]{}, apperr.Field("status", "must be one of %s", strings.Join(statuses, ", "))
	}
	rows, err := e.db.Query(ctx, `SELECT `+taskCols+` FROM release_tasks
		WHERE ($1 = '' OR project_id = $1) AND ($2 = '' OR environment = $2) AND ($3 = '' OR status = $3)
		  AND ($4 = '' OR id < $4)
		ORDER BY id DESC LIMIT $5`, f.ProjectID, f.Environment, f.Status, p.After, p.Limit+1)
	if err != nil {
		return page.Page[*Task]{}, err
	}
	var ts []*taskRow
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			rows.Close()
			return page.Page[*Task]{}, err
		}
		ts = append(ts, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return page.Page[*Task]{}, err
	}
	ids := make([]string, len(ts))
	for i, t := range ts {
		ids[i] = t.ID
	}
	counts, err := countMany(ctx, e.db, ids)
	if err != nil {
		return page.Page[*Task]{}, err
	}
	out := make([]*Task, len(ts))
	for i, t := range ts {
		out[i] = e.view(t)
		out[i].Counts = counts[t.ID]
	}
	return page.Make(out, p, func(t *Task) string { return t.ID }), nil
}

// act runs an API action on a locked task and returns the task after it.
func (e *Engine) act(ctx context.Context, taskID string, fn func(tx db.Tx, t *taskRow) error) (*Task, error) {
	err := e.db.InTx(ctx, func(tx db.Tx) error {
		t, err := lockTask(ctx, tx, taskID)
		if err != nil {
			return err
		}
		return fn(tx, t)
	})
	if err != nil {
		return nil, err
	}
	e.kick(ctx)
	return e.Get(ctx, taskID)
}

// Promote moves a paused task on to its rollout (canary) or switch
// (blue-green).
func (e *Engine) Promote(ctx context.Context, actor event.Actor, taskID string) (*Task, error) {
	return e.act(ctx, taskID, func(tx db.Tx, t *taskRow) error {
		if t.Status != StatusPaused {
			return apperr.InvalidState("task %s is %s: only a paused task can be promoted", t.ID, t.Status)
		}
		return e.promote(ctx, tx, t, actor)
	})
}

// Cancel stops a task. A pending or paused task is cancelled at once; a
// running one finishes the hosts running now, skips the rest and then
// becomes cancelled (cancel_requested shows it is on its way).
func (e *Engine) Cancel(ctx context.Context, actor event.Actor, taskID string) (*Task, error) {
	return e.act(ctx, taskID, func(tx db.Tx, t *taskRow) error {
		switch t.Status {
		case StatusPending, StatusPaused:
			t.ActorID, t.ActorName = actor.ID, actor.Name
			return e.cancel(ctx, tx, t)
		case StatusRunning:
			if t.CancelRequested {
				return nil
			}
			t.CancelRequested = true
			t.ActorID, t.ActorName = actor.ID, actor.Name
			return e.saveTask(ctx, tx, t)
		}
		return apperr.InvalidState("task %s is %s: only a pending, running or paused task can be cancelled", t.ID, t.Status)
	})
}

// Retry runs a failed task again over its failed and skipped hosts. When
// the failure was rolled back automatically, every host went back to the
// old version, so every host runs again. The environment must be free.
func (e *Engine) Retry(ctx context.Context, actor event.Actor, taskID string) (*Task, error) {
	return e.act(ctx, taskID, func(tx db.Tx, t *taskRow) error {
		if t.Status != StatusFailed {
			return apperr.InvalidState("task %s is %s: only a failed task can be retried", t.ID, t.Status)
		}
		all := t.RollbackTaskID != ""
		if all {
			if _, err := tx.Exec(ctx, `UPDATE release_task_hosts SET batch = plan_batch,
				phase = CASE WHEN canary THEN 'canary' ELSE 'rollout' END WHERE task_id = $1`, t.ID); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE release_task_hosts SET status = $2, started_at = NULL, finished_at = NULL,
			exit_code = NULL, error = '', output = ''
			WHERE task_id = $1 AND (status IN ($3, $4) OR $5)`, t.ID, HostPending, HostFailed, HostSkipped, all); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE release_task_batches SET status = $2, started_at = NULL, finished_at = NULL
			WHERE task_id = $1 AND (status <> $3 OR number IN (SELECT batch FROM release_task_hosts WHERE task_id = $1 AND status = $2))`,
			t.ID, HostPending, HostSuccess); err != nil {
			return err
		}
		t.Status, t.Phase, t.Run, t.Error = StatusPending, "", t.Run+1, ""
		t.CancelRequested, t.StartedAt, t.FinishedAt, t.RollbackTaskID = false, nil, nil, ""
		t.ActorID, t.ActorName = actor.ID, actor.Name
		if err := e.enqueueRun(ctx, tx, t); err != nil {
			return err
		}
		return e.saveTask(ctx, tx, t)
	})
}

// Logs returns a host's output: live while this process runs it, else as
// stored when it finished.
func (e *Engine) Logs(ctx context.Context, taskID, host string) (string, error) {
	if strings.TrimSpace(host) == "" {
		return "", apperr.Field("host", "is required: ?host=<name>")
	}
	var out string
	err := e.db.QueryRow(ctx, `SELECT output FROM release_task_hosts WHERE task_id = $1 AND name = $2`, taskID, host).Scan(&out)
	if errors.Is(err, db.ErrNoRows) {
		if _, err := loadTask(ctx, e.db, taskID, ""); err != nil {
			return "", err
		}
		return "", apperr.NotFound("host %q is not part of task %s", host, taskID)
	}
	if err != nil {
		return "", err
	}
	if live, ok := e.liveOutput(taskID, host); ok {
		return live, nil
	}
	return out, nil
}
