package channel

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/herald-release/herald/internal/event"
)

// Recipient roles: people a message goes to because of what they are to
// the event, found when it is sent (the "recipients" setting of email and
// feishu_app).
const (
	// RecipientTaskCreator is the user who created the event's release
	// task. It applies to task events.
	RecipientTaskCreator = "task_creator"
	// RecipientPlanManager is the manager of the event's release plan: of
	// a plan event, or of the plan whose workflow job started the event's
	// task.
	RecipientPlanManager = "plan_manager"
)

// RecipientRoles are the roles a recipients list may name.
var RecipientRoles = []string{RecipientTaskCreator, RecipientPlanManager}

// Person is a Herald user a message is addressed to.
type Person struct {
	ID, Name, Email string
}

// People finds the people behind recipient roles, at send time (the
// notification hub reads them from its database).
type People interface {
	// Find returns who role names for ev; ok is false when the role means
	// nobody for this event (the plan manager of a project event). A
	// person may come back without an email.
	Find(ctx context.Context, ev *event.Envelope, role string) (p Person, ok bool, err error)
}

// Recipients reads a list of recipient roles.
func (r *ConfigReader) Recipients(name string) []string {
	roles := r.Strings(name, len(RecipientRoles))
	var out []string
	for i, role := range roles {
		if !slices.Contains(RecipientRoles, role) {
			r.Errs.Add(name+"["+strconv.Itoa(i)+"]", "must be one of %s", strings.Join(RecipientRoles, ", "))
			continue
		}
		if !slices.Contains(out, role) {
			out = append(out, role)
		}
	}
	return out
}

// roleWords name a role in errors.
var roleWords = map[string]string{
	RecipientTaskCreator: "the task's creator",
	RecipientPlanManager: "the plan's manager",
}

// ResolveRecipients finds the people of roles for ev. Roles that mean
// nobody for ev are skipped; a person without an email address, or one
// that cannot be found, is a permanent error that names them, so that
// history says whom to fix.
func ResolveRecipients(ctx context.Context, deps Deps, channelName string, ev *event.Envelope, roles []string) ([]Person, error) {
	if len(roles) == 0 {
		return nil, nil
	}
	if deps.People == nil {
		return nil, Permanent("%s: recipients: this Herald cannot look users up; remove recipients", channelName)
	}
	var out []Person
	for _, role := range roles {
		p, ok, err := deps.People.Find(ctx, ev, role)
		if err != nil {
			return nil, Temporary(0, "%s: recipients: look up %s: %v; will retry", channelName, roleWords[role], err)
		}
		if !ok {
			continue
		}
		if strings.TrimSpace(p.Email) == "" {
			who := p.ID
			if p.Name != "" {
				who = fmt.Sprintf("%s (%s)", p.Name, p.ID)
			}
			return nil, Permanent("%s: recipients: %s, %s, has no email address: not sent; add an email to the user, or remove %s from recipients",
				channelName, roleWords[role], who, role)
		}
		if !slices.ContainsFunc(out, func(q Person) bool { return strings.EqualFold(q.Email, p.Email) }) {
			out = append(out, p)
		}
	}
	return out, nil
}

// NoRecipients is the error of a message that has nobody to go to: no
// fixed receivers, and no role that applies to the event.
func NoRecipients(channelName string, ev *event.Envelope, roles []string) error {
	return Permanent("%s: no recipient for %s: %s apply to other events; add fixed receivers or narrow the configuration's events",
		channelName, ev.EventType, strings.Join(roles, " and "))
}
