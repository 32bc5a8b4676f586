package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/id"
)

// route runs inside the transaction that publishes ev: it enqueues one
// delivery per enabled channel of every enabled configuration, global or of
// ev's project, that subscribes to ev and whose conditions it meets (read
// with the routes, cached: no query per event). Committing the change commits the
// deliveries; nothing here talks to a platform.
func (h *Hub) route(ctx context.Context, tx db.Tx, ev *event.Envelope) error {
	projectID := ""
	if ev.Project != nil {
		projectID = ev.Project.ID
	}
	routes, err := h.routesFor(ctx, tx, projectID)
	if err != nil {
		return fmt.Errorf("route %s: %w", ev.EventType, err)
	}
	var ds []delivery
	for _, r := range routes {
		if len(r.events) > 0 && !slices.Contains(r.events, ev.EventType) {
			continue
		}
		if r.conds != nil && !r.conds.Match(ev) {
			continue
		}
		ds = append(ds, delivery{DeliveryID: id.New("dlv"), EventID: ev.ID, ConfigID: r.configID, ChannelID: r.channelID})
	}
	if len(ds) == 0 {
		return nil
	}
	if err := h.enqueue(ctx, tx, ds); err != nil {
		return fmt.Errorf("enqueue deliveries of %s: %w", ev.EventType, err)
	}
	h.cache.putEvent(ev)
	h.metrics.routed.Add(float64(len(ds)))
	return nil
}

// routesFor returns the enabled channels that may hear a project's events.
func (h *Hub) routesFor(ctx context.Context, q db.Querier, projectID string) ([]route, error) {
	now := time.Now()
	routes, gen, ok := h.cache.getRoutes(projectID, now)
	if ok {
		return routes, nil
	}
	rows, err := q.Query(ctx, `SELECT c.id, c.events, c.conditions, ch.id
		FROM callback_configs c JOIN callback_channels ch ON ch.config_id = c.id
		WHERE c.enabled AND ch.enabled AND (c.project_id IS NULL OR c.project_id = $1)
		ORDER BY c.id, ch.position`, projectID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	routes = []route{}
	for rows.Next() {
		var r route
		var events, conds string
		if err := rows.Scan(&r.configID, &events, &conds, &r.channelID); err != nil {
			return nil, err
		}
		// Rows come by configuration: its channels share what was parsed.
		if n := len(routes); n > 0 && routes[n-1].configID == r.configID {
			r.events, r.conds = routes[n-1].events, routes[n-1].conds
			routes = append(routes, r)
			continue
		}
		if err := json.Unmarshal([]byte(events), &r.events); err != nil {
			return nil, fmt.Errorf("callback configuration %s events are corrupt: %w", r.configID, err)
		}
		if r.conds, err = parseConditions(conds); err != nil {
			return nil, fmt.Errorf("callback configuration %s conditions are corrupt: %w", r.configID, err)
		}
		routes = append(routes, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	h.cache.putRoutes(projectID, gen, routes, now)
	return routes, nil
}
