package app

import "context"

// wireRelease builds the release engine.
func (a *App) wireRelease(ctx context.Context) error { return nil }

// routeRelease adds the task routes.
func (a *App) routeRelease() {}
