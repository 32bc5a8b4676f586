package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The views below hold what the CLI reads of the server's objects; the
// JSON output is always the server's own, so fields added there show
// without a change here.

type taskView struct {
	ID              string     `json:"id"`
	ProjectID       string     `json:"project_id"`
	Environment     string     `json:"environment"`
	VersionID       string     `json:"version_id"`
	Version         string     `json:"version"`
	Type            string     `json:"type"`
	Strategy        string     `json:"strategy"`
	Status          string     `json:"status"`
	Phase           string     `json:"phase"`
	AutoRollback    bool       `json:"auto_rollback"`
	CancelRequested bool       `json:"cancel_requested"`
	AutoPromoteAt   *time.Time `json:"auto_promote_at"`
	Error           string     `json:"error"`
	RollbackOf      string     `json:"rollback_of"`
	RollbackTaskID  string     `json:"rollback_task_id"`
	Counts          struct {
		Total     int `json:"total"`
		Canary    int `json:"canary"`
		Completed int `json:"completed"`
		Failed    int `json:"failed"`
	} `json:"counts"`
	Hosts    []hostView `json:"hosts"`
	Duration string     `json:"duration"`
}

type hostView struct {
	Name     string `json:"name"`
	Status   string `json:"status"`
	Batch    int    `json:"batch"`
	Phase    string `json:"phase"`
	ExitCode *int   `json:"exit_code"`
	Error    string `json:"error"`
}

type planView struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Manager      string `json:"manager"`
	ManagerID    string `json:"manager_id"`
	Status       string `json:"status"`
	InstanceCode string `json:"instance_code"`
	Approval     struct {
		Enabled bool   `json:"enabled"`
		Status  string `json:"status"`
	} `json:"approval"`
	ExternalCheck *struct {
		HookEvent    string `json:"hook_event"`
		FailedReason string `json:"failed_reason"`
	} `json:"external_check"`
	Jobs []jobView `json:"jobs"`
}

type jobView struct {
	ID     string          `json:"id"`
	Name   string          `json:"name"`
	Type   string          `json:"type"`
	Status string          `json:"status"`
	Spec   json.RawMessage `json:"spec"`
	Error  string          `json:"error"`
}

// taskID is the task a workflow job runs, if any.
func (j jobView) taskID() string {
	var s struct {
		TaskID string `json:"task_id"`
	}
	_ = json.Unmarshal(j.Spec, &s)
	return s.TaskID
}

type planLogView struct {
	Action string `json:"action"`
	Actor  struct {
		Name string `json:"name"`
	} `json:"actor"`
	TargetType string    `json:"target_type"`
	TargetName string    `json:"target_name"`
	Detail     string    `json:"detail"`
	CreatedAt  time.Time `json:"created_at"`
}

// printJSON writes a server answer indented.
func printJSON(w io.Writer, raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(raw), "", "  "); err != nil {
		_, err = w.Write(raw)
		return err
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// taskLine is a task in one line.
func taskLine(t *taskView) string {
	var b strings.Builder
	fmt.Fprintf(&b, "task %s %s/%s %s", t.ID, t.ProjectID, t.Environment, t.Type)
	if t.Version != "" {
		fmt.Fprintf(&b, " %s", t.Version)
	}
	fmt.Fprintf(&b, " %s: %s", t.Strategy, taskState(t))
	return b.String()
}

// taskState is where a task stands: its status, phase, counts, duration,
// error and rollback.
func taskState(t *taskView) string {
	var b strings.Builder
	b.WriteString(t.Status)
	if t.Phase != "" && (t.Status == "running" || t.Status == "paused") {
		fmt.Fprintf(&b, " (phase %s)", t.Phase)
	}
	fmt.Fprintf(&b, ", %d/%d hosts done", t.Counts.Completed, t.Counts.Total)
	if t.Counts.Failed > 0 {
		fmt.Fprintf(&b, ", %d failed", t.Counts.Failed)
	}
	if t.Duration != "" {
		fmt.Fprintf(&b, ", %s", t.Duration)
	}
	if t.Error != "" {
		fmt.Fprintf(&b, ": %s", t.Error)
	}
	if t.RollbackTaskID != "" {
		fmt.Fprintf(&b, "; rolled back by task %s", t.RollbackTaskID)
	}
	return b.String()
}

// planLine is a plan in one line.
func planLine(p *planView) string {
	counts := map[string]int{}
	for _, j := range p.Jobs {
		counts[j.Status]++
	}
	var b strings.Builder
	fmt.Fprintf(&b, "plan %s %q: %s", p.ID, p.Name, p.Status)
	fmt.Fprintf(&b, ", jobs %d/%d done", counts["done"], len(p.Jobs))
	for _, s := range []string{"running", "failed", "skipped"} {
		if counts[s] > 0 {
			fmt.Fprintf(&b, ", %d %s", counts[s], s)
		}
	}
	if p.ExternalCheck != nil && p.ExternalCheck.FailedReason != "" {
		fmt.Fprintf(&b, ": %s check failed: %s", p.ExternalCheck.HookEvent, p.ExternalCheck.FailedReason)
	}
	return b.String()
}

// show prints one server object: as JSON, or its line.
// call makes one API call and shows its answer: what most commands are.
func (inv *invocation) call(ctx context.Context, method, path string, query url.Values, body any, text func([]byte) (string, error)) error {
	c, err := inv.client()
	if err != nil {
		return err
	}
	raw, err := c.JSON(ctx, method, path, query, body, nil)
	if err != nil {
		return err
	}
	return inv.show(raw, text)
}

// listQuery is a list's query: the filters given, and limit when set.
func listQuery(filters map[string]string, limit int) url.Values {
	q := url.Values{}
	for k, v := range filters {
		if v != "" {
			q.Set(k, v)
		}
	}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	return q
}

func (inv *invocation) show(raw []byte, line func([]byte) (string, error)) error {
	if inv.output == "text" {
		s, err := line(raw)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(inv.env.Stdout, s)
		return err
	}
	return printJSON(inv.env.Stdout, raw)
}

func taskText(raw []byte) (string, error) {
	var t taskView
	if err := json.Unmarshal(raw, &t); err != nil {
		return "", fmt.Errorf("the answer is not a task: %w", err)
	}
	return taskLine(&t), nil
}

func planText(raw []byte) (string, error) {
	var p planView
	if err := json.Unmarshal(raw, &p); err != nil {
		return "", fmt.Errorf("the answer is not a plan: %w", err)
	}
	return planLine(&p), nil
}

// listText renders a list page, one line per item, and the next cursor.
func listText[T any](line func(*T) string) func([]byte) (string, error) {
	return func(raw []byte) (string, error) {
		var page struct {
			Items      []*T   `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		if err := json.Unmarshal(raw, &page); err != nil {
			return "", fmt.Errorf("the answer is not a list: %w", err)
		}
		lines := make([]string, 0, len(page.Items)+1)
		for _, it := range page.Items {
			lines = append(lines, line(it))
		}
		if page.NextCursor != "" {
			lines = append(lines, "(more: --cursor "+page.NextCursor+")")
		}
		if len(lines) == 0 {
			return "(none)", nil
		}
		return strings.Join(lines, "\n"), nil
	}
}

func planLogLine(l *planLogView) string {
	s := fmt.Sprintf("%s %s %s", l.CreatedAt.Format(time.RFC3339), l.Actor.Name, l.Action)
	if l.TargetName != "" {
		s += " " + l.TargetType + " " + l.TargetName
	}
	if l.Detail != "" {
		s += ": " + l.Detail
	}
	return s
}

// progress prints a line of a wait's progress on stderr, stamped.
func (inv *invocation) progress(format string, args ...any) {
	fmt.Fprintf(inv.env.Stderr, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
