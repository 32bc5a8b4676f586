package app

import (
	"context"

	"github.com/herald-release/herald/internal/release/engine"
	"github.com/herald-release/herald/internal/release/executor"
	"github.com/herald-release/herald/internal/release/executor/local"
	"github.com/herald-release/herald/internal/release/executor/sshexec"
)

// wireRelease builds the release engine: its queues, workers, recovery and
// the inventory delete check. Scripts run locally or over SSH through the
// egress policy, so host addresses obey HERALD_EGRESS_ALLOW like callbacks.
func (a *App) wireRelease(ctx context.Context) error {
	e, err := engine.New(engine.Options{
		DB:        a.DB,
		Queue:     a.Queue,
		Inventory: a.Inventory,
		Publisher: a.Publisher,
		Box:       a.Box,
		Executor: executor.ByType{
			executor.TypeLocal: local.New(),
			executor.TypeSSH:   sshexec.New(a.Egress.DialContext),
		},
		PublicURL: func() string { return a.Config.PublicURL },
		Log:       a.Log.With("component", "release"),
	})
	if err != nil {
		return err
	}
	a.Release = e
	return nil
}

// routeRelease adds the task routes, and hands tasks that a stopped Herald
// left behind to runners now, rather than at the first periodic recovery,
// which on PostgreSQL waits for River's leader election.
func (a *App) routeRelease() {
	a.API.RouteTasks(a.Release)
	if err := a.Release.Recover(context.Background()); err != nil {
		a.Log.Warn("release: recovering unfinished tasks at start failed; the periodic recovery retries", "error", err)
	}
}
