package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/herald-release/herald/internal/inventory"
	"github.com/herald-release/herald/internal/notify"
	"github.com/herald-release/herald/internal/release/engine"
	"github.com/herald-release/herald/internal/release/executor"
)

const projectsAPI = "/api/v1/release/projects"

func projectAPI(id string, rest ...string) string {
	return projectsAPI + "/" + escapePath(append([]string{id}, rest...)...)
}

type projectsData struct {
	Projects []inventory.Project
	Next     string
}

func (c *Console) projects(q *request) error { return q.renderProjects(http.StatusOK, nil) }

func (q *request) renderProjects(status int, f *Form) error {
	var l list[inventory.Project]
	cursor := q.r.URL.Query().Get("cursor")
	if err := q.get(withQuery(projectsAPI, "cursor", cursor), &l); err != nil {
		return err
	}
	d := projectsData{Projects: l.Items, Next: l.next("/projects", nil)}
	q.render(status, "projects", q.lang.T("projects.title"), "projects", d, f)
	return nil
}

func (c *Console) createProject(q *request) error {
	v := q.r.PostForm
	in := map[string]string{"name": v.Get("name"), "description": v.Get("description")}
	if id := strings.TrimSpace(v.Get("id")); id != "" {
		in["id"] = id
	}
	var p inventory.Project
	if err := q.api(http.MethodPost, projectsAPI, in, &p); err != nil {
		f := &Form{Name: "project", Values: v}
		if err := f.failed(err); err != nil {
			return err
		}
		return q.renderProjects(http.StatusUnprocessableEntity, f)
	}
	return q.redirect("/projects/"+url.PathEscape(p.ID), "flash.project_created", p.Name)
}

type projectData struct {
	Project      inventory.Project
	Environments []inventory.Environment
	Versions     []inventory.Version
	Callbacks    int
	Tasks        []engine.Task
	TasksEnabled bool
	NewExecutor  executor.Spec
}

func (c *Console) project(q *request) error { return q.renderProject(http.StatusOK, nil) }

func (q *request) renderProject(status int, f *Form) error {
	id := q.r.PathValue("id")
	d := projectData{NewExecutor: executor.Spec{Type: "local"}}
	if err := q.get(projectAPI(id), &d.Project); err != nil {
		return err
	}
	var envs list[inventory.Environment]
	if err := q.get(projectAPI(id, "environments"), &envs); err != nil {
		return err
	}
	d.Environments = envs.Items
	var vers list[inventory.Version]
	if err := q.get(withQuery(projectAPI(id, "versions"), "limit", "20"), &vers); err != nil {
		return err
	}
	d.Versions = vers.Items
	var cbs list[notify.Config]
	if err := q.get(projectAPI(id, "callbacks"), &cbs); err == nil {
		d.Callbacks = len(cbs.Items)
	} else if !noRoute(err) {
		return err
	}
	var tasks list[engine.Task]
	switch err := q.get(withQuery(tasksAPI, "project_id", id, "limit", "10"), &tasks); {
	case err == nil:
		d.Tasks, d.TasksEnabled = tasks.Items, true
	case noRoute(err):
	default:
		return err
	}
	q.render(status, "project", d.Project.Name, "projects", d, f)
	return nil
}

func (c *Console) updateProject(q *request) error {
	v := q.r.PostForm
	id := q.r.PathValue("id")
	in := map[string]string{"name": v.Get("name"), "description": v.Get("description")}
	if err := q.api(http.MethodPut, projectAPI(id), in, nil); err != nil {
		f := &Form{Name: "project", Values: v}
		if err := f.failed(err); err != nil {
			return err
		}
		return q.renderProject(http.StatusUnprocessableEntity, f)
	}
	return q.redirect("/projects/"+url.PathEscape(id), "flash.saved")
}

func (c *Console) deleteProject(q *request) error {
	id := q.r.PathValue("id")
	if err := q.api(http.MethodDelete, projectAPI(id), nil, nil); err != nil {
		f := &Form{Name: "delete"}
		if err := f.failed(err); err != nil {
			return err
		}
		return q.renderProject(http.StatusConflict, f)
	}
	return q.redirect("/projects", "flash.deleted", id)
}

// executorFromForm reads the executor fields "executor.*".
func executorFromForm(v url.Values, f *Form) executorInput {
	s := executorInput{
		Spec: executor.Spec{
			Type:   v.Get("executor.type"),
			Script: strings.ReplaceAll(v.Get("executor.script"), "\r\n", "\n"),
		},
		Timeout: strings.TrimSpace(v.Get("executor.timeout")),
	}
	env, bad := parsePairs(v.Get("executor.env"), "=")
	if len(bad) > 0 {
		f.Errors = append(f.Errors, FieldError{Field: "executor.env", Message: fmt.Sprintf("line %s: write KEY=value", strings.Join(bad, ", "))})
	}
	if len(env) > 0 {
		s.Env = env
	}
	if s.Type == "ssh" {
		s.User = strings.TrimSpace(v.Get("executor.user"))
		if n, ok := intField(f, v, "executor.port", "executor.port", "must be a whole number"); ok {
			s.Port = int(n)
		}
		s.PrivateKey = strings.ReplaceAll(v.Get("executor.private_key"), "\r\n", "\n")
		s.KnownHosts = strings.ReplaceAll(v.Get("executor.known_hosts"), "\r\n", "\n")
	}
	return s
}

func envInput(v url.Values, f *Form) map[string]any {
	return map[string]any{
		"name":        strings.TrimSpace(v.Get("name")),
		"production":  v.Get("production") != "",
		"description": v.Get("description"),
		"executor":    executorFromForm(v, f),
	}
}

func (c *Console) createEnvironment(q *request) error {
	v := q.r.PostForm
	id := q.r.PathValue("id")
	f := &Form{Name: "environment", Values: v}
	in := envInput(v, f)
	if len(f.Errors) == 0 {
		var e inventory.Environment
		err := q.api(http.MethodPost, projectAPI(id, "environments"), in, &e)
		if err == nil {
			return q.redirect("/projects/"+escapePath(id, "environments", e.Name), "flash.environment_created", e.Name)
		}
		if err := f.failed(err); err != nil {
			return err
		}
	} else {
		f.Message = q.lang.T("form.fix")
	}
	return q.renderProject(http.StatusUnprocessableEntity, f)
}

func (c *Console) createVersion(q *request) error {
	v := q.r.PostForm
	id := q.r.PathValue("id")
	f := &Form{Name: "version", Values: v}
	in := map[string]any{"name": strings.TrimSpace(v.Get("name")), "description": v.Get("description"), "artifact": strings.TrimSpace(v.Get("artifact"))}
	if m := strings.TrimSpace(v.Get("metadata")); m != "" {
		var meta map[string]any
		if err := json.Unmarshal([]byte(m), &meta); err != nil {
			f.Message = q.lang.T("form.fix")
			f.Errors = append(f.Errors, FieldError{Field: "metadata", Message: q.lang.T("version.metadata_invalid")})
			return q.renderProject(http.StatusUnprocessableEntity, f)
		}
		in["metadata"] = meta
	}
	if err := q.api(http.MethodPost, projectAPI(id, "versions"), in, nil); err != nil {
		if err := f.failed(err); err != nil {
			return err
		}
		return q.renderProject(http.StatusUnprocessableEntity, f)
	}
	return q.redirect("/projects/"+url.PathEscape(id)+"#versions", "flash.version_created", in["name"])
}

type environmentData struct {
	Project     inventory.Project
	Environment inventory.Environment
	Hosts       []inventory.Host
	Next        string
	EnvText     string
	Tasks       []engine.Task
}

func (c *Console) environment(q *request) error { return q.renderEnvironment(http.StatusOK, nil) }

func (q *request) renderEnvironment(status int, f *Form) error {
	id, env := q.r.PathValue("id"), q.r.PathValue("env")
	var d environmentData
	if err := q.get(projectAPI(id), &d.Project); err != nil {
		return err
	}
	if err := q.get(projectAPI(id, "environments", env), &d.Environment); err != nil {
		return err
	}
	var hosts list[inventory.Host]
	if err := q.get(withQuery(projectAPI(id, "environments", env, "hosts"), "limit", "500", "cursor", q.r.URL.Query().Get("cursor")), &hosts); err != nil {
		return err
	}
	d.Hosts, d.Next = hosts.Items, hosts.next("", nil)
	envMap := map[string]any{}
	for k, v := range d.Environment.Executor.Env {
		envMap[k] = v
	}
	d.EnvText = formatPairs(envMap, "=")
	var tasks list[engine.Task]
	if err := q.get(withQuery(tasksAPI, "project_id", id, "environment", env, "limit", "10"), &tasks); err == nil {
		d.Tasks = tasks.Items
	} else if !noRoute(err) {
		return err
	}
	q.render(status, "environment", d.Project.Name+" / "+d.Environment.Name, "projects", d, f)
	return nil
}

func (c *Console) updateEnvironment(q *request) error {
	v := q.r.PostForm
	id, env := q.r.PathValue("id"), q.r.PathValue("env")
	f := &Form{Name: "environment", Values: v}
	in := envInput(v, f)
	delete(in, "name")
	if len(f.Errors) == 0 {
		err := q.api(http.MethodPut, projectAPI(id, "environments", env), in, nil)
		if err == nil {
			return q.redirect("/projects/"+escapePath(id, "environments", env), "flash.saved")
		}
		if err := f.failed(err); err != nil {
			return err
		}
	} else {
		f.Message = q.lang.T("form.fix")
	}
	return q.renderEnvironment(http.StatusUnprocessableEntity, f)
}

func (c *Console) deleteEnvironment(q *request) error {
	id, env := q.r.PathValue("id"), q.r.PathValue("env")
	if err := q.api(http.MethodDelete, projectAPI(id, "environments", env), nil, nil); err != nil {
		f := &Form{Name: "delete"}
		if err := f.failed(err); err != nil {
			return err
		}
		return q.renderEnvironment(http.StatusConflict, f)
	}
	return q.redirect("/projects/"+url.PathEscape(id), "flash.deleted", env)
}

// parseHosts reads the "add many hosts" text: one host a line,
// "name address [label=value ...]".
func parseHosts(text string) ([]map[string]any, []FieldError) {
	var hosts []map[string]any
	var errs []FieldError
	for i, line := range strings.Split(text, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		h := map[string]any{"name": fields[0]}
		if len(fields) > 1 {
			h["address"] = fields[1]
		}
		labels := map[string]string{}
		for _, l := range fields[min(2, len(fields)):] {
			k, val, ok := strings.Cut(l, "=")
			if !ok || k == "" {
				errs = append(errs, FieldError{Field: "hosts", Message: fmt.Sprintf("line %d: %q is not label=value", i+1, l)})
				continue
			}
			labels[k] = val
		}
		if len(labels) > 0 {
			h["labels"] = labels
		}
		h["_line"] = i + 1
		hosts = append(hosts, h)
	}
	return hosts, errs
}

var hostField = regexp.MustCompile(`^hosts\[(\d+)\]\.?(.*)$`)

func (c *Console) addHosts(q *request) error {
	v := q.r.PostForm
	id, env := q.r.PathValue("id"), q.r.PathValue("env")
	f := &Form{Name: "hosts", Values: v}
	hosts, errs := parseHosts(v.Get("hosts"))
	if len(hosts) == 0 && len(errs) == 0 {
		errs = append(errs, FieldError{Field: "hosts", Message: q.lang.T("hosts.none")})
	}
	if len(errs) > 0 {
		f.Message, f.Errors = q.lang.T("form.fix"), errs
		return q.renderEnvironment(http.StatusUnprocessableEntity, f)
	}
	lines := make([]int, len(hosts))
	for i, h := range hosts {
		lines[i] = h["_line"].(int)
		delete(h, "_line")
	}
	err := q.api(http.MethodPost, projectAPI(id, "environments", env, "hosts"), map[string]any{"hosts": hosts}, nil)
	if err != nil {
		if err := f.failed(err); err != nil {
			return err
		}
		// "hosts[2].address" is about the third host: name its line.
		for i, e := range f.Errors {
			m := hostField.FindStringSubmatch(e.Field)
			if m == nil {
				continue
			}
			if n, _ := strconv.Atoi(m[1]); n < len(lines) {
				f.Errors[i].Message = strings.TrimSpace(fmt.Sprintf("line %d: %s %s", lines[n], m[2], e.Message))
				f.Errors[i].Field = "hosts"
			}
		}
		return q.renderEnvironment(http.StatusUnprocessableEntity, f)
	}
	return q.redirect("/projects/"+escapePath(id, "environments", env)+"#hosts", "flash.hosts_added", len(hosts))
}

func (c *Console) deleteHost(q *request) error {
	id, env, name := q.r.PathValue("id"), q.r.PathValue("env"), q.r.PathValue("name")
	if err := q.api(http.MethodDelete, projectAPI(id, "environments", env, "hosts", name), nil, nil); err != nil {
		f := &Form{Name: "delete"}
		if err := f.failed(err); err != nil {
			return err
		}
		return q.renderEnvironment(http.StatusConflict, f)
	}
	return q.redirect("/projects/"+escapePath(id, "environments", env)+"#hosts", "flash.deleted", name)
}
