package notify

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify/channel"
	"github.com/herald-release/herald/internal/validate"
)

// Conditions narrow the events a configuration hears beyond its event
// types. Each non-empty list is a condition an event must meet: its value
// of that attribute is one of the list. An event that does not carry the
// attribute does not meet a condition on it: with environments set, plan
// events and project and version events (which have no environment) are
// not sent; with strategies or task_types set, only task events are; with
// outcomes set, only events that are an outcome (see channel.Outcome) are.
// Use a second configuration for events outside the conditions.
type Conditions struct {
	// Environments are environment names (task events, and environment
	// and host events).
	Environments []string `json:"environments,omitempty"`
	// Strategies are canary, rolling, blue_green (task events).
	Strategies []string `json:"strategies,omitempty"`
	// TaskTypes are deploy, rollback, stop (task events).
	TaskTypes []string `json:"task_types,omitempty"`
	// Outcomes are success, failed, cancelled: canary_completed,
	// full_completed, plan_approved, plan_all_job_done and plan_success
	// are successes; release_failed, rollback_started, plan_denied and
	// plan_timeout failures; release_cancelled and plan_cancelled
	// cancellations.
	Outcomes []string `json:"outcomes,omitempty"`
}

// The values conditions accept.
var (
	Strategies = []string{"canary", "rolling", "blue_green"}
	TaskTypes  = []string{"deploy", "rollback", "stop"}
	Outcomes   = []string{channel.OutcomeSuccess, channel.OutcomeFailed, channel.OutcomeCancelled}
)

// maxConditionValues bounds each list.
const maxConditionValues = 50

// IsZero reports whether no condition is set.
func (c *Conditions) IsZero() bool {
	return c == nil || len(c.Environments)+len(c.Strategies)+len(c.TaskTypes)+len(c.Outcomes) == 0
}

// Match reports whether ev meets every condition.
func (c *Conditions) Match(ev *event.Envelope) bool {
	if c == nil {
		return true
	}
	if len(c.Environments) > 0 && !slices.Contains(c.Environments, ev.Environment) {
		return false
	}
	if len(c.Strategies) > 0 && (ev.Task == nil || !slices.Contains(c.Strategies, ev.Task.Strategy)) {
		return false
	}
	if len(c.TaskTypes) > 0 && (ev.Task == nil || !slices.Contains(c.TaskTypes, ev.Task.Type)) {
		return false
	}
	if len(c.Outcomes) > 0 && !slices.Contains(c.Outcomes, channel.Outcome(ev.EventType)) {
		return false
	}
	return true
}

// checkConditions validates and normalises conditions (trimmed, each value
// once); nil when none is set. Environment names are only checked for
// their shape: a global configuration spans projects, and an environment
// may be created after the configuration.
func checkConditions(in *Conditions, errs *validate.Errors) *Conditions {
	if in.IsZero() {
		return nil
	}
	out := &Conditions{}
	list := func(name string, values []string, allowed []string) []string {
		field := "conditions." + name
		if len(values) > maxConditionValues {
			errs.Add(field, "at most %d values", maxConditionValues)
			return nil
		}
		var got []string
		for i, v := range values {
			v = strings.TrimSpace(v)
			switch {
			case allowed == nil && !validate.IsSlug(v):
				errs.Add(fmt.Sprintf("%s[%d]", field, i), "%q is not an environment name (lowercase letters, digits and dashes)", v)
				continue
			case allowed != nil && !slices.Contains(allowed, v):
				errs.Add(fmt.Sprintf("%s[%d]", field, i), "%q is not one of %s", v, strings.Join(allowed, ", "))
				continue
			}
			if !slices.Contains(got, v) {
				got = append(got, v)
			}
		}
		return got
	}
	out.Environments = list("environments", in.Environments, nil)
	out.Strategies = list("strategies", in.Strategies, Strategies)
	out.TaskTypes = list("task_types", in.TaskTypes, TaskTypes)
	out.Outcomes = list("outcomes", in.Outcomes, Outcomes)
	if out.IsZero() {
		return nil
	}
	return out
}

// conditionsJSON is the stored form: "" for none.
func conditionsJSON(c *Conditions) string {
	if c.IsZero() {
		return ""
	}
	b, _ := json.Marshal(c)
	return string(b)
}

func parseConditions(s string) (*Conditions, error) {
	if s == "" {
		return nil, nil
	}
	var c Conditions
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return nil, err
	}
	if c.IsZero() {
		return nil, nil
	}
	return &c, nil
}
