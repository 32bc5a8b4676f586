package console

import (
	"io/fs"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/plan"
)

// Every key the templates and handlers name is translated, in both
// languages, and so is every value of the families built at run time.
func TestMessagesComplete(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, m := range messages {
		if seen[m[0]] {
			t.Errorf("key %q is listed twice", m[0])
		}
		seen[m[0]] = true
		if m[1] == "" || m[2] == "" {
			t.Errorf("key %q lacks a translation", m[0])
		}
		if strings.Count(m[1], "%") != strings.Count(m[2], "%") {
			t.Errorf("key %q: English and Chinese take different arguments", m[0])
		}
	}
	literal := regexp.MustCompile(`(?:\.T|T\(|redirect\([^,]+,) ?"([a-z_]+\.[a-z_.]*[a-z])"`)
	check := func(name string, text []byte) {
		for _, m := range literal.FindAllSubmatch(text, -1) {
			if key := string(m[1]); !seen[key] {
				t.Errorf("%s uses %q, which has no message", name, key)
			}
		}
	}
	_ = fs.WalkDir(templateFS, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := templateFS.ReadFile(p)
			check(p, b)
		}
		return err
	})
	goFiles, _ := fs.Glob(os.DirFS("."), "*.go")
	for _, f := range goFiles {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, _ := os.ReadFile(f)
		check(f, b)
	}

	families := map[string][]string{
		"status.":   {"pending", "running", "paused", "success", "failed", "cancelled", "skipped"},
		"event.":    event.Types(),
		"ch.type.":  contractTypes,
		"type.":     {"deploy", "rollback", "stop"},
		"strategy.": {"canary", "rolling", "blue_green"},
		"phase.":    {"canary", "rollout", "switch"},
		"role.":     {"admin", "member"},
		"flash.": {"task_promote", "task_cancel", "task_retry", "task_rollback",
			"plan_finish_planning", "plan_submit_approval", "plan_execute", "plan_replan", "plan_cancel", "plan_approve",
			"plan_deny", "job_execute", "job_complete", "job_skip", "job_retry"},
		"events.": {"task", "plan", "object"},
		// Release plans: statuses of plans, jobs and approvals, the
		// buttons, the hook's moments and the operation record's actions.
		"plans.action.":    {actFinishPlanning, actSubmitApproval, actExecute, actReplan, actCancel, actDelete},
		"hook.event.":      plan.HookEvents(),
		"hook.event_hint.": plan.HookEvents(),
		"plans.log.": {"create", "update", "finish_planning", "submit_approval", "approve", "deny", "denied", "start_execute",
			"execute", "replan", "cancel", "all_job_done", "success", "timeout", "job_execute", "job_complete", "job_skip",
			"job_retry", "job_status", "job_task", "schedule_execute", "hook", "callback", "check_passed", "check_failed", "check_timeout"},
	}
	families["status."] = append(families["status."], plan.Statuses()...)
	families["status."] = append(families["status."], plan.JobTodo, plan.JobRunning, plan.JobDone, plan.JobFailed, plan.JobSkipped,
		plan.ApprovalPending, plan.ApprovalApproved, plan.ApprovalDenied)
	for typ, fields := range channelFields {
		for _, f := range fields {
			families["ch."] = append(families["ch."], f.Name)
			for _, o := range f.Options {
				if o != "" {
					families["ch.opt."] = append(families["ch.opt."], o)
				}
			}
		}
		_ = typ
	}
	for prefix, values := range families {
		for _, v := range values {
			if !seen[prefix+v] {
				t.Errorf("no message %q", prefix+v)
			}
		}
	}
}

func TestAcceptLanguage(t *testing.T) {
	t.Parallel()
	for header, want := range map[string]string{
		"":                          "en",
		"zh-CN,zh;q=0.9":            "zh",
		"en-US,en;q=0.9,zh;q=0.8":   "en",
		"fr-FR,zh-TW;q=0.7,en;q=.5": "zh",
		"de":                        "en",
		"ZH-hans":                   "zh",
	} {
		if got := fromAcceptLanguage(header); got != want {
			t.Errorf("Accept-Language %q: %s, want %s", header, got, want)
		}
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Accept-Language", "zh")
	r.Header.Set("Cookie", langCookie+"=en")
	if l := langFor(r); l.Code != "en" {
		t.Errorf("the cookie does not win: %s", l.Code)
	}
}

func TestSafeNext(t *testing.T) {
	t.Parallel()
	for next, want := range map[string]string{
		"/projects?x=1":        "/projects?x=1",
		"//evil.example":       "/",
		"/\\evil.example":      "/",
		"https://evil.example": "/",
		"projects":             "/",
		"":                     "/",
	} {
		if got := safeNext(next, "/"); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", next, got, want)
		}
	}
}
