package api_test

import (
	"encoding/json"
	"testing"

	"github.com/herald-release/herald/internal/app/apptest"
	"github.com/herald-release/herald/internal/plan"
)

// Placeholders the plan seeds use for ids known only at run time.
const (
	varMe       = "@ME@"       // the admin's user id
	varApprover = "@APPROVER@" // another user's id
	varPlan     = "@PLAN@"     // the plan under test
	varCode     = "@CODE@"     // its current instance_code
	varJob0     = "@JOB0@"     // its jobs' ids
	varJob1     = "@JOB1@"
)

const fuzzHookSecret = "fuzz-hook-secret-0123456789"

var planTables = []string{"release_plans", "release_plan_jobs", "release_plan_approvals", "release_plan_logs",
	"release_plan_hooks", "release_plan_callbacks", "events", "river_job"}

// planRows shows every plan's state that an edit or a callback changes.
const planRows = `SELECT id || ' ' || status || ' ' || instance_code || ' ' || name || ' ' || CAST(updated_at AS TEXT) FROM release_plans ORDER BY id`

// jobRows shows every job's state.
const jobRows = `SELECT id || ' ' || plan_id || ' ' || status || ' ' || name || ' ' || spec FROM release_plan_jobs ORDER BY id`

// planFuzzEnv is taskFuzzEnv plus a second user; it returns the
// placeholders' values.
func planFuzzEnv(t testing.TB, e *apptest.Env) map[string]string {
	t.Helper()
	taskFuzzEnv(t, e)
	approver, _ := newUser(t, e, "approver", "member")
	return map[string]string{varMe: me(t, e, e.Token).ID, varApprover: approver.ID}
}

// basePlan is the plan FuzzPlanUpdate edits, and FuzzPlanCallback answers
// for; a 200 to an update is undone by sending it again.
const basePlan = `{"name": "Release 42", "manager_id": "@ME@", "description": "the base plan",
	"jira_sprints": ["SPR-1", {"id": "SPR-2", "name": "Sprint 2", "link": "https://jira.example.com/s/2"}],
	"jobs": [
		{"name": "announce", "type": "text", "spec": {"content": "tell support"}},
		{"name": "deploy", "type": "workflow", "spec": {"workflow": {"project_id": "shop", "environment": "prod", "version": "v1"}}}
	],
	"approval": {"enabled": true, "approvers": ["@APPROVER@"], "mode": "any"}}`

// createPlan creates basePlan and fills the plan and job placeholders.
func createPlan(t testing.TB, e *apptest.Env, vars map[string]string) {
	t.Helper()
	raw := mustCall(t, e, "POST", plansPath, string(fillVars([]byte(basePlan), vars)), 201)
	planVars(t, raw, vars)
}

func planVars(t testing.TB, raw []byte, vars map[string]string) {
	t.Helper()
	var p plan.Plan
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatalf("plan %s: %v", raw, err)
	}
	vars[varPlan], vars[varCode] = p.ID, p.InstanceCode
	vars[varJob0], vars[varJob1] = "", ""
	for i, j := range p.Jobs {
		if i < 2 {
			vars[[]string{varJob0, varJob1}[i]] = j.ID
		}
	}
}

// FuzzPlanCreate posts bodies to POST /api/v1/release/plans (CONTRACT §7).
// A plan that is created is deleted again.
func FuzzPlanCreate(f *testing.F) {
	type target struct {
		e    *apptest.Env
		vars map[string]string
	}
	var targets []target
	for _, e := range fuzzHeralds(f) {
		targets = append(targets, target{e, planFuzzEnv(f, e)})
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, tg := range targets {
			b := fillVars(body, tg.vars)
			before := rowState(t, tg.e, planTables, planRows)
			status, h, raw := sendRaw(t, tg.e, "POST", plansPath, b)
			if checkAnswer(t, "POST "+plansPath, b, status, h, raw) {
				sameRowState(t, "POST "+plansPath, b, before, rowState(t, tg.e, planTables, planRows))
				continue
			}
			if status != 201 {
				t.Fatalf("plan create answered %d: %s", status, raw)
			}
			mustCall(t, tg.e, "DELETE", plansPath+"/"+answerID(t, raw), nil, 204)
		}
	})
}

// FuzzPlanUpdate puts bodies to PUT /api/v1/release/plans/{id}, where the
// fields sent replace the plan's. A 200 is undone by putting basePlan back.
func FuzzPlanUpdate(f *testing.F) {
	type target struct {
		e    *apptest.Env
		vars map[string]string
	}
	var targets []target
	for _, e := range fuzzHeralds(f) {
		vars := planFuzzEnv(f, e)
		createPlan(f, e, vars)
		targets = append(targets, target{e, vars})
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, tg := range targets {
			path := plansPath + "/" + tg.vars[varPlan]
			b := fillVars(body, tg.vars)
			before := rowState(t, tg.e, planTables, planRows, jobRows)
			status, h, raw := sendRaw(t, tg.e, "PUT", path, b)
			if checkAnswer(t, "PUT "+plansPath+"/{id}", b, status, h, raw) {
				sameRowState(t, "PUT "+plansPath+"/{id}", b, before, rowState(t, tg.e, planTables, planRows, jobRows))
				continue
			}
			if status != 200 {
				t.Fatalf("plan update answered %d: %s", status, raw)
			}
			raw = mustCall(t, tg.e, "PUT", path, string(fillVars([]byte(basePlan), tg.vars)), 200)
			planVars(t, raw, tg.vars)
		}
	})
}

// FuzzPlanCallback posts bodies to POST /api/callback/release_plan with
// the right X-Herald-Token, for a plan waiting for its finish_planning
// check. When an answer is taken, the plan is replanned and finished again
// so that the next input finds it waiting.
func FuzzPlanCallback(f *testing.F) {
	type target struct {
		e    *apptest.Env
		vars map[string]string
	}
	var targets []target
	for _, e := range fuzzHeralds(f) {
		vars := planFuzzEnv(f, e)
		mustCall(f, e, "PUT", hookPath, map[string]any{"enable": true, "enable_callback": true,
			"hook_address": "https://hooks.example.com/herald", "hook_secret": fuzzHookSecret,
			"hook_events": []string{"finish_planning", "start_execute", "all_job_done"}, "check_timeout": "1h"}, 200)
		createPlan(f, e, vars)
		waitForCheck(f, e, vars, false)
		targets = append(targets, target{e, vars})
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, tg := range targets {
			b := fillVars(body, tg.vars)
			before := rowState(t, tg.e, planTables, planRows)
			status, h, raw := sendRaw(t, tg.e, "POST", callbackPath, b, "X-Herald-Token", fuzzHookSecret)
			if checkAnswer(t, "POST "+callbackPath, b, status, h, raw) {
				sameRowState(t, "POST "+callbackPath, b, before, rowState(t, tg.e, planTables, planRows))
				continue
			}
			var ok struct {
				ID string `json:"id"`
			}
			if status != 200 || json.Unmarshal(raw, &ok) != nil || ok.ID != tg.vars[varPlan] {
				t.Fatalf("callback answered %d %s; want 200 {\"id\": %q}", status, raw, tg.vars[varPlan])
			}
			waitForCheck(t, tg.e, tg.vars, true)
		}
	})
}

// waitForCheck brings the plan back to waiting for its finish_planning
// check, replanning it first if an answer moved it on.
func waitForCheck(t testing.TB, e *apptest.Env, vars map[string]string, replan bool) {
	t.Helper()
	path := plansPath + "/" + vars[varPlan]
	var p plan.Plan
	if err := json.Unmarshal(mustCall(t, e, "GET", path, nil, 200), &p); err != nil {
		t.Fatal(err)
	}
	if p.Status == plan.StatusWaitFinishPlanningCheck {
		vars[varCode] = p.InstanceCode
		return
	}
	if replan && p.Status != plan.StatusPlanning {
		mustCall(t, e, "POST", path+"/replan", nil, 200)
	}
	raw := mustCall(t, e, "POST", path+"/finish-planning", nil, 200)
	if err := json.Unmarshal(raw, &p); err != nil || p.Status != plan.StatusWaitFinishPlanningCheck {
		t.Fatalf("finish-planning: %s", raw)
	}
	vars[varCode] = p.InstanceCode
}
