package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/riverqueue/river"

	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/id"
)

// route runs inside the transaction that publishes ev: it enqueues one
// delivery per enabled channel of every enabled configuration, global or of
// ev's project, that subscribes to ev. Committing the change commits the
// deliveries; nothing here talks to a platform.
func (h *Hub) route(ctx context.Context, tx db.Tx, ev *event.Envelope) error {
	projectID := ""
	if ev.Project != nil {
		projectID = ev.Project.ID
	}
	rows, err := tx.Query(ctx, `SELECT c.id, c.events, ch.id
		FROM callback_configs c JOIN callback_channels ch ON ch.config_id = c.id
		WHERE c.enabled AND ch.enabled AND (c.project_id IS NULL OR c.project_id = $1)
		ORDER BY c.id, ch.position`, projectID)
	if err != nil {
		return fmt.Errorf("route %s: %w", ev.EventType, err)
	}
	var jobs []river.InsertManyParams
	var lastConfig string
	var subscribed bool
	for rows.Next() {
		var configID, events, channelID string
		if err := rows.Scan(&configID, &events, &channelID); err != nil {
			rows.Close()
			return err
		}
		if configID != lastConfig {
			lastConfig = configID
			var types []string
			_ = json.Unmarshal([]byte(events), &types)
			subscribed = len(types) == 0 || slices.Contains(types, ev.EventType)
		}
		if !subscribed {
			continue
		}
		jobs = append(jobs, river.InsertManyParams{Args: DeliverArgs{
			DeliveryID: id.New("dlv"), EventID: ev.ID, ConfigID: configID, ChannelID: channelID,
		}})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(jobs) == 0 {
		return nil
	}
	if _, err := h.queue.InsertManyTx(ctx, tx, jobs); err != nil {
		return fmt.Errorf("enqueue deliveries of %s: %w", ev.EventType, err)
	}
	h.metrics.routed.Add(float64(len(jobs)))
	return nil
}
