package engine

import (
	"fmt"
	"slices"
	"strings"

	"github.com/herald-release/herald/internal/duration"
	"github.com/herald-release/herald/internal/inventory"
	"github.com/herald-release/herald/internal/release/executor"
	"github.com/herald-release/herald/internal/validate"
)

// CreateInput is the body of POST /api/v1/release/tasks (CONTRACT §5).
type CreateInput struct {
	ProjectID        string            `json:"project_id"`
	Environment      string            `json:"environment"`
	VersionID        string            `json:"version_id"`
	Version          string            `json:"version"`
	Type             string            `json:"type"`
	Strategy         string            `json:"strategy"`
	Hosts            []string          `json:"hosts"`
	Canary           *Canary           `json:"canary"`
	AutoPromoteAfter duration.Duration `json:"auto_promote_after"`
	BatchSize        int               `json:"batch_size"`
	BatchPercent     int               `json:"batch_percent"`
	MaxParallel      int               `json:"max_parallel"`
	MaxFailures      int               `json:"max_failures"`
	AutoRollback     bool              `json:"auto_rollback"`
	Executor         *executor.Spec    `json:"executor"`
}

// normalize fills defaults (deploy, rolling) and checks everything that
// needs no database; errors name the body's fields.
func (in *CreateInput) normalize() validate.Errors {
	var errs validate.Errors
	in.ProjectID = strings.TrimSpace(in.ProjectID)
	in.Environment = strings.TrimSpace(in.Environment)
	in.Version = strings.TrimSpace(in.Version)
	in.VersionID = strings.TrimSpace(in.VersionID)
	if in.ProjectID == "" {
		errs.Add("project_id", "is required")
	}
	if in.Environment == "" {
		errs.Add("environment", "is required")
	}
	if in.Type == "" {
		in.Type = TypeDeploy
	}
	if in.Strategy == "" {
		in.Strategy = StrategyRolling
	}
	if !slices.Contains(types, in.Type) {
		errs.Add("type", "must be deploy, rollback or stop, not %q", in.Type)
	}
	if !slices.Contains(strategies, in.Strategy) {
		errs.Add("strategy", "must be canary, rolling or blue_green, not %q", in.Strategy)
	}
	if in.Type == TypeDeploy && in.VersionID == "" && in.Version == "" {
		errs.Add("version_id", "is required for a deploy: give version_id, or the version's name as version")
	}

	seen := map[string]bool{}
	for i, h := range in.Hosts {
		switch {
		case strings.TrimSpace(h) == "":
			errs.Add(fmt.Sprintf("hosts[%d]", i), "is empty")
		case seen[h]:
			errs.Add(fmt.Sprintf("hosts[%d]", i), "%q is listed twice", h)
		}
		seen[h] = true
	}

	if in.Canary != nil {
		switch {
		case in.Strategy != StrategyCanary:
			errs.Add("canary", "is only for strategy canary")
		case in.Canary.Count != 0 && in.Canary.Percent != 0:
			errs.Add("canary", "give count or percent, not both")
		}
		if in.Canary.Count < 0 {
			errs.Add("canary.count", "must be at least 1")
		}
		if in.Canary.Percent < 0 || in.Canary.Percent > 100 {
			errs.Add("canary.percent", "must be between 1 and 100")
		}
	}
	if in.AutoPromoteAfter != 0 && in.Strategy == StrategyRolling {
		errs.Add("auto_promote_after", "is only for strategies canary and blue_green: a rolling task never pauses")
	}
	if in.AutoPromoteAfter.D() > MaxAutoPromote {
		errs.Add("auto_promote_after", "must be at most %s", MaxAutoPromote)
	}
	if in.BatchSize != 0 && in.BatchPercent != 0 {
		errs.Add("batch_size", "give batch_size or batch_percent, not both")
	}
	if in.BatchSize < 0 {
		errs.Add("batch_size", "must be at least 1")
	}
	if in.BatchPercent < 0 || in.BatchPercent > 100 {
		errs.Add("batch_percent", "must be between 1 and 100")
	}
	if in.MaxParallel < 0 {
		errs.Add("max_parallel", "must be at least 1 (absent: the batch size)")
	}
	if in.MaxFailures < 0 {
		errs.Add("max_failures", "must not be negative")
	}
	if in.AutoRollback && in.Type != TypeDeploy {
		errs.Add("auto_rollback", "is only for deploy tasks")
	}
	if in.Executor != nil {
		errs.Merge("executor", executor.Validate(*in.Executor))
	}
	return errs
}

// options is what the task row keeps of the input.
func (in *CreateInput) options() TaskOptions {
	o := TaskOptions{
		AutoPromoteAfter: in.AutoPromoteAfter,
		BatchSize:        in.BatchSize,
		BatchPercent:     in.BatchPercent,
		MaxParallel:      in.MaxParallel,
		MaxFailures:      in.MaxFailures,
		AutoRollback:     in.AutoRollback,
	}
	if in.Strategy == StrategyCanary {
		c := Canary{Count: 1}
		if in.Canary != nil && (in.Canary.Count > 0 || in.Canary.Percent > 0) {
			c = *in.Canary
		}
		o.Canary = &c
	}
	return o
}

// selectHosts picks the task's hosts among the environment's, in order:
// as listed in the request, or by name. Blue-green keeps only the idle
// group and refuses hosts without a group label. Field errors name the
// request's fields.
func selectHosts(all []*inventory.Host, requested []string, strategy, idle string) ([]*inventory.Host, validate.Errors) {
	var errs validate.Errors
	if len(all) == 0 {
		errs.Add("environment", "has no hosts: add hosts to it first")
		return nil, errs
	}
	byName := make(map[string]*inventory.Host, len(all))
	for _, h := range all {
		byName[h.Name] = h
	}
	var picked []*inventory.Host
	if len(requested) > 0 {
		for i, name := range requested {
			h, ok := byName[name]
			if !ok {
				errs.Add(fmt.Sprintf("hosts[%d]", i), "host %q is not in this environment", name)
				continue
			}
			picked = append(picked, h)
		}
		if len(errs) > 0 {
			return nil, errs
		}
	} else {
		picked = all
	}
	if strategy != StrategyBlueGreen {
		return picked, nil
	}

	var idleHosts []*inventory.Host
	var unlabelled []string
	for i, h := range picked {
		switch h.Labels[GroupLabel] {
		case idle:
			idleHosts = append(idleHosts, h)
		case GroupBlue, GroupGreen:
			if len(requested) > 0 {
				errs.Add(fmt.Sprintf("hosts[%d]", i), "host %q is in the live group %s; blue_green deploys to the idle group %s", h.Name, h.Labels[GroupLabel], idle)
			}
		default:
			unlabelled = append(unlabelled, h.Name)
		}
	}
	if len(unlabelled) > 0 {
		errs.Add("strategy", "blue_green needs every host labelled group=blue or group=green; %s %s not",
			strings.Join(truncateList(unlabelled, 5), ", "), map[bool]string{true: "is", false: "are"}[len(unlabelled) == 1])
	}
	if len(errs) == 0 && len(idleHosts) == 0 {
		errs.Add("strategy", "no host is labelled group=%s, the idle group this blue_green release deploys to", idle)
	}
	return idleHosts, errs
}

func truncateList(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(s[:n:n], fmt.Sprintf("and %d more", len(s)-n))
}
