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
	"github.com/herald-release/herald/internal/notify/channel"
)

const callbacksAPI = "/api/v1/release/callbacks"

// chField is one setting of a channel type (CONTRACT §8).
type chField struct {
	Name string
	// Kind is text, url, secret, list, bool, int, headers, select, or
	// checks (several of Options, sent as a list).
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
		{Name: "to", Kind: "list", Placeholder: "ops@example.com, dev@example.com"},
		{Name: "recipients", Kind: "checks", Options: []string{"task_creator", "plan_manager"}},
		{Name: "lang", Kind: "select", Options: []string{"", "zh", "en"}},
	},
	"feishu_app": {
		{Name: "app_id", Kind: "text", Required: true, Placeholder: "cli_…"},
		{Name: "app_secret", Kind: "secret", Required: true},
		{Name: "receive_id_type", Kind: "select", Options: []string{"chat_id", "open_id", "user_id", "union_id", "email"}},
		{Name: "receive_ids", Kind: "list", Placeholder: "oc_xxx, oc_yyy"},
		{Name: "recipients", Kind: "checks", Options: []string{"task_creator", "plan_manager"}},
		{Name: "api_base_url", Kind: "url", Placeholder: "https://open.feishu.cn"},
		{Name: "lang", Kind: "select", Options: []string{"", "zh", "en"}},
	},
	"slack": {
		{Name: "webhook_url", Kind: "url", Required: true, Placeholder: "https://hooks.slack.com/services/T…/B…/…"},
		{Name: "at_user_ids", Kind: "list", Placeholder: "U012AB3CD, U045EF6GH"},
		{Name: "at_here", Kind: "bool"},
		{Name: "at_channel", Kind: "bool"},
		{Name: "lang", Kind: "select", Options: []string{"", "zh", "en"}},
	},
	"teams": {
		{Name: "webhook_url", Kind: "url", Required: true, Placeholder: "https://….logic.azure.com:443/workflows/…/triggers/manual/paths/invoke?…&sig=…"},
		{Name: "at_user_ids", Kind: "list", Placeholder: "alice@contoso.com"},
		{Name: "lang", Kind: "select", Options: []string{"", "zh", "en"}},
	},
	"discord": {
		{Name: "webhook_url", Kind: "url", Required: true, Placeholder: "https://discord.com/api/webhooks/…/…"},
		{Name: "at_user_ids", Kind: "list", Placeholder: "123456789012345678"},
		{Name: "at_role_ids", Kind: "list", Placeholder: "234567890123456789"},
		{Name: "at_everyone", Kind: "bool"},
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
	Lang      string
	// Title and Body are the configuration's template.
	Title, Body string
	// Environments is the conditions' list as typed; the others are the
	// checked values.
	Environments                   string
	Strategies, TaskTypes, Outcome []string
	// PreviewEvent is the event type the Preview buttons show.
	PreviewEvent string
}

type cbChannel struct {
	ID      string
	Type    string
	Enabled bool
	// Mode is wechat's "robot" or "app".
	Mode   string
	Values map[string]string
	Note   string // why Herald disabled it
	// Title and Body are the channel's own template.
	Title, Body string
}

// checksOf are the checked values of a checks field, kept in Values
// joined by commas.
func checksOf(v string) []string { return splitList(v) }

func chPrefix(i int) string { return "channels[" + strconv.Itoa(i) + "]" }

// readCBForm reads the submitted form.
func readCBForm(v url.Values) cbForm {
	f := cbForm{ProjectID: v.Get("project_id"), Name: v.Get("name"), Enabled: v.Get("enabled") != "", Events: v["events"],
		Lang: v.Get("lang"), Title: v.Get("template.title"), Body: v.Get("template.body"),
		Environments: v.Get("conditions.environments"), Strategies: v["conditions.strategies"], TaskTypes: v["conditions.task_types"],
		Outcome: v["conditions.outcomes"], PreviewEvent: v.Get("preview_event")}
	n, _ := strconv.Atoi(v.Get("channel_count"))
	for i := range min(n, 50) {
		p := chPrefix(i)
		ch := cbChannel{ID: v.Get(p + ".id"), Type: v.Get(p + ".type"), Enabled: v.Get(p+".enabled") != "",
			Mode: v.Get(p + ".mode"), Values: map[string]string{}, Note: v.Get(p + ".note"),
			Title: v.Get(p + ".template.title"), Body: v.Get(p + ".template.body")}
		if _, ok := channelFields[ch.Type]; !ok {
			continue
		}
		for _, fd := range channelFields[ch.Type] {
			if fd.Kind == "checks" {
				ch.Values[fd.Name] = strings.Join(v[p+".config."+fd.Name], ",")
				continue
			}
			ch.Values[fd.Name] = v.Get(p + ".config." + fd.Name)
		}
		f.Channels = append(f.Channels, ch)
	}
	return f
}

// fromConfig turns a stored configuration into the form.
func fromConfig(c *notify.Config) cbForm {
	f := cbForm{ProjectID: c.ProjectID, Name: c.Name, Enabled: c.Enabled, Events: c.Events, Lang: c.Lang}
	if c.Template != nil {
		f.Title, f.Body = c.Template.Title, c.Template.Body
	}
	if cd := c.Conditions; cd != nil {
		f.Environments = strings.Join(cd.Environments, ", ")
		f.Strategies, f.TaskTypes, f.Outcome = cd.Strategies, cd.TaskTypes, cd.Outcomes
	}
	for _, ch := range c.Channels {
		x := cbChannel{ID: ch.ID, Type: ch.Type, Enabled: ch.Enabled, Values: map[string]string{}, Note: ch.DisabledReason}
		if ch.Template != nil {
			x.Title, x.Body = ch.Template.Title, ch.Template.Body
		}
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
			if fd.Kind == "checks" {
				x.Values[fd.Name] = strings.Join(checksOf(toString(v)), ",")
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
	v.Set("lang", f.Lang)
	v.Set("template.title", f.Title)
	v.Set("template.body", f.Body)
	v.Set("conditions.environments", f.Environments)
	v["conditions.strategies"] = f.Strategies
	v["conditions.task_types"] = f.TaskTypes
	v["conditions.outcomes"] = f.Outcome
	v.Set("preview_event", f.PreviewEvent)
	v.Set("channel_count", strconv.Itoa(len(f.Channels)))
	for i, ch := range f.Channels {
		p := chPrefix(i)
		v.Set(p+".id", ch.ID)
		v.Set(p+".type", ch.Type)
		v.Set(p+".mode", ch.Mode)
		v.Set(p+".note", ch.Note)
		v.Set(p+".template.title", ch.Title)
		v.Set(p+".template.body", ch.Body)
		if ch.Enabled {
			v.Set(p+".enabled", "true")
		}
		for _, fd := range channelFields[ch.Type] {
			if fd.Kind == "checks" {
				v[p+".config."+fd.Name] = checksOf(ch.Values[fd.Name])
				continue
			}
			v.Set(p+".config."+fd.Name, ch.Values[fd.Name])
		}
	}
	return v
}

// templateInput is a template as the API takes it; nil when both parts are
// empty.
func templateInput(title, body string) map[string]any {
	if strings.TrimSpace(title) == "" && strings.TrimSpace(body) == "" {
		return nil
	}
	return map[string]any{"title": title, "body": body}
}

// conditions are the form's conditions as the API takes them.
func (f cbForm) conditions() map[string]any {
	c := map[string]any{}
	if l := splitList(f.Environments); len(l) > 0 {
		c["environments"] = l
	}
	for k, l := range map[string][]string{"strategies": f.Strategies, "task_types": f.TaskTypes, "outcomes": f.Outcome} {
		if len(l) > 0 {
			c[k] = l
		}
	}
	if len(c) == 0 {
		return nil
	}
	return c
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
			case "list", "checks":
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
		if t := templateInput(ch.Title, ch.Body); t != nil {
			c["template"] = t
		}
		channels = append(channels, c)
	}
	events := f.Events
	if events == nil {
		events = []string{}
	}
	in := map[string]any{"name": strings.TrimSpace(f.Name), "enabled": f.Enabled, "events": events, "channels": channels, "lang": f.Lang}
	if t := templateInput(f.Title, f.Body); t != nil {
		in["template"] = t
	}
	if c := f.conditions(); c != nil {
		in["conditions"] = c
	}
	return in
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
	Events     []string
	Results    *notify.TestReport
	History    []notify.Entry
	// Preview is the Preview button's answer, for the channel it was
	// pressed on.
	Preview *previewView
	// The choices of the conditions, and the template fields' reference.
	Strategies, TaskTypes, Outcomes []string
	Fields                          []channel.TemplateField
}

type previewView struct {
	Index   int
	Preview notify.Preview
	Request string // as history shows requests
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
	return q.renderCallbackFormWith(status, f, cf, cfg, results, nil)
}

func (q *request) renderCallbackFormWith(status int, f *Form, cf cbForm, cfg *notify.Config, results *notify.TestReport, preview *previewView) error {
	d := callbackFormData{Config: cfg, Types: q.c.channelTypes(), EventGroup: q.c.eventGroups(), Events: q.c.deps.EventTypes,
		Results: results, Preview: preview, Strategies: notify.Strategies, TaskTypes: notify.TaskTypes, Outcomes: notify.Outcomes,
		Fields: channel.TemplateFields}
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
	case strings.HasPrefix(op, "preview:"):
		if i, err := strconv.Atoi(strings.TrimPrefix(op, "preview:")); err == nil && i >= 0 && i < len(cf.Channels) {
			return q.previewChannel(cf, cfg, i)
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

// previewChannel is the Preview button of channel i: the form is shown
// again, unsaved, with what the channel would send for a sample event of
// the chosen type, or the errors that keep it from rendering.
func (q *request) previewChannel(cf cbForm, cfg *notify.Config, i int) error {
	f := &Form{}
	in := cf.input(f)
	if len(f.Errors) > 0 {
		f.Message = q.lang.T("form.fix")
		return q.renderCallbackForm(http.StatusUnprocessableEntity, f, cf, cfg, nil)
	}
	body := map[string]any{"event_type": cf.PreviewEvent, "lang": cf.Lang, "project_id": cf.ProjectID,
		"channel": in["channels"].([]map[string]any)[i]}
	if t, ok := in["template"]; ok {
		body["template"] = t
	}
	if cfg != nil {
		body["config_id"] = cfg.ID
	}
	var p notify.Preview
	if err := q.api(http.MethodPost, callbacksAPI+"/preview", body, &p); err != nil {
		if err := f.failed(err); err != nil {
			return err
		}
		// The preview speaks of "channel"; the form of this channel.
		for j, e := range f.Errors {
			if rest, ok := strings.CutPrefix(e.Field, "channel"); ok && (rest == "" || rest[0] == '.') {
				f.Errors[j].Field = chPrefix(i) + rest
			}
			if e.Field == "event_type" {
				f.Errors[j].Field = "preview_event"
			}
		}
		return q.renderCallbackForm(http.StatusUnprocessableEntity, f, cf, cfg, nil)
	}
	pv := &previewView{Index: i, Preview: p}
	if p.Request != nil {
		raw, _ := json.Marshal(p.Request)
		pv.Request = prettyRequest(raw)
	}
	return q.renderCallbackFormWith(http.StatusOK, &Form{}, cf, cfg, nil, pv)
}

// toggleCallback switches a configuration on or off: what GET shows is
// sent back, secrets masked (which keeps them), with enabled flipped.
func (c *Console) toggleCallback(q *request) error {
	cfg, err := q.getConfig(q.r.PathValue("id"))
	if err != nil {
		return err
	}
	in := map[string]any{"name": cfg.Name, "enabled": !cfg.Enabled, "events": cfg.Events, "channels": cfg.Channels,
		"lang": cfg.Lang, "template": cfg.Template, "conditions": cfg.Conditions}
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
