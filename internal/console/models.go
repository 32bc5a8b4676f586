package console

import (
	"github.com/herald-release/herald/internal/release/engine"
	"github.com/herald-release/herald/internal/release/executor"
)

// The console decodes the API's answers (CONTRACT §3–§8) into the domain
// packages' own types, which are the API's JSON shapes: identity.User and
// identity.Token, inventory.Project, Environment, Host and Version,
// notify.Config, Entry and TestReport, engine.Task. The types below are
// only what the pages add to them.

// newToken is the answer to creating a token: the secret, shown once.
type newToken struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Token string `json:"token"`
}

// executorInput is the executor as the environment form sends it: the
// timeout goes to the API as typed, so that the API judges it and names
// the field when it is not a duration.
type executorInput struct {
	executor.Spec
	Timeout string `json:"timeout,omitempty"`
}

// taskView is a task as its page shows it.
type taskView struct {
	engine.Task
}

// Active tells whether the task may still change.
func (t taskView) Active() bool { return engine.Active(t.Status) }

// batchView is a batch with its hosts, for the task page.
type batchView struct {
	engine.Batch
	HostRows []engine.Host
}

// BatchViews groups the task's hosts by batch, in batch order; hosts the
// batches do not list (before the engine has planned them) come last.
func (t taskView) BatchViews() []batchView {
	byName := map[string]engine.Host{}
	for _, h := range t.Hosts {
		byName[h.Name] = h
	}
	seen := map[string]bool{}
	var out []batchView
	for _, b := range t.Batches {
		bv := batchView{Batch: b}
		for _, n := range b.Hosts {
			if h, ok := byName[n]; ok {
				bv.HostRows = append(bv.HostRows, h)
				seen[n] = true
			}
		}
		out = append(out, bv)
	}
	var rest []engine.Host
	for _, h := range t.Hosts {
		if !seen[h.Name] {
			rest = append(rest, h)
		}
	}
	if len(rest) > 0 {
		out = append(out, batchView{HostRows: rest})
	}
	return out
}
