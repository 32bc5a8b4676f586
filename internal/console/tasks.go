package console

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/herald-release/herald/internal/inventory"
	"github.com/herald-release/herald/internal/notify"
	"github.com/herald-release/herald/internal/release/engine"
)

const tasksAPI = "/api/v1/release/tasks"

var taskStatuses = []string{"pending", "running", "paused", "success", "failed", "cancelled"}

type tasksData struct {
	Tasks    []engine.Task
	Next     string
	Projects []inventory.Project
	Filter   url.Values
	Statuses []string
	Missing  bool
}

func (c *Console) tasks(q *request) error {
	in := q.r.URL.Query()
	filter := filterOf(in, "project_id", "environment", "status")
	d := tasksData{Filter: filter, Statuses: taskStatuses}
	params := withCursor(filter, in.Get("cursor"))
	path := tasksAPI
	if len(params) > 0 {
		path += "?" + params.Encode()
	}
	var l list[engine.Task]
	f := &Form{Name: "filter"}
	switch err := q.get(path, &l); {
	case noRoute(err):
		d.Missing = true
	case err != nil:
		if err := f.failed(err); err != nil {
			return err
		}
	}
	d.Tasks, d.Next = l.Items, l.next("/tasks", filter)
	var projects list[inventory.Project]
	if err := q.get(withQuery(projectsAPI, "limit", "500"), &projects); err != nil {
		return err
	}
	d.Projects = projects.Items
	q.render(http.StatusOK, "tasks", q.lang.T("tasks.title"), "tasks", d, f)
	return nil
}

type newTaskData struct {
	Projects     []inventory.Project
	Project      *inventory.Project
	Environments []inventory.Environment
	Environment  *inventory.Environment
	Versions     []inventory.Version
	Hosts        []inventory.Host
}

func (c *Console) newTask(q *request) error { return q.renderNewTask(http.StatusOK, nil) }

func (q *request) renderNewTask(status int, f *Form) error {
	in := q.r.URL.Query()
	if f != nil {
		in = f.Values
	}
	pid, env := in.Get("project_id"), in.Get("environment")
	var d newTaskData
	var projects list[inventory.Project]
	if err := q.get(withQuery(projectsAPI, "limit", "500"), &projects); err != nil {
		return err
	}
	d.Projects = projects.Items
	for i := range d.Projects {
		if d.Projects[i].ID == pid {
			d.Project = &d.Projects[i]
		}
	}
	if d.Project != nil {
		var envs list[inventory.Environment]
		if err := q.get(projectAPI(pid, "environments"), &envs); err != nil {
			return err
		}
		d.Environments = envs.Items
		if env == "" && len(envs.Items) == 1 {
			env = envs.Items[0].Name
		}
		for i := range d.Environments {
			if d.Environments[i].Name == env {
				d.Environment = &d.Environments[i]
			}
		}
		var vers list[inventory.Version]
		if err := q.get(withQuery(projectAPI(pid, "versions"), "limit", "100"), &vers); err != nil {
			return err
		}
		d.Versions = vers.Items
	}
	if d.Environment != nil {
		var hosts list[inventory.Host]
		if err := q.get(withQuery(projectAPI(pid, "environments", env, "hosts"), "limit", "500"), &hosts); err != nil {
			return err
		}
		d.Hosts = hosts.Items
	}
	if f == nil {
		f = &Form{}
	}
	f.Name = "task"
	q.render(status, "task_new", q.lang.T("tasks.start"), "tasks", d, f)
	return nil
}

// taskInput reads the start form; fields of other strategies are left
// out, so that what the user cannot see is not sent.
func taskInput(v url.Values, f *Form) map[string]any {
	strategy := v.Get("strategy")
	in := map[string]any{
		"project_id":  v.Get("project_id"),
		"environment": v.Get("environment"),
		"type":        v.Get("type"),
		"strategy":    strategy,
	}
	if s := v.Get("version_id"); s != "" {
		in["version_id"] = s
	}
	// Every host checked is the same as none: the environment's hosts,
	// including any added meanwhile.
	if hosts := v["hosts"]; len(hosts) > 0 && v.Get("all_hosts") == "" {
		in["hosts"] = hosts
	}
	num := func(name, apiName string) (int64, bool) {
		return intField(f, v, name, apiName, "must be a whole number")
	}
	if strategy == "canary" {
		if n, ok := num("canary_value", "canary"); ok {
			if v.Get("canary_unit") == "percent" {
				in["canary"] = map[string]int64{"percent": n}
			} else {
				in["canary"] = map[string]int64{"count": n}
			}
		}
	}
	if strategy == "canary" || strategy == "blue_green" {
		if s := strings.TrimSpace(v.Get("auto_promote_after")); s != "" {
			in["auto_promote_after"] = s
		}
	}
	if strategy != "blue_green" {
		if n, ok := num("batch_value", "batch_size"); ok {
			if v.Get("batch_unit") == "percent" {
				in["batch_percent"] = n
			} else {
				in["batch_size"] = n
			}
		}
	}
	if n, ok := num("max_parallel", "max_parallel"); ok {
		in["max_parallel"] = n
	}
	if n, ok := num("max_failures", "max_failures"); ok {
		in["max_failures"] = n
	}
	in["auto_rollback"] = v.Get("auto_rollback") != ""
	return in
}

func (c *Console) startTask(q *request) error {
	v := q.r.PostForm
	f := &Form{Values: v}
	in := taskInput(v, f)
	if len(f.Errors) == 0 {
		var t engine.Task
		err := q.api(http.MethodPost, tasksAPI, in, &t)
		if err == nil {
			return q.redirect("/tasks/"+url.PathEscape(t.ID), "flash.task_started")
		}
		if err := f.failed(err); err != nil {
			return err
		}
	} else {
		f.Message = q.lang.T("form.fix")
	}
	// The API names canary and batch settings by their JSON names; the
	// form has one input for each pair.
	for i, e := range f.Errors {
		switch {
		case matches(e.Field, "canary"):
			f.Errors[i].Field = "canary_value"
		case matches(e.Field, "batch_size"), matches(e.Field, "batch_percent"):
			f.Errors[i].Field = "batch_value"
		}
	}
	return q.renderNewTask(http.StatusUnprocessableEntity, f)
}

type taskData struct {
	Task       taskView
	Project    inventory.Project
	Deliveries []notify.Entry
	Live       bool
}

func (c *Console) task(q *request) error { return q.renderTask(http.StatusOK, nil) }

func (q *request) renderTask(status int, f *Form) error {
	id := q.r.PathValue("id")
	var d taskData
	if err := q.get(tasksAPI+"/"+url.PathEscape(id), &d.Task); err != nil {
		return err
	}
	if err := q.get(projectAPI(d.Task.ProjectID), &d.Project); err != nil && !isStatus(err, http.StatusNotFound) {
		return err
	}
	var h list[notify.Entry]
	if err := q.get(withQuery(tasksAPI+"/"+url.PathEscape(id)+"/callbacks", "limit", "100"), &h); err != nil {
		return err
	}
	d.Deliveries = h.Items
	d.Live = d.Task.Active()
	q.render(status, "task", q.lang.T("tasks.task")+" "+d.Task.ID, "tasks", d, f)
	return nil
}

var taskActions = []string{"promote", "cancel", "retry", "rollback"}

// taskAction is a task button without JavaScript.
func (c *Console) taskAction(q *request) error {
	id, action := q.r.PathValue("id"), q.r.PathValue("action")
	if !slices.Contains(taskActions, action) {
		return c.notFound(q)
	}
	var t engine.Task
	if err := q.get(tasksAPI+"/"+url.PathEscape(id), &t); err != nil {
		return err
	}
	var out engine.Task
	var err error
	if action == "rollback" {
		err = q.api(http.MethodPost, tasksAPI, map[string]any{
			"project_id": t.ProjectID, "environment": t.Environment, "type": "rollback", "strategy": "rolling",
		}, &out)
	} else {
		err = q.api(http.MethodPost, tasksAPI+"/"+url.PathEscape(id)+"/"+action, map[string]any{}, &out)
	}
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.Status < 500 && ae.Status != http.StatusUnauthorized && ae.Status != http.StatusNotFound {
			setFlash(q.w, q.r, "error", ae.Message)
			http.Redirect(q.w, q.r, "/tasks/"+url.PathEscape(id), http.StatusSeeOther)
			return nil
		}
		return err
	}
	return q.redirect("/tasks/"+url.PathEscape(out.ID), "flash.task_"+action)
}
