package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/herald-release/herald/internal/apperr"
	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/id"
	"github.com/herald-release/herald/internal/release/executor"
	"github.com/herald-release/herald/internal/secret"
)

// The runner: one per task being worked, inside a River job. It claims the
// task's lease, then alternates between a transaction that decides the
// next step (start, run a batch, pause, finish) and running a batch's
// hosts. Host results are written in group commits: whatever finished
// while the previous write was in flight is written, together with the
// hosts started in their place, in the next transaction, so a thousand
// quick hosts need far fewer than two thousand transactions.

var (
	// errLeaseLost: another runner holds the task now; this one must stop
	// writing and leave.
	errLeaseLost = errors.New("the task's lease was taken over")
	// errInterrupted: the job's context ended (Herald is stopping); the
	// hosts running now are run again by the next runner.
	errInterrupted = errors.New("interrupted")
)

type runner struct {
	e     *Engine
	id    string
	token string
	spec  executor.Spec

	mu   sync.Mutex
	live map[string]*executor.Tail // output of hosts running now
}

// liveOutput is the output so far of a host this process is running.
func (e *Engine) liveOutput(taskID, host string) (string, bool) {
	e.mu.Lock()
	r := e.running[taskID]
	e.mu.Unlock()
	if r == nil {
		return "", false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.live[host]
	if !ok {
		return "", false
	}
	return cleanText(t.String()), true
}

// runTask works a task until it pauses, finishes, or this process stops.
// It returns an error only for what a retry of the job may fix.
func (e *Engine) runTask(ctx context.Context, taskID string) error {
	r := &runner{e: e, id: taskID, token: id.New("lease"), live: map[string]*executor.Tail{}}
	e.mu.Lock()
	if _, busy := e.running[taskID]; busy {
		e.mu.Unlock()
		return nil
	}
	e.running[taskID] = r
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.running, taskID)
		e.mu.Unlock()
	}()

	ok, err := e.claim(ctx, taskID, r.token)
	if err != nil || !ok {
		return err
	}
	rctx, stop := context.WithCancelCause(ctx)
	beat := make(chan struct{})
	go func() {
		defer close(beat)
		e.heartbeat(rctx, stop, taskID, r.token)
	}()
	err = r.loop(rctx)
	// A heartbeat may also find the lease gone just after the last step let
	// go of it: only an unfinished loop lost its task.
	lost := errors.Is(err, errLeaseLost) || (err != nil && errors.Is(context.Cause(rctx), errLeaseLost))
	stop(nil)
	<-beat
	if !lost {
		// A no-op when the last step already let go (pause, finish); after
		// an interruption it hands the task to the next runner at once.
		e.release(context.WithoutCancel(ctx), taskID, r.token)
	}
	switch {
	case lost:
		e.log.Warn("release: lost the lease of a task; another process runs it now", "task", taskID)
		return nil
	case errors.Is(err, errInterrupted) || ctx.Err() != nil:
		return nil
	}
	return err
}

func (r *runner) loop(ctx context.Context) error {
	t, err := loadTask(ctx, r.e.db, r.id, "")
	if err != nil {
		return err
	}
	if err := r.loadSpec(ctx, t); err != nil {
		var bad errBadExecutor
		switch {
		case errors.As(err, &bad):
			return r.failNow(ctx, err.Error())
		case apperr.From(err) != nil:
			return nil // the environment is gone, and its tasks with it
		}
		return err
	}
	var prev *step
	var out batchOutcome
	for {
		st, err := r.advance(ctx, prev, out)
		if err != nil || st == nil {
			return err
		}
		if out = r.runBatch(ctx, st); out.err != nil {
			return out.err
		}
		prev = st
	}
}

// errBadExecutor: the executor can never be read (wrong secret key,
// corrupt JSON); retrying cannot help, so the task fails saying why.
type errBadExecutor struct{ error }

// loadSpec picks the executor: the task's override, or the environment's
// as it is now, so that a retry after fixing the environment's script
// runs the fixed script.
func (r *runner) loadSpec(ctx context.Context, t *taskRow) error {
	if t.Executor != "" {
		spec, err := r.e.openSpec(t.Executor)
		r.spec = spec
		if err != nil {
			return errBadExecutor{err}
		}
		return nil
	}
	env, err := r.e.inv.GetEnvironment(ctx, t.ProjectID, t.Environment)
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, secret.ErrWrongKey) || errors.As(err, &syntax) || errors.As(err, &typ):
		return errBadExecutor{fmt.Errorf("the environment's executor cannot be read: %w", err)}
	case err != nil:
		return err
	}
	r.spec = env.Executor
	return nil
}

// retryTx runs a runner's transaction, again after a pause when it failed
// for a reason a retry may fix (a dropped connection, a failover). Giving
// up ends the runner, and the hosts it was running are run again by the
// next one, so a blip should not.
func (r *runner) retryTx(ctx context.Context, fn func(tx db.Tx) error) error {
	var err error
	for _, wait := range []time.Duration{0, 100 * time.Millisecond, 500 * time.Millisecond, 2 * time.Second} {
		if wait > 0 {
			r.e.log.Warn("release: a task's transaction failed; trying again", "task", r.id, "error", err)
			select {
			case <-ctx.Done():
				return err
			case <-time.After(wait):
			}
		}
		err = r.e.db.InTx(ctx, fn)
		if err == nil || errors.Is(err, errLeaseLost) || apperr.From(err) != nil || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// inTx runs fn on the task locked, if this runner still holds its lease.
func (r *runner) inTx(ctx context.Context, fn func(tx db.Tx, t *taskRow) error) error {
	return r.retryTx(ctx, func(tx db.Tx) error {
		t, err := lockTask(ctx, tx, r.id)
		if err != nil {
			return err
		}
		if t.LeaseToken != r.token {
			return errLeaseLost
		}
		return fn(tx, t)
	})
}

// failNow fails the task for a reason found before any batch ran.
func (r *runner) failNow(ctx context.Context, reason string) error {
	queued := false
	err := r.inTx(ctx, func(tx db.Tx, t *taskRow) error {
		if !Active(t.Status) {
			return nil
		}
		var err error
		queued, err = r.e.fail(ctx, tx, t, reason)
		return err
	})
	if queued {
		r.e.kick(ctx)
	}
	return err
}

// step is a batch to run.
type step struct {
	task       *taskRow
	batch      *batchRow
	prevOutput map[string]string
	cancel     bool
	parallel   int
	// queue holds the hosts still to start: those a dead runner left
	// running first, then the pending ones. first were started by advance.
	queue, first []*hostRow
	failedTotal  int // failed hosts of the task so far
	failedBatch  int // of them, in this batch
}

// tooMany tells whether the failures so far stop the batch. The canary
// tolerates none: it exists to stop a bad version before it spreads.
// max_failures applies to the rest.
func (st *step) tooMany() bool {
	if st.batch.Phase == PhaseCanary {
		return st.failedBatch > 0
	}
	return st.failedTotal > st.task.Options.MaxFailures
}

// pick takes from the queue the hosts to start now that running run.
// After a failure stop nothing starts; after a cancel only hosts a dead
// runner left running do: they were running when the cancel came.
func (st *step) pick(running int, stopFail, stopCancel bool) []*hostRow {
	var out []*hostRow
	for !stopFail && running+len(out) < st.parallel && len(st.queue) > 0 {
		if stopCancel && st.queue[0].Status != HostRunning {
			break
		}
		out, st.queue = append(out, st.queue[0]), st.queue[1:]
	}
	return out
}

// advance closes the batch just run (prev, writing its last results) and
// decides the next step, all in one transaction: start the task, pause or
// finish it, or hand back the next batch with its first hosts already
// marked running. One commit per batch boundary keeps the gap between
// batches, and the delay of the events written there, short.
func (r *runner) advance(ctx context.Context, prev *step, out batchOutcome) (*step, error) {
	var st *step
	queued := false
	err := r.inTx(ctx, func(tx db.Tx, t *taskRow) error {
		st, queued = nil, false
		if prev != nil {
			if err := writeResults(ctx, tx, r.id, out.done); err != nil {
				return err
			}
			more, q, err := r.closeBatch(ctx, tx, t, prev, out)
			if queued = q; err != nil || !more {
				return err
			}
		}
		if t.Status != StatusPending && t.Status != StatusRunning {
			return nil
		}
		if t.Status == StatusPending && t.CancelRequested {
			return r.e.cancel(ctx, tx, t)
		}
		bs, err := loadBatches(ctx, tx, t.ID)
		if err != nil {
			return err
		}
		b := nextBatch(bs)
		if b == nil {
			return r.e.succeed(ctx, tx, t)
		}
		if t.Status == StatusPending {
			if err := r.e.start(ctx, tx, t, b); err != nil {
				return err
			}
		}
		hosts, err := loadHosts(ctx, tx, t.ID, b.Number)
		if err != nil {
			return err
		}
		s := &step{task: t, batch: b, cancel: t.CancelRequested}
		var pending []*hostRow
		for _, h := range hosts {
			switch h.Status {
			case HostRunning:
				s.queue = append(s.queue, h)
			case HostPending:
				pending = append(pending, h)
			case HostFailed:
				s.failedBatch++
			}
		}
		if t.CancelRequested && len(s.queue) == 0 {
			return r.e.cancel(ctx, tx, t)
		}
		s.queue = append(s.queue, pending...)
		s.parallel = t.Options.MaxParallel
		if s.parallel <= 0 || s.parallel > len(s.queue) {
			s.parallel = len(s.queue)
		}
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM release_task_hosts WHERE task_id = $1 AND status = $2`,
			t.ID, HostFailed).Scan(&s.failedTotal); err != nil {
			return err
		}
		if b.Phase == PhaseSwitch {
			// The switch runs on hosts that already deployed: keep their
			// deploy output ahead of the switch's.
			if s.prevOutput, err = outputs(ctx, tx, t.ID, b.Number); err != nil {
				return err
			}
		}
		if b.Status == HostPending {
			if _, err := tx.Exec(ctx, `UPDATE release_task_batches SET status = $3, started_at = $4 WHERE task_id = $1 AND number = $2`,
				t.ID, b.Number, HostRunning, r.e.stamp()); err != nil {
				return err
			}
		}
		if t.Phase != b.Phase {
			t.Phase = b.Phase
			if err := r.e.saveTask(ctx, tx, t); err != nil {
				return err
			}
		}
		s.first = s.pick(0, s.tooMany(), s.cancel)
		if err := markRunning(ctx, tx, r.id, s.first, r.e.stamp()); err != nil {
			return err
		}
		st = s
		return nil
	})
	if err == nil {
		r.forget(out.done)
	}
	if queued {
		r.e.kick(ctx)
	}
	return st, err
}

func outputs(ctx context.Context, q db.Querier, taskID string, batch int) (map[string]string, error) {
	rows, err := q.Query(ctx, `SELECT name, output FROM release_task_hosts WHERE task_id = $1 AND batch = $2`, taskID, batch)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var n, o string
		if err := rows.Scan(&n, &o); err != nil {
			return nil, err
		}
		out[n] = o
	}
	return out, rows.Err()
}

// hostResult is how one host's run ended.
type hostResult struct {
	host        *hostRow
	status      string
	exitCode    *int
	err         string
	output      string
	at          time.Time
	interrupted bool
}

type batchOutcome struct {
	failed bool // more hosts failed than allowed
	// done are the batch's last results, not yet written: advance writes
	// them in the transaction that closes the batch.
	done []hostResult
	err  error
}

// runBatch runs the step's hosts, at most max_parallel at once, until all
// ran, too many failed, or a cancel stops new starts.
func (r *runner) runBatch(ctx context.Context, st *step) batchOutcome {
	results := make(chan hostResult, len(st.first)+len(st.queue))
	var wg sync.WaitGroup
	running := 0
	launch := func(hs []*hostRow) {
		for _, h := range hs {
			running++
			wg.Add(1)
			go func() {
				defer wg.Done()
				results <- r.runHost(ctx, st, h)
			}()
		}
	}
	launch(st.first)
	stopFail, stopCancel := st.tooMany(), st.cancel
	var done []hostResult
	for {
		if running > 0 {
			done = append(done, <-results)
			running--
			// Take whatever else finished meanwhile into the same write.
		drain:
			for running > 0 {
				select {
				case res := <-results:
					running--
					done = append(done, res)
				default:
					break drain
				}
			}
		}
		interrupted := false
		for _, d := range done {
			interrupted = interrupted || d.interrupted
			if d.status == HostFailed {
				st.failedTotal++
				st.failedBatch++
			}
		}
		stopFail = stopFail || st.tooMany()
		if interrupted || ctx.Err() != nil {
			r.interrupted(ctx, &wg, results, done)
			return batchOutcome{err: errInterrupted}
		}
		starts := st.pick(running, stopFail, stopCancel)
		if running == 0 && len(starts) == 0 {
			return batchOutcome{failed: stopFail, done: done}
		}
		started, cancelled, err := r.write(ctx, done, starts)
		if err != nil {
			wg.Wait()
			return batchOutcome{err: err}
		}
		done = nil
		stopCancel = stopCancel || cancelled
		launch(started)
	}
}

// interrupted ends a batch that Herald's stop (or a lost lease) cut short:
// the scripts were killed. It records the hosts that did finish; the
// others stay running for the next runner to run again.
func (r *runner) interrupted(ctx context.Context, wg *sync.WaitGroup, results chan hostResult, done []hostResult) {
	wg.Wait()
	close(results)
	for res := range results {
		done = append(done, res)
	}
	var finished []hostResult
	for _, d := range done {
		if !d.interrupted {
			finished = append(finished, d)
		}
	}
	if len(finished) > 0 && !errors.Is(context.Cause(ctx), errLeaseLost) {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_, _, _ = r.write(wctx, finished, nil)
		cancel()
	}
}

// write records finished hosts and marks started ones running in one
// transaction. It returns the hosts that may start: none of the pending
// ones once a cancel was asked.
func (r *runner) write(ctx context.Context, done []hostResult, starts []*hostRow) (started []*hostRow, cancelled bool, err error) {
	err = r.retryTx(ctx, func(tx db.Tx) error {
		started = started[:0]
		var token string
		if err := tx.QueryRow(ctx, `SELECT lease_token, cancel_requested FROM release_tasks WHERE id = $1`+forUpdate(tx), r.id).
			Scan(&token, &cancelled); err != nil {
			return err
		}
		if token != r.token {
			return errLeaseLost
		}
		if err := writeResults(ctx, tx, r.id, done); err != nil {
			return err
		}
		for _, h := range starts {
			// A host left running by a dead runner runs again even after a
			// cancel; a pending one starts only without one.
			if h.Status == HostRunning || !cancelled {
				started = append(started, h)
			}
		}
		return markRunning(ctx, tx, r.id, started, r.e.stamp())
	})
	if err != nil {
		return nil, false, err
	}
	r.forget(done)
	return started, cancelled, nil
}

// writeResults records how hosts ended. On PostgreSQL it is one statement
// over arrays, because there every statement is a round trip and a batch
// of quick hosts ends with dozens of results at once; SQLite runs in
// process, where a statement per host costs microseconds.
func writeResults(ctx context.Context, tx db.Tx, taskID string, done []hostResult) error {
	if len(done) == 0 {
		return nil
	}
	if tx.Dialect() == db.Postgres {
		n := len(done)
		names, stats, errs, outs := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		ats, codes := make([]time.Time, n), make([]*int32, n)
		for i, d := range done {
			names[i], stats[i], errs[i], outs[i], ats[i] = d.host.Name, d.status, d.err, d.output, d.at
			if d.exitCode != nil {
				c := int32(*d.exitCode)
				codes[i] = &c
			}
		}
		_, err := tx.Exec(ctx, `UPDATE release_task_hosts AS h
			SET status = v.status, finished_at = v.finished_at, exit_code = v.exit_code, error = v.error, output = v.output
			FROM unnest($2::text[], $3::text[], $4::timestamptz[], $5::int[], $6::text[], $7::text[])
				AS v(name, status, finished_at, exit_code, error, output)
			WHERE h.task_id = $1 AND h.name = v.name`, taskID, names, stats, ats, codes, errs, outs)
		return err
	}
	for _, d := range done {
		if _, err := tx.Exec(ctx, `UPDATE release_task_hosts SET status = $3, finished_at = $4, exit_code = $5, error = $6, output = $7
			WHERE task_id = $1 AND name = $2`, taskID, d.host.Name, d.status, d.at, d.exitCode, d.err, d.output); err != nil {
			return err
		}
	}
	return nil
}

// markRunning marks pending hosts running, in one statement; hosts a dead
// runner left running already are.
func markRunning(ctx context.Context, tx db.Tx, taskID string, hosts []*hostRow, at time.Time) error {
	var names []any
	for _, h := range hosts {
		if h.Status == HostPending {
			names = append(names, h.Name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	ph := make([]string, len(names))
	for i := range names {
		ph[i] = "$" + strconv.Itoa(i+4)
	}
	_, err := tx.Exec(ctx, `UPDATE release_task_hosts SET status = $2, started_at = $3, finished_at = NULL
		WHERE task_id = $1 AND name IN (`+strings.Join(ph, ", ")+`)`,
		append([]any{taskID, HostRunning, at}, names...)...)
	return err
}

// forget drops the live output of hosts whose result is stored.
func (r *runner) forget(done []hostResult) {
	r.mu.Lock()
	for _, d := range done {
		delete(r.live, d.host.Name)
	}
	r.mu.Unlock()
}

// runHost runs the script on one host with the variables of CONTRACT §4.
func (r *runner) runHost(ctx context.Context, st *step, h *hostRow) hostResult {
	t := st.task
	tail := &executor.Tail{}
	if prev := st.prevOutput[h.Name]; prev != "" {
		fmt.Fprintf(tail, "%s\n[herald] switch\n", strings.TrimRight(prev, "\n"))
	}
	if h.Status == HostRunning {
		fmt.Fprintf(tail, "[herald] Herald stopped while this host was running; running the script again.\n")
	}
	r.mu.Lock()
	r.live[h.Name] = tail
	r.mu.Unlock()

	vars := map[string]string{
		"HERALD_PROJECT":      t.ProjectID,
		"HERALD_ENVIRONMENT":  t.Environment,
		"HERALD_HOST":         h.Name,
		"HERALD_HOST_ADDRESS": h.Address,
		"HERALD_VERSION":      t.VersionName,
		"HERALD_VERSION_ID":   t.VersionID,
		"HERALD_ARTIFACT":     t.Artifact,
		"HERALD_TASK_ID":      t.ID,
		"HERALD_TASK_TYPE":    t.Type,
		"HERALD_STRATEGY":     t.Strategy,
		"HERALD_PHASE":        h.Phase,
		"HERALD_BATCH":        strconv.Itoa(h.Batch),
	}
	res, err := r.e.exec.Run(ctx, r.spec, executor.Run{Host: h.Name, Address: h.Address, Vars: vars, Output: tail})
	out := hostResult{host: h, at: r.e.stamp()}
	code := res.ExitCode
	switch {
	case err != nil && ctx.Err() != nil:
		out.interrupted = true
		return out
	case err != nil:
		out.status, out.err = HostFailed, cleanText(err.Error())
	case code != 0:
		out.status, out.err = HostFailed, fmt.Sprintf("the script exited with status %d", code)
	default:
		out.status = HostSuccess
	}
	out.exitCode = &code
	out.output = cleanText(tail.String())
	return out
}

// closeBatch closes the batch just run and decides what follows: the next
// batch (more), or a pause or the end of the task. queued tells that it
// queued a job (an automatic rollback).
func (r *runner) closeBatch(ctx context.Context, tx db.Tx, t *taskRow, st *step, out batchOutcome) (more, queued bool, err error) {
	if out.failed {
		failed, err := failedHostNames(ctx, tx, t.ID)
		if err != nil {
			return false, false, err
		}
		queued, err = r.e.fail(ctx, tx, t, failureReason(st.batch.Phase == PhaseCanary, failed, len(failed), t.Options.MaxFailures))
		return false, queued, err
	}
	var left bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM release_task_hosts WHERE task_id = $1 AND status IN ($2, $3))`,
		t.ID, HostPending, HostRunning).Scan(&left); err != nil {
		return false, false, err
	}
	if t.CancelRequested && left {
		return false, false, r.e.cancel(ctx, tx, t)
	}
	if _, err := tx.Exec(ctx, `UPDATE release_task_batches SET status = $3, finished_at = $4 WHERE task_id = $1 AND number = $2`,
		t.ID, st.batch.Number, HostSuccess, r.e.stamp()); err != nil {
		return false, false, err
	}
	bs, err := loadBatches(ctx, tx, t.ID)
	if err != nil {
		return false, false, err
	}
	next := nextBatch(bs)
	switch {
	case st.batch.Phase == PhaseCanary && next != nil:
		if err := r.e.pause(ctx, tx, t); err != nil {
			return false, false, err
		}
		return false, false, r.e.publish(ctx, tx, t, event.CanaryCompleted)
	case st.batch.Phase == PhaseCanary:
		if err := r.e.publish(ctx, tx, t, event.CanaryCompleted); err != nil {
			return false, false, err
		}
		return false, false, r.e.succeed(ctx, tx, t)
	case next == nil:
		return false, false, r.e.succeed(ctx, tx, t)
	case t.Strategy == StrategyBlueGreen && next.Phase == PhaseSwitch:
		return false, false, r.e.pause(ctx, tx, t)
	}
	return true, false, nil
}
