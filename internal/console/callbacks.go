package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/herald-release/herald/internal/inventory"
	"github.com/herald-release/herald/internal/notify"
)

const callbacksAPI = "/api/v1/release/callbacks"

// chField is one setting of a channel type (CONTRACT §8).
type chField struct {
	Name string
	// Kind is text, url, secret, list, bool, int, headers or select.
	Kind    string
	Options []string
	// Group splits wechat into the group robot and the application.
	Group       string
	Required    bool
	Placeholder string
}

// channelFields are the settings of each channel type, in form order.
var channelFields = map[string][]chField{
	"feishu": {
		{Name: "webhook_url", Kind: "url", Required: true, Placeholder: "https://open.feishu.cn/open-apis/bot/v2/hook/…"},
		{Name: "sign_secret", Kind: "secret"},
		{Name: "at_user_ids", Kind: "list", Placeholder: "ou_xxx, ou_yyy"},
		{Name: "at_all", Kind: "bool"},
		{Name: "lang", Kind: "select", Options: []string{"", "zh", "en"}},
	},
	"dingtalk": {
		{Name: "webhook_url", Kind: "url", Required: true, Placeholder: "https://oapi.dingtalk.com/robot/send?access_token=…"},
		{Name: "sign_secret", Kind: "secret", Placeholder: "SEC…"},
		{Name: "at_mobiles", Kind: "list", Placeholder: "13800000000, 13900000000"},
		{Name: "at_user_ids", Kind: "list"},
		{Name: "at_all", Kind: "bool"},
		{Name: "lang", Kind: "select", Options: []string{"", "zh", "en"}},
	},
	"wechat": {
		{Name: "webhook_url", Kind: "url", Group: "robot", Required: true, Placeholder: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…"},
		{Name: "mentioned_list", Kind: "list", Group: "robot", Placeholder: "@all, userid"},
		{Name: "mentioned_mobile_list", Kind: "list", Group: "robot"},
		{Name: "corp_id", Kind: "text", Group: "app", Required: true},
		{Name: "agent_id", Kind: "int", Group: "app", Required: true},
		{Name: "secret", Kind: "secret", Group: "app", Required: true},
		{Name: "to_user", Kind: "text", Group: "app", Placeholder: "@all"},
		{Name: "api_base_url", Kind: "url", Group: "app", Placeholder: "https://qyapi.weixin.qq.com"},
		{Name: "lang", Kind: "select", Options: []string{"", "zh", "en"}},
	},
	"custom": {
		{Name: "url", Kind: "url", Required: true, Placeholder: "https://example.com/herald-hook"},
		{Name: "method", Kind: "select", Options: []string{"POST", "PUT"}},
		{Name: "headers", Kind: "headers", Placeholder: "X-Api-Key: …"},
		{Name: "timeout", Kind: "int", Placeholder: "10"},
		{Name: "retry_count", Kind: "int", Placeholder: "3"},
		{Name: "retry_interval", Kind: "int", Placeholder: "10"},
		{Name: "secret", Kind: "secret", Placeholder: "whsec_…"},
		{Name: "token", Kind: "secret"},
	},
	"email": {
		{Name: "smtp_host", Kind: "text", Required: true, Placeholder: "smtp.example.com"},
		{Name: "smtp_port", Kind: "int", Placeholder: "587"},
		{Name: "tls", Kind: "select", Options: []string{"starttls", "tls", "none"}},
		{Name: "username", Kind: "text"},
		{Name: "password", Kind: "secret"},
		{Name: "from", Kind: "text", Required: true, Placeholder: "Herald <herald@example.com>"},
		{Name: "to", Kind: "list", Required: true, Placeholder: "ops@example.com, dev@example.com"},
		{Name: "lang", Kind: "select", Options: []string{"", "zh", "en"}},
	},
	"feishu_app": {
		{Name: "app_id", Kind: "text", Required: true, Placeholder: "cli_…"},
		{Name: "app_secret", Kind: "secret", Required: true},
		{Name: "receive_id_type", Kind: "select", Options: []string{"chat_id", "open_id", "user_id", "union_id", "email"}},
		{Name: "receive_ids", Kind: "list", Required: true, Placeholder: "oc_xxx, oc_yyy"},
		{Name: "api_base_url", Kind: "url", Placeholder: "https://open.feishu.cn"},
		{Name: "lang", Kind: "select", Options: []string{"", "zh", "en"}},
	},
	"slack": {
		{Name: "webhook_url", Kind: "url", Required: true, Placeholder: "https://hooks.slack.com/services/T…/B…/…"},
		{Name: "lang", Kind: "select", Options: []string{"", "zh", "en"}},
	},
	"teams": {
		{Name: "webhook_url", Kind: "url", Required: true, Placeholder: "https://….logic.azure.com:443/workflows/…/triggers/manual/paths/invoke?…&sig=…"},
		{Name: "lang", Kind: "select", Options: []string{"", "zh", "en"}},
	},
	"discord": {
		{Name: "webhook_url", Kind: "url", Required: true, Placeholder: "https://discord.com/api/webhooks/…/…"},
		{Name: "lang", Kind: "select", Options: []string{"", "zh", "en"}},
	},
	"telegram": {
		{Name: "bot_token", Kind: "secret", Required: true, Placeholder: "123456789:AA…"},
		{Name: "chat_id", Kind: "text", Required: true, Placeholder: "-1001234567890"},
		{Name: "message_thread_id", Kind: "int"},
		{Name: "api_base_url", Kind: "url", Placeholder: "https://api.telegram.org"},
		{Name: "lang", Kind: "select", Options: []string{"", "zh", "en"}},
	},
}

// contractTypes orders channel types as CONTRACT §8 lists them, then the
// types added since.
var contractTypes = []string{"feishu", "dingtalk", "wechat", "custom", "email", "feishu_app", "slack", "teams", "discord", "telegram"}

func (c *Console) channelTypes() []string {
	var out []string
	for _, t := range contractTypes {
		if _, ok := channelFields[t]; ok && (c.deps.ChannelTypes == nil || slices.Contains(c.deps.ChannelTypes, t)) {
			out = append(out, t)
		}
	}
	return out
}

// cbForm is a callback configuration as the form edits it.
type cbForm struct {
	ProjectID string
	Name      string
	Enabled   bool
	Events    []string
	Channels  []cbChannel
}

type cbChannel struct {
	ID      string
	Type    string
	Enabled bool
	// Mode is wechat's "robot" or "app".
	Mode   string
	Values map[string]string
	Note   string // why Herald disabled it
}

func chPrefix(i int) string { return "channels[" + strconv.Itoa(i) + "]" }

// readCBForm reads the submitted form.
func readCBForm(v url.Values) cbForm {
	f := cbForm{ProjectID: v.Get("project_id"), Name: v.Get("name"), Enabled: v.Get("enabled") != "", Events: v["events"]}
	n, _ := strconv.Atoi(v.Get("channel_count"))
	for i := range min(n, 50) {
		p := chPrefix(i)
		ch := cbChannel{ID: v.Get(p + ".id"), Type: v.Get(p + ".type"), Enabled: v.Get(p+".enabled") != "",
			Mode: v.Get(p + ".mode"), Values: map[string]string{}, Note: v.Get(p + ".note")}
		if _, ok := channelFields[ch.Type]; !ok {
			continue
		}
		for _, fd := range channelFields[ch.Type] {
			ch.Values[fd.Name] = v.Get(p + ".config." + fd.Name)
		}
		f.Channels = append(f.Channels, ch)
	}
	return f
}

// fromConfig turns a stored configuration into the form.
func fromConfig(c *notify.Config) cbForm {
	f := cbForm{ProjectID: c.ProjectID, Name: c.Name, Enabled: c.Enabled, Events: c.Events}
	for _, ch := range c.Channels {
		x := cbChannel{ID: ch.ID, Type: ch.Type, Enabled: ch.Enabled, Values: map[string]string{}, Note: ch.DisabledReason}
		var cfg map[string]any
		_ = json.Unmarshal(ch.Config, &cfg)
		for _, fd := range channelFields[ch.Type] {
			v, ok := cfg[fd.Name]
			if !ok {
				continue
			}
			if fd.Kind == "headers" {
				if m, ok := v.(map[string]any); ok {
					x.Values[fd.Name] = formatPairs(m, ": ")
				}
				continue
			}
			x.Values[fd.Name] = toString(v)
		}
		if ch.Type == "wechat" {
			x.Mode = "robot"
			if _, ok := cfg["corp_id"]; ok {
				x.Mode = "app"
			}
		}
		f.Channels = append(f.Channels, x)
	}
	return f
}

// values writes the form as the inputs' values, channels numbered from 0.
func (f cbForm) values() url.Values {
	v := url.Values{}
	v.Set("project_id", f.ProjectID)
	v.Set("name", f.Name)
	if f.Enabled {
		v.Set("enabled", "true")
	}
	v["events"] = f.Events
	v.Set("channel_count", strconv.Itoa(len(f.Channels)))
	for i, ch := range f.Channels {
		p := chPrefix(i)
		v.Set(p+".id", ch.ID)
		v.Set(p+".type", ch.Type)
		v.Set(p+".mode", ch.Mode)
		v.Set(p+".note", ch.Note)
		if ch.Enabled {
			v.Set(p+".enabled", "true")
		}
		for k, val := range ch.Values {
			v.Set(p+".config."+k, val)
		}
	}
	return v
}

// input builds the API body; fields the form cannot even encode (a number
// that is not one) are reported on the form.
func (f cbForm) input(form *Form) map[string]any {
	channels := []map[string]any{}
	for i, ch := range f.Channels {
		p := chPrefix(i)
		cfg := map[string]any{}
		for _, fd := range channelFields[ch.Type] {
			if ch.Type == "wechat" && fd.Group != "" && fd.Group != ch.Mode {
				continue
			}
			raw := ch.Values[fd.Name]
			s := strings.TrimSpace(raw)
			field := p + ".config." + fd.Name
			switch fd.Kind {
			case "bool":
				if s != "" {
					cfg[fd.Name] = true
				}
			case "list":
				if l := splitList(s); len(l) > 0 {
					cfg[fd.Name] = l
				}
			case "int":
				if s == "" {
					continue
				}
				n, err := strconv.ParseInt(s, 10, 64)
				if err != nil {
					form.Errors = append(form.Errors, FieldError{Field: field, Message: "must be a whole number"})
					continue
				}
				cfg[fd.Name] = n
			case "headers":
				h, bad := parsePairs(raw, ":")
				if len(bad) > 0 {
					form.Errors = append(form.Errors, FieldError{Field: field, Message: "line " + strings.Join(bad, ", ") + ": write Name: value"})
				}
				if len(h) > 0 {
					cfg[fd.Name] = h
				}
			default:
				if s != "" {
					cfg[fd.Name] = s
				}
			}
		}
		c := map[string]any{"type": ch.Type, "enabled": ch.Enabled, "config": cfg}
		if ch.ID != "" {
			c["id"] = ch.ID
		}
		channels = append(channels, c)
	}
	events := f.Events
	if events == nil {
		events = []string{}
	}
	return map[string]any{"name": strings.TrimSpace(f.Name), "enabled": f.Enabled, "events": events, "channels": channels}
}

// channelView is one channel block of the form.
type channelView struct {
	Prefix string
	Index  int
	Type   string
	Fields []chField
	Note   string
}

type eventGroup struct {
	Key    string
	Events []string
}

type callbackFormData struct {
	Config     *notify.Config // nil when new
	Project    *inventory.Project
	Channels   []channelView
	Types      []string
	EventGroup []eventGroup
	Results    *notify.TestReport
	History    []notify.Entry
}

func (c *Console) eventGroups() []eventGroup {
	groups := []eventGroup{{Key: "events.task"}, {Key: "events.plan"}, {Key: "events.object"}}
	for _, e := range c.deps.EventTypes {
		switch {
		case strings.HasPrefix(e, "plan_"):
			groups[1].Events = append(groups[1].Events, e)
		case strings.Contains(e, "canary") || strings.HasPrefix(e, "release_") || strings.HasPrefix(e, "rollback_") || e == "full_completed":
			groups[0].Events = append(groups[0].Events, e)
		default:
			groups[2].Events = append(groups[2].Events, e)
		}
	}
	return groups
}

func (q *request) renderCallbackForm(status int, f *Form, cf cbForm, cfg *notify.Config, results *notify.TestReport) error {
	d := callbackFormData{Config: cfg, Types: q.c.channelTypes(), EventGroup: q.c.eventGroups(), Results: results}
	if cf.ProjectID != "" {
		var p inventory.Project
		if err := q.get(projectAPI(cf.ProjectID), &p); err != nil {
			return err
		}
		d.Project = &p
	}
	for i, ch := range cf.Channels {
		d.Channels = append(d.Channels, channelView{Prefix: chPrefix(i), Index: i, Type: ch.Type, Fields: channelFields[ch.Type], Note: ch.Note})
	}
	if cfg != nil {
		var h list[notify.Entry]
		if err := q.get(withQuery(callbacksAPI+"/"+url.PathEscape(cfg.ID)+"/history", "limit", "10"), &h); err != nil {
			return err
		}
		d.History = h.Items
	}
	f.Name = "callback"
	f.Values = cf.values()
	title := q.lang.T("callbacks.new")
	if cfg != nil {
		title = cfg.Name
	}
	q.render(status, "callback", title, "callbacks", d, f)
	return nil
}

type callbacksData struct {
	Project *inventory.Project
	Configs []notify.Config
	Names   map[string]string
}

func (c *Console) callbacks(q *request) error {
	var l list[notify.Config]
	if err := q.get(callbacksAPI, &l); err != nil {
		return err
	}
	d := callbacksData{Configs: l.Items, Names: q.projectNames()}
	q.render(http.StatusOK, "callbacks", q.lang.T("callbacks.title"), "callbacks", d, nil)
	return nil
}

func (c *Console) projectCallbacks(q *request) error {
	id := q.r.PathValue("id")
	var p inventory.Project
	if err := q.get(projectAPI(id), &p); err != nil {
		return err
	}
	var l list[notify.Config]
	if err := q.get(projectAPI(id, "callbacks"), &l); err != nil {
		return err
	}
	d := callbacksData{Project: &p, Configs: l.Items, Names: map[string]string{p.ID: p.Name}}
	q.render(http.StatusOK, "callbacks", q.lang.T("callbacks.project_title", p.Name), "callbacks", d, nil)
	return nil
}

// projectNames maps project ids to names, for lists that show ids.
func (q *request) projectNames() map[string]string {
	var l list[inventory.Project]
	out := map[string]string{}
	if q.get(withQuery(projectsAPI, "limit", "500"), &l) == nil {
		for _, p := range l.Items {
			out[p.ID] = p.Name
		}
	}
	return out
}

func (c *Console) newCallback(q *request) error {
	cf := cbForm{ProjectID: q.r.URL.Query().Get("project_id"), Enabled: true}
	if t := q.r.URL.Query().Get("type"); channelFields[t] != nil {
		cf.Channels = append(cf.Channels, newChannel(t))
	}
	return q.renderCallbackForm(http.StatusOK, &Form{}, cf, nil, nil)
}

func newChannel(t string) cbChannel {
	ch := cbChannel{Type: t, Enabled: true, Values: map[string]string{}}
	if t == "wechat" {
		ch.Mode = "robot"
	}
	if t == "custom" {
		ch.Values["method"] = "POST"
	}
	return ch
}

func (q *request) getConfig(id string) (*notify.Config, error) {
	var cfg notify.Config
	if err := q.get(callbacksAPI+"/"+url.PathEscape(id), &cfg); err != nil {
		return nil, err
	}
	return &cfg, nil
}

func (c *Console) editCallback(q *request) error {
	cfg, err := q.getConfig(q.r.PathValue("id"))
	if err != nil {
		return err
	}
	return q.renderCallbackForm(http.StatusOK, &Form{}, fromConfig(cfg), cfg, nil)
}

// saveCallback saves, or applies an edit of the form's shape (add or
// remove a channel) and shows the form again without saving.
func (c *Console) saveCallback(q *request) error {
	v := q.r.PostForm
	id := q.r.PathValue("id")
	var cfg *notify.Config
	if id != "" {
		var err error
		if cfg, err = q.getConfig(id); err != nil {
			return err
		}
	}
	cf := readCBForm(v)
	if cfg != nil {
		cf.ProjectID = cfg.ProjectID
	}
	op := v.Get("op")
	switch {
	case op == "add":
		if t := v.Get("add_type"); channelFields[t] != nil {
			cf.Channels = append(cf.Channels, newChannel(t))
		}
		return q.renderCallbackForm(http.StatusOK, &Form{}, cf, cfg, nil)
	case strings.HasPrefix(op, "remove:"):
		if i, err := strconv.Atoi(strings.TrimPrefix(op, "remove:")); err == nil && i >= 0 && i < len(cf.Channels) {
			cf.Channels = slices.Delete(cf.Channels, i, i+1)
		}
		return q.renderCallbackForm(http.StatusOK, &Form{}, cf, cfg, nil)
	}
	f := &Form{}
	in := cf.input(f)
	if len(f.Errors) > 0 {
		f.Message = q.lang.T("form.fix")
		return q.renderCallbackForm(http.StatusUnprocessableEntity, f, cf, cfg, nil)
	}
	var saved notify.Config
	var err error
	switch {
	case cfg != nil:
		err = q.api(http.MethodPut, callbacksAPI+"/"+url.PathEscape(cfg.ID), in, &saved)
	case cf.ProjectID != "":
		err = q.api(http.MethodPost, projectAPI(cf.ProjectID, "callbacks"), in, &saved)
	default:
		err = q.api(http.MethodPost, callbacksAPI, in, &saved)
	}
	if err != nil {
		if err := f.failed(err); err != nil {
			return err
		}
		return q.renderCallbackForm(http.StatusUnprocessableEntity, f, cf, cfg, nil)
	}
	return q.redirect("/callbacks/"+url.PathEscape(saved.ID), "flash.saved")
}

// toggleCallback switches a configuration on or off: what GET shows is
// sent back, secrets masked (which keeps them), with enabled flipped.
func (c *Console) toggleCallback(q *request) error {
	cfg, err := q.getConfig(q.r.PathValue("id"))
	if err != nil {
		return err
	}
	in := map[string]any{"name": cfg.Name, "enabled": !cfg.Enabled, "events": cfg.Events, "channels": cfg.Channels}
	if err := q.api(http.MethodPut, callbacksAPI+"/"+url.PathEscape(cfg.ID), in, nil); err != nil {
		return err
	}
	key := "flash.disabled"
	if !cfg.Enabled {
		key = "flash.enabled"
	}
	return q.redirect(safeNext(q.r.PostForm.Get("back"), "/callbacks/"+url.PathEscape(cfg.ID)), key, cfg.Name)
}

// testCallback is the Test button without JavaScript: the results show on
// the configuration's page.
func (c *Console) testCallback(q *request) error {
	cfg, err := q.getConfig(q.r.PathValue("id"))
	if err != nil {
		return err
	}
	var rep notify.TestReport
	if err := q.api(http.MethodPost, callbacksAPI+"/"+url.PathEscape(cfg.ID)+"/test", map[string]any{}, &rep); err != nil {
		return err
	}
	return q.renderCallbackForm(http.StatusOK, &Form{}, fromConfig(cfg), cfg, &rep)
}

func (c *Console) deleteCallback(q *request) error {
	id := q.r.PathValue("id")
	cfg, err := q.getConfig(id)
	if err != nil {
		return err
	}
	if err := q.api(http.MethodDelete, callbacksAPI+"/"+url.PathEscape(id), nil, nil); err != nil {
		return err
	}
	back := "/callbacks"
	if cfg.ProjectID != "" {
		back = "/projects/" + url.PathEscape(cfg.ProjectID) + "/callbacks"
	}
	return q.redirect(back, "flash.deleted", cfg.Name)
}

// ---- delivery history ----

type historyData struct {
	Entries  []notify.Entry
	Next     string
	Projects []inventory.Project
	Configs  []notify.Config
	Types    []string
	Events   []string
	Filter   url.Values
	Names    map[string]string
	CfgNames map[string]string
}

var historyFilters = []string{"project_id", "task_id", "plan_id", "config_id", "channel_type", "status", "event_type"}

func (c *Console) history(q *request) error {
	in := q.r.URL.Query()
	filter := filterOf(in, historyFilters...)
	// The contract's routes: a configuration's or a task's deliveries have
	// their own; the rest filter the whole history.
	path := callbacksAPI + "/history"
	params := withCursor(filter, in.Get("cursor"))
	switch {
	case filter.Get("config_id") != "":
		path = callbacksAPI + "/" + url.PathEscape(filter.Get("config_id")) + "/history"
		params.Del("config_id")
	case filter.Get("task_id") != "":
		path = tasksAPI + "/" + url.PathEscape(filter.Get("task_id")) + "/callbacks"
		params.Del("task_id")
	}
	if len(params) > 0 {
		path += "?" + params.Encode()
	}
	d := historyData{Types: c.channelTypes(), Events: c.deps.EventTypes, Filter: filter, CfgNames: map[string]string{}}
	var l list[notify.Entry]
	f := &Form{Name: "filter"}
	if err := q.get(path, &l); err != nil {
		if err := f.failed(err); err != nil {
			return err
		}
	}
	d.Entries, d.Next = l.Items, l.next("/history", filter)
	var projects list[inventory.Project]
	if err := q.get(withQuery(projectsAPI, "limit", "500"), &projects); err != nil {
		return err
	}
	d.Projects = projects.Items
	d.Names = map[string]string{}
	for _, p := range projects.Items {
		d.Names[p.ID] = p.Name
	}
	var cfgs list[notify.Config]
	if err := q.get(callbacksAPI, &cfgs); err != nil {
		return err
	}
	d.Configs = cfgs.Items
	for _, c := range cfgs.Items {
		d.CfgNames[c.ID] = c.Name
	}
	q.render(http.StatusOK, "history", q.lang.T("history.title"), "history", d, f)
	return nil
}

// redeliver is the Redeliver button without JavaScript.
func (c *Console) redeliver(q *request) error {
	var out struct {
		DeliveryID string `json:"delivery_id"`
	}
	if err := q.api(http.MethodPost, callbacksAPI+"/history/"+url.PathEscape(q.r.PathValue("id"))+"/redeliver", map[string]any{}, &out); err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.Status < 500 && ae.Status != http.StatusUnauthorized {
			setFlash(q.w, q.r, "error", ae.Message)
			http.Redirect(q.w, q.r, safeNext(q.r.PostForm.Get("back"), "/history"), http.StatusSeeOther)
			return nil
		}
		return err
	}
	return q.redirect(safeNext(q.r.PostForm.Get("back"), "/history"), "flash.redelivered", out.DeliveryID)
}

// prettyRequest shows a stored request: method, URL, headers, body.
func prettyRequest(raw json.RawMessage) string {
	var r struct {
		Method  string            `json:"method"`
		URL     string            `json:"url"`
		Headers map[string]string `json:"headers"`
		Body    json.RawMessage   `json:"body"`
	}
	if json.Unmarshal(raw, &r) != nil || (r.Method == "" && r.URL == "") {
		return string(raw)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", r.Method, r.URL)
	keys := make([]string, 0, len(r.Headers))
	for k := range r.Headers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %s\n", k, r.Headers[k])
	}
	b.WriteString("\n")
	body := r.Body
	var s string
	if json.Unmarshal(body, &s) == nil {
		body = json.RawMessage(s)
	}
	var out strings.Builder
	var v any
	if json.Unmarshal(body, &v) == nil {
		enc, _ := json.MarshalIndent(v, "", "  ")
		out.Write(enc)
	} else {
		out.Write(body)
	}
	b.WriteString(out.String())
	return b.String()
}
