package app

// routeConsole adds the web console's pages.
func (a *App) routeConsole() {}
