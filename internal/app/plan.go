package app

import "context"

// wirePlan builds the release plan service.
func (a *App) wirePlan(context.Context) error { return nil }

// routePlan adds the release plan routes.
func (a *App) routePlan() {}
