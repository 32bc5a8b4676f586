package engine

import (
	"context"
	"fmt"

	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/event"
)

// publish writes one moment of a task (CONTRACT §6) in tx, the transaction
// that makes the moment happen, so the event exists exactly when the state
// change does. The dedupe key "<task>:<run>:<moment>" is a second guard: a
// moment can only be reached once per run by the state machine, and the
// key makes a replay of the same step a no-op rather than a second event.
// t must already hold the state the event reports.
func (e *Engine) publish(ctx context.Context, tx db.Tx, t *taskRow, eventType string) error {
	ev, err := e.envelope(ctx, tx, t, eventType)
	if err != nil {
		return err
	}
	_, err = e.pub.Publish(ctx, tx, ev, event.Options{
		ObjectID:  t.ID,
		TaskID:    t.ID,
		DedupeKey: fmt.Sprintf("%s:%d:%s", t.ID, t.Run, eventType),
	})
	return err
}

// envelope builds the standard message of a task moment with the counts
// as they stand in tx.
func (e *Engine) envelope(ctx context.Context, tx db.Tx, t *taskRow, eventType string) (*event.Envelope, error) {
	var p event.ProjectRef
	if err := tx.QueryRow(ctx, `SELECT id, name, description FROM projects WHERE id = $1`, t.ProjectID).
		Scan(&p.ID, &p.Name, &p.Description); err != nil {
		return nil, fmt.Errorf("project of task %s: %w", t.ID, err)
	}
	counts, err := countHosts(ctx, tx, t.ID)
	if err != nil {
		return nil, err
	}
	canaryEvent := eventType == event.CanaryStarted || eventType == event.CanaryCompleted
	hosts, err := hostNames(ctx, tx, t.ID, canaryEvent)
	if err != nil {
		return nil, err
	}
	ev := &event.Envelope{
		EventType: eventType,
		Project:   &p,
		Task:      &event.TaskRef{ID: t.ID, Type: t.Type, Strategy: t.Strategy, Status: t.Status, Phase: t.Phase},
		Deployment: &event.Deployment{
			TotalCount:     counts.Total,
			CanaryCount:    counts.Canary,
			CompletedCount: counts.Completed,
			FailedCount:    counts.Failed,
			Hosts:          hosts,
		},
		Timestamp:   e.stamp(),
		Environment: t.Environment,
		URL:         e.url() + "/tasks/" + t.ID,
	}
	if t.VersionID != "" {
		ev.Version = &event.VersionRef{ID: t.VersionID, Name: t.VersionName, Description: t.VersionDescription}
	}
	if t.ActorID != "" || t.ActorName != "" {
		a := t.actor()
		ev.Actor = &a
	}
	if t.StartedAt != nil {
		end := ev.Timestamp
		if t.FinishedAt != nil {
			end = *t.FinishedAt
		}
		ev.Duration = humanDuration(end.Sub(*t.StartedAt))
	} else {
		ev.Duration = humanDuration(0)
	}
	return ev, nil
}
