package plan

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/herald-release/herald/internal/apperr"
	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/identity"
	"github.com/herald-release/herald/internal/validate"
)

// CallbackInput is the body of POST /api/callback/release_plan.
type CallbackInput struct {
	HookEvent     string `json:"hook_event"`
	ReleasePlanID string `json:"release_plan_id"`
	InstanceCode  string `json:"instance_code"`
	Result        string `json:"result"`
	FailedReason  string `json:"failed_reason"`
}

// Callback results.
const (
	ResultSuccess = "success"
	ResultFailed  = "failed"
)

// MaxFailedReason bounds failed_reason.
const MaxFailedReason = 4 << 10

// CheckToken verifies the X-Herald-Token of a callback against the hook
// secret; with no secret configured no callback is accepted.
func (s *Service) CheckToken(ctx context.Context, token string) error {
	hs, err := loadSettings(ctx, s.db)
	if err != nil {
		return err
	}
	secret, err := s.openSecret(hs)
	if err != nil {
		return err
	}
	if secret == "" || token == "" || !identity.SameToken(token, secret) {
		return apperr.Unauthorized("missing or wrong X-Herald-Token: send the plan hook's hook_secret")
	}
	return nil
}

// Callback applies the external system's answer to the check the plan
// waits for. The same answer again changes nothing and succeeds again; a
// different answer to a check already answered, an old instance_code, or
// a plan not waiting for that check is refused. The caller has checked
// the token (CheckToken).
func (s *Service) Callback(ctx context.Context, in CallbackInput) error {
	var errs validate.Errors
	in.ReleasePlanID, in.InstanceCode = strings.TrimSpace(in.ReleasePlanID), strings.TrimSpace(in.InstanceCode)
	if !contains(HookEvents(), in.HookEvent) {
		errs.Add("hook_event", "must be finish_planning, start_execute or all_job_done, not %q", in.HookEvent)
	}
	if in.ReleasePlanID == "" {
		errs.Add("release_plan_id", "is required")
	}
	if in.InstanceCode == "" {
		errs.Add("instance_code", "is required: the instance_code of the hook being answered")
	}
	if in.Result != ResultSuccess && in.Result != ResultFailed {
		errs.Add("result", "must be \"success\" or \"failed\", not %q", in.Result)
	}
	if len(in.FailedReason) > MaxFailedReason {
		errs.Add("failed_reason", "must be at most %d bytes", MaxFailedReason)
	}
	if strings.ContainsRune(in.ReleasePlanID+in.InstanceCode+in.FailedReason, 0) {
		errs.Add("body", "must not contain NUL characters")
	}
	if err := errs.Err(); err != nil {
		return err
	}
	return s.db.InTx(ctx, func(tx db.Tx) error {
		p, err := lockPlan(ctx, tx, in.ReleasePlanID)
		if err != nil {
			return err
		}
		if in.InstanceCode != p.InstanceCode {
			return apperr.Conflict("instance_code %q is not the plan's current round (%s): the plan was edited or replanned since that hook",
				in.InstanceCode, p.InstanceCode)
		}
		var prev, prevReason string
		err = tx.QueryRow(ctx, `SELECT result, failed_reason FROM release_plan_callbacks WHERE plan_id = $1 AND instance_code = $2 AND hook_event = $3`,
			p.ID, p.InstanceCode, in.HookEvent).Scan(&prev, &prevReason)
		switch {
		case err == nil && prev == in.Result:
			return nil // the same answer again: already applied
		case err == nil:
			return apperr.Conflict("the %s check of this round was already answered %s", in.HookEvent, prev)
		case !errors.Is(err, db.ErrNoRows):
			return err
		}
		ev, ok := waitingFor(p.Status)
		if !ok || ev != in.HookEvent {
			return apperr.InvalidState("plan %s is %s: it is not waiting for the %s check", p.ID, p.Status, in.HookEvent)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO release_plan_callbacks (plan_id, instance_code, hook_event, result, failed_reason, created_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, p.ID, p.InstanceCode, in.HookEvent, in.Result, in.FailedReason, s.stamp()); err != nil {
			return err
		}
		actor := SystemActor
		actor.Name = "external system"
		detail := fmt.Sprintf("%s check: %s", in.HookEvent, in.Result)
		if in.Result == ResultFailed && strings.TrimSpace(in.FailedReason) != "" {
			detail += ": " + strings.TrimSpace(in.FailedReason)
		}
		if err := s.writeLog(ctx, tx, p, actor, logEntry{Action: "callback", Detail: detail,
			After: map[string]string{"hook_event": in.HookEvent, "instance_code": in.InstanceCode, "result": in.Result, "failed_reason": in.FailedReason}}); err != nil {
			return err
		}
		if in.Result == ResultFailed {
			reason := strings.TrimSpace(in.FailedReason)
			if reason == "" {
				reason = "the external system answered failed"
			}
			return s.checkFailed(ctx, tx, p, actor, "check_failed", reason)
		}
		return s.checkPassed(ctx, tx, p, actor, "check_passed", detail)
	})
}
