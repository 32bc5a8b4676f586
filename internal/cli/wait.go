package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Waits poll: the API has no event stream. A poll is one small GET.
const (
	// DefaultInterval is the time between polls.
	DefaultInterval = 2 * time.Second
	// MaxOutage is how long a wait rides out Herald being unreachable or
	// answering 5xx (a restart, a deploy of Herald itself) before giving up.
	MaxOutage = 5 * time.Minute
)

// pollFlags are the flags of every wait.
type pollFlags struct {
	timeout  durationFlag
	interval durationFlag
	quiet    bool
}

func (p *pollFlags) declare(fs *flag.FlagSet, what string) {
	p.interval = durationFlag{s: DefaultInterval.String(), d: DefaultInterval}
	fs.Var(&p.timeout, "timeout", "give up (exit 3) after this `duration`, e.g. 30m; the "+what+" goes on (default: no limit)")
	fs.Var(&p.interval, "interval", "wait this `duration` between polls of the "+what)
	fs.BoolVar(&p.quiet, "quiet", false, "print no progress, only the final "+what)
	fs.BoolVar(&p.quiet, "q", false, "shorthand for --quiet")
}

func (p *pollFlags) names() []string { return []string{"timeout", "interval", "quiet", "q"} }

func (p *pollFlags) check() error {
	if p.interval.d <= 0 {
		return usagef("--interval must be more than 0")
	}
	return nil
}

// taskWaitFlags are the flags of a task wait.
type taskWaitFlags struct {
	pollFlags
	promote        bool
	promoteAfter   durationFlag
	followRollback bool
}

func waitFlags(fs *flag.FlagSet) *taskWaitFlags {
	w := &taskWaitFlags{}
	w.declare(fs, "task")
	fs.BoolVar(&w.promote, "promote", false, "promote the task when it pauses for promotion (a canary that succeeded, a blue-green rollout)")
	fs.Var(&w.promoteAfter, "promote-after", "with --promote: let the paused task bake this `duration` first, e.g. 5m (implies --promote)")
	fs.BoolVar(&w.followRollback, "follow-rollback", false, "when the task fails and rolls back by itself, follow the rollback too before exiting 1")
	return w
}

func (w *taskWaitFlags) names() []string {
	return append(w.pollFlags.names(), "promote", "promote-after", "follow-rollback")
}

func (w *taskWaitFlags) check(set map[string]bool) error {
	if set["promote-after"] {
		w.promote = true
	}
	return w.pollFlags.check()
}

// poller runs the loop shared by waits: the deadline, the pause between
// polls, riding out outages, and telling a timeout from an interrupt.
type poller struct {
	inv          *invocation
	parent, ctx  context.Context
	timeout      time.Duration
	interval     time.Duration
	failingSince time.Time
	seen         bool
}

var errTimeout = errors.New("timed out")

func (inv *invocation) newPoller(ctx context.Context, p *pollFlags) (*poller, context.CancelFunc) {
	pl := &poller{inv: inv, parent: ctx, ctx: ctx, timeout: p.timeout.d, interval: p.interval.d}
	cancel := context.CancelFunc(func() {})
	if p.timeout.d > 0 {
		pl.ctx, cancel = context.WithTimeout(ctx, p.timeout.d)
	}
	return pl, cancel
}

// stopped tells why the wait must end now, if it must: interrupted or
// timed out.
func (p *poller) stopped() error {
	if err := p.parent.Err(); err != nil {
		return context.Canceled
	}
	if p.ctx.Err() != nil {
		return errTimeout
	}
	return nil
}

// get polls path into out. A transient failure after the first success is
// reported once and retried for up to MaxOutage: it returns ok false then.
func (p *poller) get(c *Client, path string, out any) (raw []byte, ok bool, err error) {
	raw, err = c.JSON(p.ctx, http.MethodGet, path, nil, nil, out)
	if stop := p.stopped(); stop != nil {
		return nil, false, stop
	}
	if err != nil {
		if !p.seen || !transient(err) {
			return nil, false, err
		}
		if p.failingSince.IsZero() {
			p.failingSince = time.Now()
			p.inv.progress("Herald is unavailable (%v); trying again for up to %s", err, MaxOutage)
		} else if time.Since(p.failingSince) > MaxOutage {
			return nil, false, err
		}
		return nil, false, nil
	}
	if !p.failingSince.IsZero() {
		p.inv.progress("reached Herald again")
		p.failingSince = time.Time{}
	}
	p.seen = true
	return raw, true, nil
}

// sleep waits d (at most the interval) or until the wait must end.
func (p *poller) sleep(d time.Duration) error {
	if d <= 0 || d > p.interval {
		d = p.interval
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-p.ctx.Done():
		return p.stopped()
	}
}

// waitTask follows task id until it ends and prints its final state.
func (inv *invocation) waitTask(ctx context.Context, c *Client, id string, w *taskWaitFlags) error {
	t, raw, err := inv.followTask(ctx, c, id, w, true)
	if raw != nil {
		if perr := inv.show(raw, taskText); perr != nil && err == nil {
			err = perr
		}
	}
	if errors.Is(err, errTimeout) {
		state := "not reached yet"
		if t != nil {
			state = "now " + taskState(t)
		}
		return &exitError{code: ExitTimeout, msg: fmt.Sprintf("timed out after %s waiting for task %s (%s); the task goes on: "+
			"herald task cancel %s stops it", w.timeout.d, id, state, id)}
	}
	if err != nil {
		return err
	}
	switch t.Status {
	case "success":
		return nil
	case "cancelled":
		return &exitError{code: ExitFailed, msg: fmt.Sprintf("task %s was cancelled", id)}
	}
	msg := fmt.Sprintf("task %s failed", id)
	if t.Error != "" {
		msg += ": " + t.Error
	}
	if t.RollbackTaskID != "" {
		msg += fmt.Sprintf("; it is rolled back by task %s", t.RollbackTaskID)
		if w.followRollback {
			rb, _, rerr := inv.followTask(ctx, c, t.RollbackTaskID, &taskWaitFlags{pollFlags: w.pollFlags}, false)
			switch {
			case errors.Is(rerr, errTimeout):
				msg += ", still running at the timeout"
			case rerr != nil:
				return rerr
			default:
				msg += ", which ended " + rb.Status
			}
		}
	}
	return &exitError{code: ExitFailed, msg: msg}
}

// followTask polls a task until it ends, reporting its changes; it returns
// the last state seen. withPromote applies --promote.
func (inv *invocation) followTask(ctx context.Context, c *Client, id string, w *taskWaitFlags, withPromote bool) (*taskView, []byte, error) {
	p, cancel := inv.newPoller(ctx, &w.pollFlags)
	defer cancel()
	var (
		prev        *taskView
		lastRaw     []byte
		pausedSince time.Time
		promoted    bool
	)
	for {
		var t taskView
		raw, ok, err := p.get(c, tasksPath+"/"+seg(id), &t)
		if err != nil {
			return prev, lastRaw, err
		}
		wait := time.Duration(0)
		if ok {
			if !w.quiet {
				promoting := ""
				if w.promote && withPromote {
					promoting = "promoting it now"
					if w.promoteAfter.d > 0 {
						promoting = fmt.Sprintf("promoting it in %s (--promote-after)", w.promoteAfter.d)
					}
				}
				inv.reportTask(prev, &t, promoting)
			}
			prev, lastRaw = &t, raw
			switch t.Status {
			case "success", "failed", "cancelled":
				if t.Status == "failed" && !w.quiet {
					for _, h := range t.Hosts {
						if h.Status == "failed" {
							inv.progress("  host %s failed%s: herald task logs %s --host %s shows its output", h.Name, exitText(h.ExitCode), t.ID, h.Name)
						}
					}
				}
				return &t, raw, nil
			case "paused":
				if pausedSince.IsZero() {
					pausedSince = time.Now()
				}
				if withPromote && w.promote && !promoted {
					left := w.promoteAfter.d - time.Since(pausedSince)
					if left > 0 {
						wait = left
						break
					}
					if !w.quiet {
						inv.progress("promoting task %s", t.ID)
					}
					_, err := c.JSON(p.ctx, http.MethodPost, tasksPath+"/"+seg(id)+"/promote", nil, nil, nil)
					if stop := p.stopped(); stop != nil {
						return prev, lastRaw, stop
					}
					var ae *APIError
					switch {
					case err == nil:
						promoted = true
						continue
					case errors.As(err, &ae) && ae.Status == http.StatusConflict:
						// Promoted or cancelled meanwhile: the next poll tells.
						promoted = true
						inv.progress("promote: %s", ae.Error())
						continue
					case transient(err):
						inv.progress("promote failed (%v); trying again", err)
					default:
						return prev, lastRaw, err
					}
				}
			default:
				pausedSince, promoted = time.Time{}, false
			}
		}
		if err := p.sleep(wait); err != nil {
			return prev, lastRaw, err
		}
	}
}

// reportTask prints what changed since prev (nil: the first look);
// promoting says what --promote does with a pause ("": nothing).
func (inv *invocation) reportTask(prev, t *taskView, promoting string) {
	if prev == nil || prev.Status != t.Status || prev.Phase != t.Phase {
		inv.progress("%s", taskLine(t))
		if t.Status == "paused" {
			hint := "  paused for promotion: " + promoting
			if promoting == "" {
				hint += fmt.Sprintf("herald task promote %s (or wait with --promote)", t.ID)
			}
			if t.AutoPromoteAt != nil {
				hint += fmt.Sprintf("; promotes itself at %s", t.AutoPromoteAt.Local().Format(time.RFC3339))
			}
			inv.progress("%s", hint)
		}
	}
	before := map[string]string{}
	if prev != nil {
		for _, h := range prev.Hosts {
			before[h.Name] = h.Status
		}
	}
	for _, h := range t.Hosts {
		if h.Status == before[h.Name] || (prev == nil && h.Status == "pending") {
			continue
		}
		line := fmt.Sprintf("  host %s: %s", h.Name, h.Status)
		var where []string
		if h.Batch > 0 {
			where = append(where, fmt.Sprintf("batch %d", h.Batch))
		}
		if h.Phase != "" {
			where = append(where, h.Phase)
		}
		if len(where) > 0 {
			line += " (" + strings.Join(where, ", ") + ")"
		}
		line += exitText(h.ExitCode)
		if h.Error != "" {
			line += ": " + h.Error
		}
		inv.progress("%s", line)
	}
}

// Plan statuses of CONTRACT §7.
var planStatuses = []string{"planning", "finish_planning", "wait_for_approval", "executing", "denied", "timeout", "success", "cancel",
	"wait_for_finish_planning_external_check", "wait_for_finish_planning_external_check_failed",
	"wait_for_execute_external_check", "wait_for_execute_external_check_failed",
	"wait_for_all_done_external_check", "wait_for_all_done_external_check_failed"}

// planFailed tells whether a plan status ends a wait as a failure.
func planFailed(status string) bool {
	return status == "denied" || status == "timeout" || status == "cancel" || strings.HasSuffix(status, "_external_check_failed")
}

type planWaitFlags struct {
	pollFlags
	until      listFlag
	failOnJobs bool
}

// waitPlan follows plan id until it ends (or reaches --until) and prints
// its final state.
func (inv *invocation) waitPlan(ctx context.Context, c *Client, id string, w *planWaitFlags) error {
	p, cancel := inv.newPoller(ctx, &w.pollFlags)
	defer cancel()
	var (
		prev    *planView
		lastRaw []byte
		result  error
	)
	for result == nil {
		var pl planView
		raw, ok, err := p.get(c, plansPath+"/"+seg(id), &pl)
		if err != nil {
			result = err
			break
		}
		if ok {
			if !w.quiet {
				inv.reportPlan(prev, &pl)
			}
			prev, lastRaw = &pl, raw
			var failedJob *jobView
			for i := range pl.Jobs {
				if pl.Jobs[i].Status == "failed" && failedJob == nil {
					failedJob = &pl.Jobs[i]
				}
			}
			switch {
			case slices.Contains(w.until, pl.Status) || pl.Status == "success":
				result = errDone
			case planFailed(pl.Status):
				msg := fmt.Sprintf("plan %s ended %s", id, pl.Status)
				if pl.ExternalCheck != nil && pl.ExternalCheck.FailedReason != "" {
					msg += ": " + pl.ExternalCheck.FailedReason
				}
				result = &exitError{code: ExitFailed, msg: msg}
			case w.failOnJobs && failedJob != nil:
				msg := fmt.Sprintf("plan %s: job %q failed", id, failedJob.Name)
				if failedJob.Error != "" {
					msg += ": " + failedJob.Error
				}
				result = &exitError{code: ExitFailed, msg: msg}
			}
			if result != nil {
				break
			}
		}
		if err := p.sleep(0); err != nil {
			result = err
		}
	}
	if lastRaw != nil {
		if err := inv.show(lastRaw, planText); err != nil && result == errDone {
			return err
		}
	}
	switch {
	case result == errDone:
		return nil
	case errors.Is(result, errTimeout):
		state := "not yet seen"
		if prev != nil {
			state = "now " + prev.Status
		}
		return &exitError{code: ExitTimeout, msg: fmt.Sprintf("timed out after %s waiting for plan %s (%s); the plan goes on", w.timeout.d, id, state)}
	}
	return result
}

var errDone = errors.New("done")

func (inv *invocation) reportPlan(prev, p *planView) {
	if prev == nil || prev.Status != p.Status {
		inv.progress("%s", planLine(p))
		switch p.Status {
		case "wait_for_approval":
			inv.progress("  waiting for approval: herald plan approve %s (or deny)", p.ID)
		case "finish_planning":
			if !p.Approval.Enabled {
				inv.progress("  ready: herald plan execute %s", p.ID)
			}
		}
	}
	before := map[string]string{}
	if prev != nil {
		for _, j := range prev.Jobs {
			before[j.ID] = j.Status
		}
	}
	for _, j := range p.Jobs {
		if j.Status == before[j.ID] || (prev == nil && j.Status == "todo") {
			continue
		}
		line := fmt.Sprintf("  job %q: %s", j.Name, j.Status)
		if id := j.taskID(); id != "" && j.Type == "workflow" {
			line += " (task " + id + ")"
		}
		if j.Error != "" {
			line += ": " + j.Error
		}
		inv.progress("%s", line)
	}
}
