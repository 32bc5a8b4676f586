package console

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/herald-release/herald/internal/plan"
)

// The plan hook settings (CONTRACT §7): where Herald tells the external
// system of a plan's moments, and whether the plan then waits for its
// answer. Everyone signed in reads them; the API lets only admins change
// them. The secret is write-only: the API shows "******" for a stored
// one, and sending "******" back keeps it.

type planHookData struct {
	Events []string
	// CallbackURL is where the external system answers.
	CallbackURL string
	CanEdit     bool
}

func hookValues(s *plan.HookSettings) url.Values {
	v := url.Values{
		"hook_address":  {s.HookAddress},
		"hook_secret":   {s.HookSecret},
		"hook_events":   nonNil(s.HookEvents),
		"check_timeout": {toString(s.CheckTimeout)},
	}
	if s.Enable {
		v["enable"] = []string{"true"}
	}
	if s.EnableCallback {
		v["enable_callback"] = []string{"true"}
	}
	return v
}

func (q *request) renderPlanHook(status int, f *Form) error {
	if f == nil {
		var s plan.HookSettings
		if err := q.get(planHookAPI, &s); err != nil {
			return err
		}
		f = &Form{Values: hookValues(&s)}
	}
	f.Name = "hook"
	scheme := "http"
	if isTLS(q.r) {
		scheme = "https"
	}
	d := planHookData{Events: plan.HookEvents(), CallbackURL: scheme + "://" + q.r.Host + "/api/callback/release_plan",
		CanEdit: q.user().IsAdmin()}
	q.render(status, "plan_hook", q.lang.T("hook.title"), "plans", d, f)
	return nil
}

func (c *Console) planHook(q *request) error { return q.renderPlanHook(http.StatusOK, nil) }

func (c *Console) savePlanHook(q *request) error {
	v := q.r.PostForm
	in := map[string]any{
		"enable":          v.Get("enable") != "",
		"enable_callback": v.Get("enable_callback") != "",
		"hook_address":    strings.TrimSpace(v.Get("hook_address")),
		"hook_secret":     v.Get("hook_secret"),
		"hook_events":     nonNil(v["hook_events"]),
		"check_timeout":   strings.TrimSpace(v.Get("check_timeout")),
	}
	f := &Form{Values: v}
	if err := q.api(http.MethodPut, planHookAPI, in, nil); err != nil {
		if err := f.failed(err); err != nil {
			return err
		}
		return q.renderPlanHook(http.StatusUnprocessableEntity, f)
	}
	return q.redirect("/settings/plan-hook", "flash.saved")
}
