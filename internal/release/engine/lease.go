package engine

import (
	"context"
	"time"
)

// Leases. A runner owns a task while lease_token is its token and
// lease_until is in the future; it renews lease_until every LeaseTTL/3. A
// process that dies stops renewing, and once the lease has run out the
// recovery job gives the task to a new runner, which runs again the hosts
// left running. A live process's lease is never taken: on PostgreSQL
// several processes share the tasks, and only an expired lease is free.
//
// SQLite is one process's database (the single-connection design and the
// data folder are that process's), so there a lease held by another node
// can only be a dead process's, and it is taken over at once.

// claimable is the SQL condition under which a runner may take a task.
func (e *Engine) claimable() string {
	c := `(lease_token = '' OR lease_until < $4`
	if e.exclusive {
		c += ` OR lease_node <> $2`
	}
	return c + `)`
}

// claim takes the lease of a task that is pending or running and free.
func (e *Engine) claim(ctx context.Context, taskID, token string) (bool, error) {
	now := e.now()
	n, err := e.db.Exec(ctx, `UPDATE release_tasks SET lease_node = $2, lease_token = $3, lease_until = $5
		WHERE id = $1 AND status IN ('pending', 'running') AND `+e.claimable(),
		taskID, e.node, token, nowMS(now), nowMS(now.Add(e.ttl)))
	return n == 1, err
}

// heartbeat renews the lease until ctx ends. When the lease is gone, or
// cannot be renewed before it runs out, it stops the runner: past that
// point another process may run the task, and two runners must never run
// the same hosts.
func (e *Engine) heartbeat(ctx context.Context, stop context.CancelCauseFunc, taskID, token string) {
	tick := time.NewTicker(e.ttl / 3)
	defer tick.Stop()
	renewed := e.now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := e.now()
		// Bounded, so that a database that hangs cannot keep the runner
		// going past its lease.
		hctx, cancel := context.WithTimeout(ctx, e.ttl/3)
		n, err := e.db.Exec(hctx, `UPDATE release_tasks SET lease_until = $3 WHERE id = $1 AND lease_token = $2`,
			taskID, token, nowMS(now.Add(e.ttl)))
		cancel()
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			e.log.Warn("release: renewing a task's lease failed", "task", taskID, "error", err)
			if now.Sub(renewed) > e.ttl*2/3 {
				stop(errLeaseLost)
				return
			}
		case n == 0:
			// The runner let go (pause, finish) or was taken over.
			stop(errLeaseLost)
			return
		default:
			renewed = now
		}
	}
}

// release lets go of a lease so the task can be claimed at once.
func (e *Engine) release(ctx context.Context, taskID, token string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := e.db.Exec(ctx, `UPDATE release_tasks SET lease_node = '', lease_token = '', lease_until = 0
		WHERE id = $1 AND lease_token = $2`, taskID, token); err != nil {
		e.log.Warn("release: letting go of a task's lease failed; it is taken over when the lease runs out", "task", taskID, "error", err)
	}
}
