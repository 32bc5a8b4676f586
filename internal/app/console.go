package app

import (
	"github.com/herald-release/herald/internal/buildinfo"
	"github.com/herald-release/herald/internal/console"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify"
)

// routeConsole adds the web console's pages. The console calls the API
// in-process, so it is built on the finished API handler.
func (a *App) routeConsole() {
	c := console.New(console.Deps{
		API:          a.API.Handler(),
		Identity:     a.Identity,
		Log:          a.Log.With("component", "console"),
		Version:      buildinfo.Version,
		ChannelTypes: notify.KindTypes(),
		EventTypes:   event.Types(),
	})
	c.Routes(a.API.Handle)
}
