package app

import (
	"context"

	"github.com/herald-release/herald/internal/buildinfo"
	"github.com/herald-release/herald/internal/plan"
)

// wirePlan builds the release plan service: its queue, workers, periodic
// reconciliation and its subscriber to task events. Hooks go out through
// the egress policy, like callbacks, and retry on HERALD_RETRY_SCHEDULE.
func (a *App) wirePlan(context.Context) error {
	svc, err := plan.New(plan.Options{
		DB:                a.DB,
		Queue:             a.Queue,
		Publisher:         a.Publisher,
		Tasks:             a.Release,
		Inventory:         a.Inventory,
		Box:               a.Box,
		HTTP:              a.Egress.Client(),
		CheckURL:          a.Egress.CheckURL,
		PublicURL:         func() string { return a.Config.PublicURL },
		Version:           buildinfo.Version,
		HookRetrySchedule: a.Config.RetrySchedule,
		Log:               a.Log.With("component", "plan"),
	})
	if err != nil {
		return err
	}
	a.Plan = svc
	return nil
}

// routePlan adds the release plan routes.
func (a *App) routePlan() { a.API.RoutePlans(a.Plan) }
