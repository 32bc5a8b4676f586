package app

import "context"

// wireNotify builds the notification hub.
func (a *App) wireNotify(ctx context.Context) error { return nil }

// routeNotify adds the callback routes.
func (a *App) routeNotify() {}
