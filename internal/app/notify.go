package app

import (
	"context"

	"github.com/herald-release/herald/internal/buildinfo"
	"github.com/herald-release/herald/internal/notify"
	"github.com/herald-release/herald/internal/notify/channel"
)

// wireNotify builds the notification hub: it subscribes to every event;
// StartWork starts its deliveries.
func (a *App) wireNotify(context.Context) error {
	deps := channel.Deps{
		HTTP:      a.Egress.Client(),
		CheckURL:  a.Egress.CheckURL,
		PublicURL: a.Config.PublicURL,
		Version:   buildinfo.Version,
	}
	a.Notify = notify.New(a.DB, a.Box, a.Publisher, deps, notify.Options{
		RetrySchedule: a.Config.RetrySchedule,
		Log:           a.Log.With("component", "notify"),
		Registry:      a.Registry,
	})
	return nil
}

// routeNotify adds the callback routes.
func (a *App) routeNotify() { a.API.RouteCallbacks(a.Notify) }
