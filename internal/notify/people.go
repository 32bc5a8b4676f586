package notify

import (
	"context"
	"errors"
	"fmt"

	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify/channel"
)

// people finds the users behind recipient roles (channel.People) in the
// database, when a message is sent: who created a task or manages a plan
// is read then, not copied into the event.
type people struct{ db *db.DB }

func (p people) Find(ctx context.Context, ev *event.Envelope, role string) (channel.Person, bool, error) {
	var userID string
	var err error
	switch role {
	case channel.RecipientTaskCreator:
		userID, err = p.taskCreator(ctx, ev)
	case channel.RecipientPlanManager:
		userID, err = p.planManager(ctx, ev)
	default:
		return channel.Person{}, false, fmt.Errorf("unknown recipient role %q", role)
	}
	if err != nil || userID == "" {
		return channel.Person{}, false, err
	}
	u := channel.Person{ID: userID}
	err = p.db.QueryRow(ctx, `SELECT name, email FROM users WHERE id = $1`, userID).Scan(&u.Name, &u.Email)
	if errors.Is(err, db.ErrNoRows) {
		// Deleted since: reported like a user without an address.
		u.Name = "a deleted user"
		return u, true, nil
	}
	return u, err == nil, err
}

// taskCreator is the user who created the event's task. Events of tasks
// that are not stored (the Test button's, previews) name their actor.
func (p people) taskCreator(ctx context.Context, ev *event.Envelope) (string, error) {
	if ev.Task == nil || ev.Task.ID == "" {
		return "", nil
	}
	var id string
	err := p.db.QueryRow(ctx, `SELECT created_by_id FROM release_tasks WHERE id = $1`, ev.Task.ID).Scan(&id)
	if errors.Is(err, db.ErrNoRows) {
		if ev.Actor != nil {
			return ev.Actor.ID, nil
		}
		return "", nil
	}
	return id, err
}

// planManager is the manager of a plan event's plan, or of the plan whose
// workflow job started the event's task.
func (p people) planManager(ctx context.Context, ev *event.Envelope) (string, error) {
	if plan, ok := ev.Plan(); ok {
		return plan.ManagerID, nil
	}
	if ev.Task == nil || ev.Task.ID == "" {
		return "", nil
	}
	var id string
	err := p.db.QueryRow(ctx, `SELECT p.manager_id FROM release_plan_jobs j JOIN release_plans p ON p.id = j.plan_id
		WHERE j.task_id = $1 ORDER BY p.id LIMIT 1`, ev.Task.ID).Scan(&id)
	if errors.Is(err, db.ErrNoRows) {
		return "", nil
	}
	return id, err
}
