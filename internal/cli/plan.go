package cli

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

const plansPath = "/api/v1/release/plans"

func planCommands() map[string]command {
	return map[string]command{
		"create": {
			args: "[flags]",
			help: "Create a release plan (POST " + plansPath + "). The body is -f's JSON object (CONTRACT §7), if any,\n" +
				"with the fields of the flags given set over it; --text-job jobs are added to its jobs. The manager\n" +
				"defaults to the caller.",
			maxArgs: 0, setup: planCreate,
		},
		"get":  {args: "PLAN_ID", help: "Show a plan.", minArgs: 1, maxArgs: 1, setup: planGet},
		"list": {args: "[flags]", help: "List plans.", maxArgs: 0, setup: planList},
		"finish-planning": {
			args: "PLAN_ID", help: "End planning: planning → finish_planning (or its external check).",
			minArgs: 1, maxArgs: 1, setup: planAction("finish-planning"),
		},
		"submit-approval": {
			args: "PLAN_ID", help: "Ask the approvers: → wait_for_approval.",
			minArgs: 1, maxArgs: 1, setup: planAction("submit-approval"),
		},
		"approve": {
			args: "PLAN_ID", help: "Approve a plan waiting for approval, as one of its approvers.",
			minArgs: 1, maxArgs: 1, setup: planDecide(true),
		},
		"deny": {
			args: "PLAN_ID", help: "Deny a plan waiting for approval, as one of its approvers.",
			minArgs: 1, maxArgs: 1, setup: planDecide(false),
		},
		"execute": {
			args: "PLAN_ID [JOB]",
			help: "Without JOB: execute the plan (→ executing, or its external check); the manager only, inside the window.\n" +
				"With JOB (its id or name): run that workflow job, or complete that text job (--remark).",
			minArgs: 1, maxArgs: 2, setup: planExecute,
		},
		"skip":   {args: "PLAN_ID JOB", help: "Skip a job (named by id or name).", minArgs: 2, maxArgs: 2, setup: planJobAction("skip")},
		"retry":  {args: "PLAN_ID JOB", help: "Run a failed workflow job (named by id or name) again.", minArgs: 2, maxArgs: 2, setup: planJobAction("retry")},
		"replan": {args: "PLAN_ID", help: "Back to planning, with a new instance_code.", minArgs: 1, maxArgs: 1, setup: planAction("replan")},
		"cancel": {args: "PLAN_ID", help: "Cancel the plan (its running tasks too).", minArgs: 1, maxArgs: 1, setup: planAction("cancel")},
		"logs":   {args: "PLAN_ID", help: "The plan's operation record.", minArgs: 1, maxArgs: 1, setup: planLogs},
		"wait": {
			args: "PLAN_ID",
			help: "Follow a plan, printing each change of its status and of its jobs on stderr and the final plan on stdout.\n" +
				"Exit 0 when it reaches success (or a status of --until); 1 when it ends denied, timeout or cancel, or an\n" +
				"external check fails (or a job fails, with --fail-on-job-failure); 3 when --timeout passes first.",
			minArgs: 1, maxArgs: 1, setup: planWaitCmd,
		},
	}
}

func planCreate(inv *invocation, fs *flag.FlagSet) func(context.Context) error {
	file := fs.String("f", "", "`file` with the plan's JSON body (CONTRACT §7); - reads stdin; flags given override its fields")
	name := fs.String("name", "", "the plan's name (name)")
	manager := fs.String("manager", "", "the release owner's user id (manager_id; default: the caller)")
	start := fs.String("start", "", "start of the release window (start_time): RFC 3339, now, or an offset such as +1h")
	end := fs.String("end", "", "end of the release window (end_time), as --start")
	schedule := fs.String("schedule", "", "when to run the workflow jobs by themselves (schedule_execute_time), as --start")
	description := fs.String("description", "", "description")
	var approvers, sprints, textJobs listFlag
	fs.Var(&approvers, "approver", "approvers' user `ids`, comma-separated or repeated; enables approval")
	mode := fs.String("approval-mode", "", "any (one approver suffices, the default) or all")
	fs.Var(&sprints, "sprint", "JIRA sprint `ids`, comma-separated or repeated (jira_sprints)")
	fs.Func("text-job", "add a text job: `NAME` or NAME=CONTENT; repeatable", func(v string) error {
		if strings.TrimSpace(v) == "" {
			return fmt.Errorf("wants NAME or NAME=CONTENT")
		}
		textJobs = append(textJobs, v)
		return nil
	})
	return func(ctx context.Context) error {
		set := setFlags(fs)
		body, err := inv.readBody(*file)
		if err != nil {
			return err
		}
		now := time.Now()
		for flagName, key := range map[string]string{"start": "start_time", "end": "end_time", "schedule": "schedule_execute_time"} {
			if !set[flagName] {
				continue
			}
			v := map[string]string{"start": *start, "end": *end, "schedule": *schedule}[flagName]
			if strings.TrimSpace(v) == "" {
				body[key] = nil
				continue
			}
			t, err := parseWhen(flagName, v, now)
			if err != nil {
				return err
			}
			body[key] = t
		}
		if set["name"] {
			body["name"] = *name
		}
		if set["manager"] {
			body["manager_id"] = *manager
		}
		if set["description"] {
			body["description"] = *description
		}
		if set["sprint"] {
			body["jira_sprints"] = []string(sprints)
		}
		if set["approver"] || set["approval-mode"] {
			approval, _ := body["approval"].(map[string]any)
			if approval == nil {
				approval = map[string]any{}
			}
			if set["approver"] {
				approval["enabled"] = true
				approval["approvers"] = []string(approvers)
			}
			if set["approval-mode"] {
				if *mode != "any" && *mode != "all" {
					return usagef("--approval-mode must be any or all, not %q", *mode)
				}
				approval["mode"] = *mode
			}
			body["approval"] = approval
		}
		if len(textJobs) > 0 {
			jobs, _ := body["jobs"].([]any)
			for _, tj := range textJobs {
				n, content, _ := strings.Cut(tj, "=")
				jobs = append(jobs, map[string]any{"name": strings.TrimSpace(n), "type": "text", "spec": map[string]string{"content": content}})
			}
			body["jobs"] = jobs
		}
		c, err := inv.client()
		if err != nil {
			return err
		}
		if _, ok := body["manager_id"]; !ok {
			var me struct {
				ID string `json:"id"`
			}
			if _, err := c.JSON(ctx, http.MethodGet, "/api/v1/me", nil, nil, &me); err != nil {
				return err
			}
			body["manager_id"] = me.ID
		}
		raw, err := c.JSON(ctx, http.MethodPost, plansPath, nil, body, nil)
		if err != nil {
			return err
		}
		return inv.show(raw, planText)
	}
}

func planGet(inv *invocation, _ *flag.FlagSet) func(context.Context) error {
	return func(ctx context.Context) error {
		return inv.call(ctx, http.MethodGet, plansPath+"/"+seg(inv.args[0]), nil, nil, planText)
	}
}

func planList(inv *invocation, fs *flag.FlagSet) func(context.Context) error {
	status := fs.String("status", "", "only plans in this status")
	manager := fs.String("manager", "", "only plans of this manager (a user id)")
	limit := fs.Int("limit", 0, "plans per page (the server's default 50, at most 500)")
	cursor := fs.String("cursor", "", "the next_cursor of the previous page")
	return func(ctx context.Context) error {
		q := listQuery(map[string]string{"status": *status, "manager_id": *manager, "cursor": *cursor}, *limit)
		return inv.call(ctx, http.MethodGet, plansPath, q, nil, listText(planLine))
	}
}

// planAction is a status action without a body.
func planAction(action string) func(*invocation, *flag.FlagSet) func(context.Context) error {
	return func(inv *invocation, _ *flag.FlagSet) func(context.Context) error {
		return func(ctx context.Context) error {
			return inv.planPost(ctx, plansPath+"/"+seg(inv.args[0])+"/"+action, nil)
		}
	}
}

func (inv *invocation) planPost(ctx context.Context, path string, body any) error {
	return inv.call(ctx, http.MethodPost, path, nil, body, planText)
}

func planDecide(approve bool) func(*invocation, *flag.FlagSet) func(context.Context) error {
	return func(inv *invocation, fs *flag.FlagSet) func(context.Context) error {
		comment := fs.String("comment", "", "a comment kept with the decision")
		return func(ctx context.Context) error {
			return inv.planPost(ctx, plansPath+"/"+seg(inv.args[0])+"/approve", map[string]any{"approve": approve, "comment": *comment})
		}
	}
}

func planExecute(inv *invocation, fs *flag.FlagSet) func(context.Context) error {
	remark := fs.String("remark", "", "with a text JOB: the remark that completes it")
	return func(ctx context.Context) error {
		if len(inv.args) == 1 {
			if setFlags(fs)["remark"] {
				return usagef("--remark completes a text job: name the job, herald plan execute PLAN_ID JOB --remark …")
			}
			return inv.planPost(ctx, plansPath+"/"+seg(inv.args[0])+"/execute", nil)
		}
		return inv.jobPost(ctx, "execute", map[string]string{"remark": *remark})
	}
}

func planJobAction(action string) func(*invocation, *flag.FlagSet) func(context.Context) error {
	return func(inv *invocation, _ *flag.FlagSet) func(context.Context) error {
		return func(ctx context.Context) error { return inv.jobPost(ctx, action, nil) }
	}
}

// jobPost posts a job action; the job (args[1]) is named by id or name.
func (inv *invocation) jobPost(ctx context.Context, action string, body any) error {
	c, err := inv.client()
	if err != nil {
		return err
	}
	planID, ref := inv.args[0], inv.args[1]
	var p planView
	if _, err := c.JSON(ctx, http.MethodGet, plansPath+"/"+seg(planID), nil, nil, &p); err != nil {
		return err
	}
	jobID, err := findJob(&p, ref)
	if err != nil {
		return err
	}
	raw, err := c.JSON(ctx, http.MethodPost, plansPath+"/"+seg(planID)+"/jobs/"+seg(jobID)+"/"+action, nil, body, nil)
	if err != nil {
		return err
	}
	return inv.show(raw, planText)
}

// findJob finds a job by id, or else by its name, which must be unique.
func findJob(p *planView, ref string) (string, error) {
	var byName []string
	for _, j := range p.Jobs {
		if j.ID == ref {
			return j.ID, nil
		}
		if j.Name == ref {
			byName = append(byName, j.ID)
		}
	}
	switch len(byName) {
	case 1:
		return byName[0], nil
	case 0:
		names := make([]string, len(p.Jobs))
		for i, j := range p.Jobs {
			names[i] = fmt.Sprintf("%q (%s)", j.Name, j.ID)
		}
		return "", &exitError{code: ExitFailed, msg: fmt.Sprintf("plan %s has no job with the id or name %q; its jobs: %s",
			p.ID, ref, strings.Join(names, ", "))}
	}
	return "", &exitError{code: ExitFailed, msg: fmt.Sprintf("plan %s has %d jobs named %q: name the job by its id (%s)",
		p.ID, len(byName), ref, strings.Join(byName, ", "))}
}

func planLogs(inv *invocation, fs *flag.FlagSet) func(context.Context) error {
	limit := fs.Int("limit", 0, "entries per page (the server's default 50, at most 500)")
	cursor := fs.String("cursor", "", "the next_cursor of the previous page")
	return func(ctx context.Context) error {
		q := listQuery(map[string]string{"cursor": *cursor}, *limit)
		return inv.call(ctx, http.MethodGet, plansPath+"/"+seg(inv.args[0])+"/logs", q, nil, listText(planLogLine))
	}
}

func planWaitCmd(inv *invocation, fs *flag.FlagSet) func(context.Context) error {
	w := &planWaitFlags{}
	w.declare(fs, "plan")
	fs.Var(&w.until, "until", "also succeed when the plan reaches this `status` (comma-separated or repeated), e.g. wait_for_approval")
	fs.BoolVar(&w.failOnJobs, "fail-on-job-failure", false, "exit 1 as soon as a job fails (by default the plan waits for a retry or skip)")
	return func(ctx context.Context) error {
		if err := w.check(); err != nil {
			return err
		}
		for _, s := range w.until {
			if !slices.Contains(planStatuses, s) {
				return usagef("--until: %q is not a plan status; the statuses: %s", s, strings.Join(planStatuses, ", "))
			}
		}
		c, err := inv.client()
		if err != nil {
			return err
		}
		return inv.waitPlan(ctx, c, inv.args[0], w)
	}
}
