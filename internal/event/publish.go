package event

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/id"
)

// Subscriber is called inside the publishing transaction for every event
// written, so that what it enqueues commits or rolls back with the change.
// The notification router is one.
type Subscriber func(ctx context.Context, tx db.Tx, ev *Envelope) error

// Publisher writes events and hands them to its subscribers.
type Publisher struct {
	subs []Subscriber
	now  func() time.Time
}

// NewPublisher makes a publisher with no subscribers.
func NewPublisher() *Publisher { return &Publisher{now: time.Now} }

// Subscribe adds a subscriber. Call it during start-up, before the first
// Publish: subscribers are not guarded by a lock.
func (p *Publisher) Subscribe(s Subscriber) { p.subs = append(p.subs, s) }

// Published is one event as published.
type Published struct {
	Envelope *Envelope
	// Duplicate is true when an event with the same dedupe key was already
	// published: nothing was written and no subscriber was called.
	Duplicate bool
}

// Options say what the event is about.
type Options struct {
	// ObjectID is the object whose sequence the event extends (task id,
	// plan id, project id, ...).
	ObjectID string
	// DedupeKey, when set, makes the event publishable once: a second
	// Publish with the same key is a no-op. Task moments use
	// "<task id>:<moment>".
	DedupeKey string
	TaskID    string
	PlanID    string
}

// Publish fills in the envelope's id, sequence, kind, action and timestamp,
// stores it, and runs the subscribers, all inside tx.
func (p *Publisher) Publish(ctx context.Context, tx db.Tx, ev *Envelope, opts Options) (Published, error) {
	out, err := p.Record(ctx, tx, ev, opts)
	if err != nil || out.Duplicate {
		return out, err
	}
	for _, s := range p.subs {
		if err := s(ctx, tx, ev); err != nil {
			return Published{}, fmt.Errorf("publish %s: %w", ev.EventType, err)
		}
	}
	return out, nil
}

// Record stores an event like Publish but tells no subscriber: for sample
// events (the callback test button) that must exist in history without
// reaching every configured channel.
func (p *Publisher) Record(ctx context.Context, tx db.Tx, ev *Envelope, opts Options) (Published, error) {
	info, ok := Lookup(ev.EventType)
	if !ok {
		return Published{}, fmt.Errorf("publish: unknown event type %q", ev.EventType)
	}
	if opts.ObjectID == "" {
		return Published{}, errors.New("publish: ObjectID is required")
	}
	ev.ObjectKind = info.ObjectKind
	ev.Action = info.Action
	if ev.ID == "" {
		ev.ID = id.New("evt")
	}
	if ev.Timestamp.IsZero() {
		ev.Timestamp = p.now().UTC().Truncate(time.Millisecond)
	}

	if opts.DedupeKey != "" {
		var n int
		err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM events WHERE dedupe_key = $1`, opts.DedupeKey).Scan(&n)
		if err != nil {
			return Published{}, fmt.Errorf("publish %s: %w", ev.EventType, err)
		}
		if n > 0 {
			return Published{Envelope: ev, Duplicate: true}, nil
		}
	}

	seq, err := nextSequence(ctx, tx, info.ObjectKind, opts.ObjectID)
	if err != nil {
		return Published{}, fmt.Errorf("publish %s: sequence: %w", ev.EventType, err)
	}
	ev.Sequence = seq
	payload, err := json.Marshal(ev)
	if err != nil {
		return Published{}, err
	}
	projectID := ""
	if ev.Project != nil {
		projectID = ev.Project.ID
	}
	var dedupe any
	if opts.DedupeKey != "" {
		dedupe = opts.DedupeKey
	}
	_, err = tx.Exec(ctx, `INSERT INTO events
		(id, event_type, object_kind, object_id, sequence, project_id, task_id, plan_id, dedupe_key, payload, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		ev.ID, ev.EventType, info.ObjectKind, opts.ObjectID, seq, projectID, opts.TaskID, opts.PlanID, dedupe, string(payload), ev.Timestamp)
	if err != nil {
		return Published{}, fmt.Errorf("publish %s: %w", ev.EventType, err)
	}
	return Published{Envelope: ev}, nil
}

// nextSequence increments the object's counter; the row lock it takes
// orders concurrent publishers of one object.
func nextSequence(ctx context.Context, tx db.Tx, kind, objectID string) (int64, error) {
	var seq int64
	err := tx.QueryRow(ctx, `INSERT INTO event_sequences (object_kind, object_id, last) VALUES ($1, $2, 1)
		ON CONFLICT (object_kind, object_id) DO UPDATE SET last = event_sequences.last + 1
		RETURNING last`, kind, objectID).Scan(&seq)
	return seq, err
}

// Get reads one stored event.
func Get(ctx context.Context, q db.Querier, eventID string) (*Envelope, error) {
	var payload string
	if err := q.QueryRow(ctx, `SELECT payload FROM events WHERE id = $1`, eventID).Scan(&payload); err != nil {
		return nil, err
	}
	var ev Envelope
	if err := json.Unmarshal([]byte(payload), &ev); err != nil {
		return nil, fmt.Errorf("stored event %s is corrupt: %w", eventID, err)
	}
	return &ev, nil
}

// ListForObject returns an object's events in sequence order.
func ListForObject(ctx context.Context, q db.Querier, kind, objectID string) ([]*Envelope, error) {
	rows, err := q.Query(ctx, `SELECT payload FROM events WHERE object_kind = $1 AND object_id = $2 ORDER BY sequence`, kind, objectID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Envelope
	for rows.Next() {
		var payload string
		if err := rows.Scan(&payload); err != nil {
			return nil, err
		}
		var ev Envelope
		if err := json.Unmarshal([]byte(payload), &ev); err != nil {
			return nil, err
		}
		out = append(out, &ev)
	}
	return out, rows.Err()
}
