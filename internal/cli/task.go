package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

const tasksPath = "/api/v1/release/tasks"

func taskCommands() map[string]command {
	return map[string]command{
		"create": {
			args: "[flags]",
			help: "Start a release task (POST " + tasksPath + "). The body is -f's JSON object (CONTRACT §5), if any,\n" +
				"with the fields of the flags given set over it. With --wait, follow the task as \"herald task wait\" does\n" +
				"and exit as it does; without, print the created task.",
			maxArgs: 0, setup: taskCreate,
		},
		"get":  {args: "TASK_ID", help: "Show a task.", minArgs: 1, maxArgs: 1, setup: taskGet},
		"list": {args: "[flags]", help: "List tasks, newest first.", maxArgs: 0, setup: taskList},
		"promote": {
			args: "TASK_ID", help: "Promote a task paused for promotion (a canary that succeeded, or a blue-green rollout\nwaiting for the switch).",
			minArgs: 1, maxArgs: 1, setup: taskAction("promote"),
		},
		"cancel": {
			args: "TASK_ID", help: "Cancel a task: running hosts finish, the rest are skipped.",
			minArgs: 1, maxArgs: 1, setup: taskAction("cancel"),
		},
		"retry": {
			args: "TASK_ID", help: "Run a failed task's failed and skipped hosts again.",
			minArgs: 1, maxArgs: 1, setup: taskAction("retry"),
		},
		"wait": {
			args: "TASK_ID",
			help: "Follow a task until it ends, printing each change of its status and of its hosts on stderr and the\n" +
				"final task on stdout. Exit 0 on success; 1 when it ends failed or cancelled (rolled back or not);\n" +
				"3 when --timeout passes first (the task goes on). A task paused for promotion is promoted with\n" +
				"--promote (after --promote-after, if given); otherwise the wait goes on until someone promotes it.",
			minArgs: 1, maxArgs: 1, setup: taskWaitCmd,
		},
		"logs": {
			args:    "TASK_ID",
			help:    "Print a host's output (the last 64 KiB), or every host's, each under a header, without --host.",
			minArgs: 1, maxArgs: 1, setup: taskLogs,
		},
	}
}

func taskCreate(inv *invocation, fs *flag.FlagSet) func(context.Context) error {
	file := fs.String("f", "", "`file` with the task's JSON body (CONTRACT §5); - reads stdin; flags given override its fields")
	project := fs.String("project", "", "project id (project_id)")
	var environment string
	fs.StringVar(&environment, "env", "", "environment name (environment)")
	fs.StringVar(&environment, "environment", "", "same as --env")
	version := fs.String("version", "", "version name (version)")
	versionID := fs.String("version-id", "", "version id (version_id)")
	typ := fs.String("type", "", "deploy (the default), rollback or stop (type)")
	strategy := fs.String("strategy", "", "rolling (the default), canary or blue_green (strategy)")
	var hosts listFlag
	fs.Var(&hosts, "hosts", "the hosts to run on: `names`, comma-separated or repeated (default: every host of the environment)")
	canary := fs.String("canary", "", "canary size: a host count (1) or a percent (10%); implies --strategy canary")
	var autoPromote durationFlag
	fs.Var(&autoPromote, "auto-promote-after", "promote a paused canary or blue-green task by itself after this `duration` (e.g. 10m)")
	batch := fs.String("batch-size", "", "hosts per batch after the canary: a count (2) or a percent (25%)")
	maxParallel := fs.Int("max-parallel", 0, "hosts run at once inside a batch (default: the batch size)")
	maxFailures := fs.Int("max-failures", 0, "failed hosts tolerated before the task fails")
	autoRollback := fs.Bool("auto-rollback", false, "on failure, roll the updated hosts back to the previous version")
	wait := fs.Bool("wait", false, "follow the task until it ends, as \"herald task wait\" does (its flags apply)")
	w := waitFlags(fs)
	return func(ctx context.Context) error {
		set := setFlags(fs)
		if !*wait {
			for _, n := range w.names() {
				if set[n] {
					return usagef("--%s is a flag of --wait: add --wait, or leave it out", n)
				}
			}
		}
		if err := w.check(set); err != nil {
			return err
		}
		body, err := inv.readBody(*file)
		if err != nil {
			return err
		}
		strs := map[string]struct{ key, val string }{
			"project": {"project_id", *project}, "env": {"environment", environment}, "environment": {"environment", environment},
			"version": {"version", *version}, "version-id": {"version_id", *versionID}, "type": {"type", *typ},
			"strategy": {"strategy", *strategy},
		}
		for name, kv := range strs {
			if set[name] {
				body[kv.key] = strings.TrimSpace(kv.val)
			}
		}
		if set["version"] && !set["version-id"] {
			delete(body, "version_id") // the flag names the version: a file's id must not win
		}
		if set["version-id"] && !set["version"] {
			delete(body, "version")
		}
		if set["hosts"] {
			body["hosts"] = []string(hosts)
		}
		if set["canary"] {
			n, pct, err := countOrPercent("canary", *canary)
			if err != nil {
				return err
			}
			if pct {
				body["canary"] = map[string]int{"percent": n}
			} else {
				body["canary"] = map[string]int{"count": n}
			}
			if !set["strategy"] {
				if _, ok := body["strategy"]; !ok {
					body["strategy"] = "canary"
				}
			}
		}
		if set["auto-promote-after"] {
			body["auto_promote_after"] = autoPromote.s
		}
		if set["batch-size"] {
			n, pct, err := countOrPercent("batch-size", *batch)
			if err != nil {
				return err
			}
			delete(body, "batch_size")
			delete(body, "batch_percent")
			if pct {
				body["batch_percent"] = n
			} else {
				body["batch_size"] = n
			}
		}
		if set["max-parallel"] {
			if *maxParallel < 1 {
				return usagef("--max-parallel must be at least 1")
			}
			body["max_parallel"] = *maxParallel
		}
		if set["max-failures"] {
			if *maxFailures < 0 {
				return usagef("--max-failures must not be negative")
			}
			body["max_failures"] = *maxFailures
		}
		if set["auto-rollback"] {
			body["auto_rollback"] = *autoRollback
		}
		c, err := inv.client()
		if err != nil {
			return err
		}
		raw, err := c.JSON(ctx, http.MethodPost, tasksPath, nil, body, nil)
		if err != nil {
			return err
		}
		if !*wait {
			return inv.show(raw, taskText)
		}
		var t taskView
		if err := json.Unmarshal(raw, &t); err != nil || t.ID == "" {
			return fmt.Errorf("the answer to create is not a task: %s", raw)
		}
		if !w.quiet {
			inv.progress("created task %s: %s/%s %s %s", t.ID, t.ProjectID, t.Environment, t.Type, t.Strategy)
		}
		return inv.waitTask(ctx, c, t.ID, w)
	}
}

func taskGet(inv *invocation, _ *flag.FlagSet) func(context.Context) error {
	return func(ctx context.Context) error {
		return inv.call(ctx, http.MethodGet, tasksPath+"/"+seg(inv.args[0]), nil, nil, taskText)
	}
}

func taskList(inv *invocation, fs *flag.FlagSet) func(context.Context) error {
	project := fs.String("project", "", "only this project's tasks")
	var environment string
	fs.StringVar(&environment, "env", "", "only this environment's tasks")
	fs.StringVar(&environment, "environment", "", "same as --env")
	status := fs.String("status", "", "only tasks in this status: pending, running, paused, success, failed or cancelled")
	limit := fs.Int("limit", 0, "tasks per page (the server's default 50, at most 500)")
	cursor := fs.String("cursor", "", "the next_cursor of the previous page")
	return func(ctx context.Context) error {
		q := listQuery(map[string]string{"project_id": *project, "environment": environment, "status": *status, "cursor": *cursor}, *limit)
		return inv.call(ctx, http.MethodGet, tasksPath, q, nil, listText(taskLine))
	}
}

// taskAction is promote, cancel or retry: a POST without a body.
func taskAction(action string) func(*invocation, *flag.FlagSet) func(context.Context) error {
	return func(inv *invocation, _ *flag.FlagSet) func(context.Context) error {
		return func(ctx context.Context) error {
			return inv.call(ctx, http.MethodPost, tasksPath+"/"+seg(inv.args[0])+"/"+action, nil, nil, taskText)
		}
	}
}

func taskWaitCmd(inv *invocation, fs *flag.FlagSet) func(context.Context) error {
	w := waitFlags(fs)
	return func(ctx context.Context) error {
		if err := w.check(setFlags(fs)); err != nil {
			return err
		}
		c, err := inv.client()
		if err != nil {
			return err
		}
		return inv.waitTask(ctx, c, inv.args[0], w)
	}
}

func taskLogs(inv *invocation, fs *flag.FlagSet) func(context.Context) error {
	host := fs.String("host", "", "the host whose output to print (default: every host, each under a header)")
	return func(ctx context.Context) error {
		c, err := inv.client()
		if err != nil {
			return err
		}
		id := inv.args[0]
		logs := func(h string) ([]byte, error) {
			return c.Do(ctx, http.MethodGet, tasksPath+"/"+seg(id)+"/logs", url.Values{"host": {h}}, nil)
		}
		if *host != "" {
			out, err := logs(*host)
			if err != nil {
				return err
			}
			_, err = inv.env.Stdout.Write(out)
			return err
		}
		var t taskView
		if _, err := c.JSON(ctx, http.MethodGet, tasksPath+"/"+seg(id), nil, nil, &t); err != nil {
			return err
		}
		for i, h := range t.Hosts {
			out, err := logs(h.Name)
			if err != nil {
				return err
			}
			if i > 0 {
				fmt.Fprintln(inv.env.Stdout)
			}
			fmt.Fprintf(inv.env.Stdout, "==> %s (%s%s) <==\n", h.Name, h.Status, exitText(h.ExitCode))
			if _, err := inv.env.Stdout.Write(out); err != nil {
				return err
			}
			if len(out) > 0 && out[len(out)-1] != '\n' {
				fmt.Fprintln(inv.env.Stdout)
			}
		}
		return nil
	}
}

func exitText(code *int) string {
	if code == nil {
		return ""
	}
	return fmt.Sprintf(", exit %d", *code)
}
