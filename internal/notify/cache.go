package notify

import (
	"sync"
	"time"

	"github.com/herald-release/herald/internal/event"
)

// configTTL is how long this process trusts what it read of callback
// configurations. Changes made through this process apply at once (they
// clear the cache); changes made through another process sharing the
// database apply within configTTL.
const configTTL = time.Second

// cache holds what every delivery and every routed event would otherwise
// read again: routes per project, channel targets, and recent events. It is
// what lets one process deliver thousands of events a second.
type cache struct {
	mu      sync.Mutex
	gen     uint64 // bumped by every local configuration change
	routes  map[string]cachedRoutes
	targets map[string]cachedTarget
	events  map[string]*event.Envelope
}

type cachedRoutes struct {
	at     time.Time
	gen    uint64
	routes []route
}

type route struct {
	configID  string
	channelID string
	events    []string
	// conds narrow events further; nil means none. Routes of one
	// configuration share them.
	conds *Conditions
}

type cachedTarget struct {
	at     time.Time
	gen    uint64
	target *target
}

// maxCachedEvents bounds the event cache; it is emptied when full, which
// costs only re-reads.
const maxCachedEvents = 20000

func newCache() *cache {
	return &cache{routes: map[string]cachedRoutes{}, targets: map[string]cachedTarget{}, events: map[string]*event.Envelope{}}
}

// invalidate forgets every configuration read so far.
func (c *cache) invalidate() {
	c.mu.Lock()
	c.gen++
	clear(c.routes)
	clear(c.targets)
	c.mu.Unlock()
}

func (c *cache) getRoutes(projectID string, now time.Time) ([]route, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.routes[projectID]
	if !ok || r.gen != c.gen || now.Sub(r.at) > configTTL {
		return nil, c.gen, false
	}
	return r.routes, c.gen, true
}

// putRoutes stores routes read at generation gen; a change since then
// makes them stale, and they are dropped.
func (c *cache) putRoutes(projectID string, gen uint64, routes []route, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen == c.gen {
		c.routes[projectID] = cachedRoutes{at: now, gen: gen, routes: routes}
	}
}

func (c *cache) getTarget(channelID string, now time.Time) (*target, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.targets[channelID]
	if !ok || t.gen != c.gen || now.Sub(t.at) > configTTL {
		return nil, c.gen, false
	}
	return t.target, c.gen, true
}

func (c *cache) putTarget(channelID string, gen uint64, t *target, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen == c.gen {
		c.targets[channelID] = cachedTarget{at: now, gen: gen, target: t}
	}
}

// Events never change once written, so they need no expiry.
func (c *cache) getEvent(id string) *event.Envelope {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.events[id]
}

func (c *cache) putEvent(ev *event.Envelope) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.events) >= maxCachedEvents {
		clear(c.events)
	}
	c.events[ev.ID] = ev
}
