package notify

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/herald-release/herald/internal/apperr"
	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/id"
	"github.com/herald-release/herald/internal/notify/channel"
	"github.com/herald-release/herald/internal/page"
	"github.com/herald-release/herald/internal/validate"
)

// Attempt statuses (CONTRACT §8): pending means "failed, will be retried
// at next_attempt_at".
const (
	statusPending = "pending"
	statusSuccess = "success"
	statusFailed  = "failed"
)

// Entry is one history entry: one attempt of one delivery.
type Entry struct {
	ID            string          `json:"id"`
	DeliveryID    string          `json:"delivery_id"`
	ConfigID      string          `json:"config_id"`
	ChannelID     string          `json:"channel_id"`
	EventID       string          `json:"event_id"`
	TaskID        string          `json:"task_id"`
	PlanID        string          `json:"plan_id"`
	ProjectID     string          `json:"project_id"`
	EventType     string          `json:"event_type"`
	ChannelType   string          `json:"channel_type"`
	Status        string          `json:"status"`
	Attempt       int             `json:"attempt"`
	Request       json.RawMessage `json:"request"`
	Response      string          `json:"response"`
	StatusCode    int             `json:"status_code,omitempty"`
	Error         string          `json:"error"`
	DurationMS    int64           `json:"duration_ms"`
	NextAttemptAt *time.Time      `json:"next_attempt_at"`
	CreatedAt     time.Time       `json:"created_at"`
}

type attemptRecord struct {
	args          delivery
	ev            *event.Envelope
	channelType   string
	attempt       int
	status        string
	err           string
	result        channel.Attempt
	duration      time.Duration
	nextAttemptAt *time.Time
}

func taskAndPlan(ev *event.Envelope) (taskID, planID, projectID string) {
	if ev.Task != nil {
		taskID = ev.Task.ID
	}
	if p, ok := ev.Plan(); ok {
		planID = p.ID
	}
	if ev.Project != nil {
		projectID = ev.Project.ID
	}
	return
}

func newEntryID() string { return id.New("dat") }

// attemptCols are the columns of a history row, in insertAttemptRows' order.
const attemptCols = 19

// insertAttemptRows writes history rows with one statement.
func (h *Hub) insertAttemptRows(ctx context.Context, q db.Querier, ws []historyWrite) error {
	now := time.Now().UTC()
	args := make([]any, 0, attemptCols*len(ws))
	for _, w := range ws {
		r := w.out.rec
		taskID, planID, projectID := taskAndPlan(r.ev)
		args = append(args, w.id, r.args.DeliveryID, r.args.ConfigID, r.args.ChannelID, r.channelType, r.ev.ID, r.ev.EventType,
			projectID, taskID, planID, r.status, r.attempt, requestJSON(r.result.Request),
			storable(r.result.Response, channel.MaxResponse), r.result.StatusCode,
			storable(r.err, channel.MaxResponse), r.duration.Milliseconds(), r.nextAttemptAt, now)
	}
	_, err := q.Exec(ctx, `INSERT INTO delivery_attempts (id, delivery_id, config_id, channel_id, channel_type, event_id, event_type,
		project_id, task_id, plan_id, status, attempt, request, response, status_code, error, duration_ms, next_attempt_at, created_at)
		VALUES `+db.Values(1, attemptCols, len(ws)), args...)
	return err
}

// storable makes what an endpoint answered fit a text column of both
// databases: valid UTF-8 without NUL bytes (PostgreSQL refuses both), at
// most max bytes, cut between characters.
func storable(s string, max int) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// Filter narrows a history listing.
type Filter struct {
	ConfigID    string
	TaskID      string
	PlanID      string
	ProjectID   string
	Status      string
	EventType   string
	ChannelType string
	EventID     string
}

// ParseFilter reads the PRD's history filters from a query string.
func ParseFilter(q url.Values) (Filter, error) {
	f := Filter{Status: q.Get("status"), EventType: q.Get("event_type"), ChannelType: q.Get("channel_type"),
		ProjectID: q.Get("project_id"), TaskID: q.Get("task_id"), PlanID: q.Get("plan_id"), ConfigID: q.Get("config_id"),
		EventID: q.Get("event_id")}
	var errs validate.Errors
	switch f.Status {
	case "", statusPending, statusSuccess, statusFailed:
	default:
		errs.Add("status", "must be pending, success or failed")
	}
	if f.EventType != "" {
		if _, ok := event.Lookup(f.EventType); !ok {
			errs.Add("event_type", "%q is not an event type", f.EventType)
		}
	}
	if f.ChannelType != "" {
		if _, ok := kinds[f.ChannelType]; !ok {
			errs.Add("channel_type", "%q is not a channel type", f.ChannelType)
		}
	}
	return f, errs.Err()
}

const entryCols = `id, delivery_id, config_id, channel_id, event_id, task_id, plan_id, project_id, event_type, channel_type,
	status, attempt, request, response, status_code, error, duration_ms, next_attempt_at, created_at`

func scanEntry(r interface{ Scan(...any) error }) (*Entry, error) {
	var e Entry
	var req string
	if err := r.Scan(&e.ID, &e.DeliveryID, &e.ConfigID, &e.ChannelID, &e.EventID, &e.TaskID, &e.PlanID, &e.ProjectID,
		&e.EventType, &e.ChannelType, &e.Status, &e.Attempt, &req, &e.Response, &e.StatusCode, &e.Error, &e.DurationMS,
		&e.NextAttemptAt, &e.CreatedAt); err != nil {
		return nil, err
	}
	e.Request = json.RawMessage(req)
	return &e, nil
}

// History lists attempts, newest first.
func (h *Hub) History(ctx context.Context, f Filter, p page.Params) (page.Page[*Entry], error) {
	where := `WHERE ($1 = '' OR id < $1)`
	args := []any{p.After}
	add := func(col, v string) {
		if v != "" {
			args = append(args, v)
			// "<> ''" lets the partial indexes on task_id and plan_id serve.
			where += ` AND ` + col + ` = $` + strconv.Itoa(len(args)) + ` AND ` + col + ` <> ''`
		}
	}
	add("config_id", f.ConfigID)
	add("task_id", f.TaskID)
	add("plan_id", f.PlanID)
	add("project_id", f.ProjectID)
	add("status", f.Status)
	add("event_type", f.EventType)
	add("channel_type", f.ChannelType)
	add("event_id", f.EventID)
	args = append(args, p.Limit+1)
	rows, err := h.db.Query(ctx, `SELECT `+entryCols+` FROM delivery_attempts `+where+` ORDER BY id DESC LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return page.Page[*Entry]{}, err
	}
	defer rows.Close()
	var out []*Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return page.Page[*Entry]{}, err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return page.Page[*Entry]{}, err
	}
	return page.Make(out, p, func(e *Entry) string { return e.ID }), nil
}

// GetEntry reads one history entry.
func (h *Hub) GetEntry(ctx context.Context, entryID string) (*Entry, error) {
	e, err := scanEntry(h.db.QueryRow(ctx, `SELECT `+entryCols+` FROM delivery_attempts WHERE id = $1`, entryID))
	if errors.Is(err, db.ErrNoRows) {
		return nil, apperr.NotFound("history entry %q not found", entryID)
	}
	return e, err
}

// Redeliver sends a history entry's event to its channel again, as a new
// delivery with attempts counted from 1. The event, and so its id and
// webhook-id, is the same.
func (h *Hub) Redeliver(ctx context.Context, entryID string) (string, error) {
	e, err := h.GetEntry(ctx, entryID)
	if err != nil {
		return "", err
	}
	if _, err := h.loadTarget(ctx, e.ChannelID); errors.Is(err, errNoChannel) {
		return "", apperr.InvalidState("the channel of this entry was deleted; there is nowhere to redeliver to")
	} else if err != nil {
		return "", err
	}
	deliveryID := id.New("dlv")
	err = h.db.InTx(ctx, func(tx db.Tx) error {
		return h.enqueue(ctx, tx, []delivery{{DeliveryID: deliveryID, EventID: e.EventID, ConfigID: e.ConfigID, ChannelID: e.ChannelID}})
	})
	return deliveryID, err
}
