package channel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	texttemplate "text/template"
	"text/template/parse"
	"time"
	"unicode/utf8"

	"github.com/herald-release/herald/internal/event"
)

// Template overrides the title and the body of a channel's messages with
// Go text/template source executed against TemplateData. An empty part
// keeps Herald's default wording.
type Template struct {
	Title string `json:"title,omitempty"`
	Body  string `json:"body,omitempty"`
}

// IsZero reports whether neither part is set.
func (t Template) IsZero() bool { return t.Title == "" && t.Body == "" }

// Or fills the parts t leaves empty from other: a channel's template part
// wins over its configuration's.
func (t Template) Or(other Template) Template {
	if t.Title == "" {
		t.Title = other.Title
	}
	if t.Body == "" {
		t.Body = other.Body
	}
	return t
}

// Sizes of template source and of what a template may produce.
const (
	MaxTemplateTitle = 1 << 10
	MaxTemplateBody  = 16 << 10
	// maxRendered bounds one execution's output and every string a
	// template function builds: a template must not be able to make a
	// message (or Herald's memory) as large as it likes.
	maxRendered = 32 << 10
	// maxTitle is how much of a rendered title is kept: one line.
	maxTitle = 512
)

// LookKey is the key under which the notification hub hands a sender, inside
// the config it is built from, how that channel's messages look: the
// configuration's language and the templates in effect for the channel,
// which are stored in columns of their own. Users never send or see it; a
// config that carries it in a request is refused like any unknown field.
const LookKey = "$look"

// StoredLook is the value under LookKey.
type StoredLook struct {
	// Lang is the configuration's language; a channel's own "lang" wins.
	Lang  string `json:"lang,omitempty"`
	Title string `json:"title,omitempty"`
	Body  string `json:"body,omitempty"`
}

// Look is how a channel words its messages: the language, and the title
// and body templates that replace the defaults, if any.
type Look struct {
	Lang        string
	title, body *texttemplate.Template
}

// Templated reports whether a template replaces the title or the body.
func (l Look) Templated() bool { return l.title != nil || l.body != nil }

// Look reads the message language ("lang", else the configuration's) and
// the templates Herald stored under LookKey.
func (r *ConfigReader) Look() Look {
	lang := r.Lang()
	raw, ok := r.raw(LookKey)
	if !ok {
		return Look{Lang: lang}
	}
	var st StoredLook
	if json.Unmarshal(raw, &st) != nil {
		r.Errs.Add(LookKey, "is Herald's own setting and is corrupt: save the configuration again")
		return Look{Lang: lang}
	}
	if !r.Has("lang") && st.Lang != "" {
		lang = Lang(st.Lang)
	}
	l := Look{Lang: lang}
	var err error
	if st.Title != "" {
		if l.title, err = ParseTemplate("title", st.Title); err != nil {
			r.Errs.Add(LookKey, "title template: %v", err)
		}
	}
	if st.Body != "" {
		if l.body, err = ParseTemplate("body", st.Body); err != nil {
			r.Errs.Add(LookKey, "body template: %v", err)
		}
	}
	return l
}

// NewLook builds a look from a language and template sources (which
// CheckTemplate should have passed).
func NewLook(lang string, t Template) (Look, error) {
	l := Look{Lang: Lang(lang)}
	var err error
	if t.Title != "" {
		if l.title, err = ParseTemplate("title", t.Title); err != nil {
			return l, err
		}
	}
	if t.Body != "" {
		if l.body, err = ParseTemplate("body", t.Body); err != nil {
			return l, err
		}
	}
	return l, nil
}

// Summarize is Summarize in the look's language, with the title and body
// its templates render. esc escapes every value a body template prints for
// the channel's markup (nil: as is); the template's own text is taken as
// the channel's markup. A template that fails on this event's data (it
// passed the checks on save, so only an unusual event gets here), or
// prints nothing, gives way to the default wording: a message is worth
// more than none.
func (l Look) Summarize(ev *event.Envelope, esc func(string) string) Summary {
	s := Summarize(ev, l.Lang)
	if !l.Templated() {
		return s
	}
	data := NewTemplateData(ev, l.Lang)
	if l.title != nil {
		if out, err := execute(l.title, data, nil); err == nil {
			if t := oneLineTitle(out); t != "" {
				s.Title = t
			}
		}
	}
	if l.body != nil {
		// A body that prints nothing for this event gets the default
		// fields: platforms refuse empty texts.
		if out, err := execute(l.body, data, esc); err == nil && strings.TrimSpace(out) != "" {
			s.Body, s.BodySet = strings.TrimSpace(out), true
		}
	}
	return s
}

// Render executes the look's templates for ev as they are shown in a
// preview: the title, and the body (or, without a body template, the
// default message as text lines). Unlike Summarize it reports a template
// that fails.
func (l Look) Render(ev *event.Envelope) (title, body string, err error) {
	s := Summarize(ev, l.Lang)
	title, body = s.Title, s.Text()
	data := NewTemplateData(ev, l.Lang)
	if l.title != nil {
		out, err := execute(l.title, data, nil)
		if err != nil {
			return title, body, fmt.Errorf("title: %w", err)
		}
		if t := oneLineTitle(out); t != "" {
			title = t
		}
	}
	if l.body != nil {
		out, err := execute(l.body, data, nil)
		if err != nil {
			return title, body, fmt.Errorf("body: %w", err)
		}
		if strings.TrimSpace(out) != "" {
			body = strings.TrimSpace(out)
		}
	}
	return title, body, nil
}

func oneLineTitle(s string) string {
	return Truncate(strings.Join(strings.Fields(s), " "), maxTitle)
}

// TemplateError is a template that does not parse, or fails on Herald's
// sample events; Line is 1-based, 0 when unknown.
type TemplateError struct {
	Line int
	Msg  string
}

func (e *TemplateError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

// CheckTemplate parses src (name is "title" or "body") and executes it
// against a sample event of every kind (task, plan, object) with every
// field filled in: a template that does not parse, names a field
// TemplateData does not have, or fails on one of them is refused with its
// line. Branches no sample takes are not checked.
func CheckTemplate(name, src string) error {
	limit := MaxTemplateBody
	if name == "title" {
		limit = MaxTemplateTitle
	}
	if len(src) > limit {
		return &TemplateError{Msg: fmt.Sprintf("at most %d bytes", limit)}
	}
	if !utf8.ValidString(src) {
		return &TemplateError{Msg: "must be UTF-8 text"}
	}
	t, err := ParseTemplate(name, src)
	if err != nil {
		return err
	}
	for _, ev := range SampleEvents() {
		for _, lang := range []string{"zh", "en"} {
			if _, err := execute(t, NewTemplateData(ev, lang), nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// escFunc is the function every printing action of a template ends in
// (see addEscapes); it is replaced per channel at execution.
const escFunc = "herald_escape"

// ParseTemplate parses template source with Herald's functions and rules:
// no {{define}}, {{template}} or {{block}}, ranges over fields only, and
// every printed value passed through the channel's escaping.
func ParseTemplate(name, src string) (*texttemplate.Template, error) {
	t, err := texttemplate.New(name).Option("missingkey=error").Funcs(templateFuncs(nil)).Parse(src)
	if err != nil {
		return nil, templateError(name, err)
	}
	if len(t.Templates()) > 1 {
		return nil, &TemplateError{Msg: "{{define}} and {{block}} are not supported: write the message in one template"}
	}
	if t.Tree == nil || t.Tree.Root == nil {
		return t, nil
	}
	if err := checkNodes(src, t.Tree.Root); err != nil {
		return nil, err
	}
	addEscapes(t.Tree.Root)
	return t, nil
}

// checkNodes refuses what could make a template run long or call itself:
// {{template}} and ranges over anything but a field (a number, or len of a
// long text, nested, would be a busy loop that prints nothing).
func checkNodes(src string, n parse.Node) error {
	line := func(p parse.Pos) int { return 1 + strings.Count(src[:min(int(p), len(src))], "\n") }
	var walk func(parse.Node) error
	walk = func(n parse.Node) error {
		switch n := n.(type) {
		case nil:
			return nil
		case *parse.ListNode:
			if n == nil {
				return nil
			}
			for _, c := range n.Nodes {
				if err := walk(c); err != nil {
					return err
				}
			}
		case *parse.TemplateNode:
			return &TemplateError{Line: line(n.Pos), Msg: "{{template}} is not supported: write the message in one template"}
		case *parse.IfNode:
			return walkBranch(walk, n.List, n.ElseList)
		case *parse.WithNode:
			return walkBranch(walk, n.List, n.ElseList)
		case *parse.RangeNode:
			if !rangesOverField(n.Pipe) {
				return &TemplateError{Line: line(n.Pos), Msg: "{{range}} only goes over a list field, such as .Fields or .Deployment.Hosts"}
			}
			return walkBranch(walk, n.List, n.ElseList)
		}
		return nil
	}
	return walk(n)
}

func walkBranch(walk func(parse.Node) error, lists ...*parse.ListNode) error {
	for _, l := range lists {
		if l == nil {
			continue
		}
		if err := walk(l); err != nil {
			return err
		}
	}
	return nil
}

func rangesOverField(p *parse.PipeNode) bool {
	if p == nil || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
		return false
	}
	switch a := p.Cmds[0].Args[0].(type) {
	case *parse.FieldNode:
		return true
	case *parse.VariableNode:
		return len(a.Ident) > 1 // $.Fields, $x.Hosts; not a bare $n
	case *parse.ChainNode:
		_, ok := a.Node.(*parse.FieldNode)
		return ok
	}
	return false
}

// addEscapes makes every action that prints end in escFunc, the way
// html/template adds its escapers: values from events (a project named
// "<!channel>") stay text in the channel's markup, while the template's
// own text is markup.
func addEscapes(n parse.Node) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			addEscapes(c)
		}
	case *parse.ActionNode:
		if len(n.Pipe.Decl) > 0 {
			return // an assignment prints nothing
		}
		n.Pipe.Cmds = append(n.Pipe.Cmds, &parse.CommandNode{
			NodeType: parse.NodeCommand,
			Pos:      n.Pos,
			Args:     []parse.Node{parse.NewIdentifier(escFunc).SetTree(nil).SetPos(n.Pos)},
		})
	case *parse.IfNode:
		addEscapes(n.List)
		addEscapes(n.ElseList)
	case *parse.WithNode:
		addEscapes(n.List)
		addEscapes(n.ElseList)
	case *parse.RangeNode:
		addEscapes(n.List)
		addEscapes(n.ElseList)
	}
}

var errTooLong = fmt.Errorf("the message would be longer than %d bytes", maxRendered)

// capped returns s, or an error when it is longer than maxRendered.
func capped(s string) (string, error) {
	if len(s) > maxRendered {
		return "", errTooLong
	}
	return s, nil
}

// templateFuncs are the functions templates may call. The printing
// built-ins are replaced by versions whose result is bounded, since
// assignments can double a text without printing it.
func templateFuncs(esc func(string) string) texttemplate.FuncMap {
	if esc == nil {
		esc = func(s string) string { return s }
	}
	return texttemplate.FuncMap{
		escFunc: func(v any) (string, error) { return capped(esc(fmt.Sprint(v))) },
		"print": func(a ...any) (string, error) { return capped(fmt.Sprint(a...)) },
		"printf": func(f string, a ...any) (string, error) {
			return capped(fmt.Sprintf(f, a...))
		},
		"println":  func(a ...any) (string, error) { return capped(fmt.Sprintln(a...)) },
		"html":     func(a ...any) (string, error) { return capped(texttemplate.HTMLEscapeString(fmt.Sprint(a...))) },
		"js":       func(a ...any) (string, error) { return capped(texttemplate.JSEscapeString(fmt.Sprint(a...))) },
		"urlquery": func(a ...any) (string, error) { return capped(url.QueryEscape(fmt.Sprint(a...))) },
		"join": func(sep string, list []string) (string, error) {
			return capped(strings.Join(list, sep))
		},
		"upper": strings.ToUpper,
		"lower": strings.ToLower,
		"trim":  strings.TrimSpace,
		"truncate": func(n int, s string) string {
			if n < 0 || utf8.RuneCountInString(s) <= n {
				return s
			}
			return string([]rune(s)[:n]) + "…"
		},
	}
}

// limitWriter fails once more than maxRendered bytes were written.
type limitWriter struct{ bytes.Buffer }

func (w *limitWriter) Write(p []byte) (int, error) {
	if w.Len()+len(p) > maxRendered {
		return 0, errTooLong
	}
	return w.Buffer.Write(p)
}

func execute(t *texttemplate.Template, data TemplateData, esc func(string) string) (string, error) {
	c, err := t.Clone()
	if err != nil {
		return "", err
	}
	c.Funcs(templateFuncs(esc))
	var w limitWriter
	if err := c.Execute(&w, data); err != nil {
		return "", templateError(t.Name(), err)
	}
	return w.String(), nil
}

var (
	// "template: body:3: function \"x\" not defined", or with a column:
	// "template: body:3:14: executing \"body\" at <.X>: …".
	templateErrRE = regexp.MustCompile(`(?s)^template: [^:]+:(\d+)(?::\d+)?: (.*)$`)
	unknownField  = regexp.MustCompile(`^executing "[^"]*" at <([^>]*)>: can't evaluate field (\w+) in type (\S+)$`)
	executingAt   = regexp.MustCompile(`(?s)^executing "[^"]*" at <([^>]*)>: (.*)$`)
)

// templateError words a parse or execution error: its line, and for an
// unknown field, which.
func templateError(name string, err error) error {
	var te *TemplateError
	if errors.As(err, &te) {
		return te
	}
	msg := err.Error()
	m := templateErrRE.FindStringSubmatch(msg)
	if m == nil {
		return &TemplateError{Msg: strings.TrimPrefix(msg, "template: ")}
	}
	line, _ := strconv.Atoi(m[1])
	rest := m[2]
	if f := unknownField.FindStringSubmatch(rest); f != nil {
		typ := f[3]
		if i := strings.LastIndex(typ, "."); i >= 0 {
			typ = typ[i+1:]
		}
		rest = fmt.Sprintf("unknown field %s in {{%s}}: %s has no field %s (see the template fields)", f[2], f[1], typ, f[2])
	} else if f := executingAt.FindStringSubmatch(rest); f != nil {
		rest = fmt.Sprintf("{{%s}}: %s", f[1], strings.TrimPrefix(f[2], "error calling "+escFunc+": "))
	}
	// Execution errors may quote the sample data at length.
	return &TemplateError{Line: line, Msg: Truncate(rest, 300)}
}

// ---- the data templates see ----

// TemplateData is what a title or body template is executed against:
// the event's standard message (CONTRACT §6) in a stable shape. Fields an
// event does not carry are empty ("" or 0), never missing, so a template
// works for every event.
type TemplateData struct {
	EventType  string // canary_started, release_failed, plan_approved, project_created, …
	ObjectKind string // release_task, release_plan, project, environment, version, host
	Action     string // the event type for task and plan events; create, update or delete for object events
	Outcome    string // success, failed or cancelled; "" for events that are not an outcome
	Lang       string // zh or en
	// Title is Herald's default title in Lang ("发布通知：发布失败").
	Title string
	// Status is the task's or plan's status, or the object event's
	// action, as the API spells it; StatusText is the same in Lang.
	Status, StatusText string
	Project            TemplateProject
	Version            TemplateVersion
	Environment        string
	Task               TemplateTask
	Deployment         TemplateDeployment
	// Hosts lists the event's hosts as messages do: "h1, h2 +3 more".
	Hosts       string
	Duration    string // "1m30s"
	Actor       TemplateActor
	URL         string // the event's page in Herald
	Timestamp   string // RFC 3339, UTC
	ReleasePlan TemplatePlan
	Object      TemplateObject
	// Fields are the lines of Herald's default message, {Label, Value}, in
	// Lang; Text is the same as "Label: Value" lines.
	Fields []Field
	Text   string
}

// TemplateProject is the event's project.
type TemplateProject struct{ ID, Name, Description string }

// TemplateVersion is the version a task releases, or the one created.
type TemplateVersion struct{ ID, Name, Description string }

// TemplateTask is the release task as it stood at the event.
type TemplateTask struct{ ID, Type, Strategy, Status, Phase string }

// TemplateDeployment carries the host counts at the event.
type TemplateDeployment struct {
	TotalCount, CanaryCount, CompletedCount, FailedCount int
	Hosts                                                []string
}

// TemplateActor is who caused the event.
type TemplateActor struct{ ID, Name string }

// TemplatePlan is the release plan of a plan event.
type TemplatePlan struct {
	ID, Name, Status, Manager, ManagerID string
	// HookEvent is the moment of plan_finish_planning, plan_start_execute
	// and plan_all_job_done; Comment is the approver's comment.
	HookEvent, Comment string
	ApprovalMode       string   // any or all
	Approvers          []string // names (ids for users without one)
}

// TemplateObject is the object of an object event.
type TemplateObject struct{ Kind, ID, Name string }

// NewTemplateData turns an event into what templates see.
func NewTemplateData(ev *event.Envelope, lang string) TemplateData {
	lang = Lang(lang)
	s := Summarize(ev, lang)
	d := TemplateData{
		EventType: ev.EventType, ObjectKind: ev.ObjectKind, Action: ev.Action, Outcome: Outcome(ev.EventType),
		Lang: lang, Title: s.Title, StatusText: s.Status, Environment: ev.Environment, Duration: ev.Duration,
		URL: ev.URL, Fields: append([]Field{}, s.Fields...), Text: s.Text(),
	}
	if d.ObjectKind == "" {
		if info, ok := event.Lookup(ev.EventType); ok {
			d.ObjectKind, d.Action = info.ObjectKind, info.Action
		}
	}
	if !ev.Timestamp.IsZero() {
		d.Timestamp = ev.Timestamp.UTC().Format(time.RFC3339)
	}
	if p := ev.Project; p != nil {
		d.Project = TemplateProject{p.ID, p.Name, p.Description}
	}
	if v := ev.Version; v != nil {
		d.Version = TemplateVersion{v.ID, v.Name, v.Description}
	}
	if t := ev.Task; t != nil {
		d.Task = TemplateTask{t.ID, t.Type, t.Strategy, t.Status, t.Phase}
		d.Status = t.Status
	}
	if dep := ev.Deployment; dep != nil {
		d.Deployment = TemplateDeployment{dep.TotalCount, dep.CanaryCount, dep.CompletedCount, dep.FailedCount, append([]string{}, dep.Hosts...)}
		d.Hosts = FormatHosts(dep.Hosts, MaxHosts, lang)
	}
	if d.Deployment.Hosts == nil {
		d.Deployment.Hosts = []string{}
	}
	if a := ev.Actor; a != nil {
		d.Actor = TemplateActor{a.ID, a.Name}
	}
	if len(ev.ReleasePlan) > 0 {
		var p struct {
			event.PlanRef
			HookEvent string `json:"hook_event"`
			Comment   string `json:"comment"`
			Approval  *struct {
				Mode      string        `json:"mode"`
				Approvers []event.Actor `json:"approvers"`
			} `json:"approval"`
		}
		if json.Unmarshal(ev.ReleasePlan, &p) == nil {
			d.ReleasePlan = TemplatePlan{ID: p.ID, Name: p.Name, Status: p.Status, Manager: firstNonEmpty(p.Manager, p.ManagerID),
				ManagerID: p.ManagerID, HookEvent: p.HookEvent, Comment: p.Comment}
			if p.Approval != nil {
				d.ReleasePlan.ApprovalMode = p.Approval.Mode
				for _, a := range p.Approval.Approvers {
					d.ReleasePlan.Approvers = append(d.ReleasePlan.Approvers, firstNonEmpty(a.Name, a.ID))
				}
			}
			d.Status = p.Status
		}
	}
	if d.ReleasePlan.Approvers == nil {
		d.ReleasePlan.Approvers = []string{}
	}
	if len(ev.Object) > 0 {
		var o struct{ ID, Name string }
		_ = json.Unmarshal(ev.Object, &o)
		d.Object = TemplateObject{Kind: ev.ObjectKind, ID: o.ID, Name: firstNonEmpty(o.Name, o.ID)}
		d.Status = ev.Action
	}
	return d
}

// TemplateField documents one field of TemplateData.
type TemplateField struct{ Name, Type, Description string }

// TemplateFields is the reference of what templates see, in the order
// the README and the console list it.
var TemplateFields = []TemplateField{
	{".EventType", "string", "event type: canary_started, release_failed, plan_approved, project_created, …"},
	{".ObjectKind", "string", "release_task, release_plan, project, environment, version or host"},
	{".Action", "string", "the event type for task and plan events; create, update or delete for object events"},
	{".Outcome", "string", `success, failed or cancelled; "" when the event is not an outcome (started, requested, object events)`},
	{".Lang", "string", "zh or en, the configuration's (or channel's) language"},
	{".Title", "string", `Herald's default title in .Lang, "发布通知：发布失败" / "Release: release failed"`},
	{".Status", "string", "the task's or plan's status, or the object event's action, as the API spells it"},
	{".StatusText", "string", "the same in .Lang"},
	{".Project.ID .Project.Name .Project.Description", "string", "the event's project"},
	{".Version.ID .Version.Name .Version.Description", "string", "the version a task releases (or the one created)"},
	{".Environment", "string", "environment name (task, environment and host events)"},
	{".Task.ID .Task.Type .Task.Strategy .Task.Status .Task.Phase", "string", "the release task: deploy|rollback|stop, canary|rolling|blue_green, its status and phase"},
	{".Deployment.TotalCount .CanaryCount .CompletedCount .FailedCount", "int", "host counts at the event"},
	{".Deployment.Hosts", "[]string", "the hosts the event is about"},
	{".Hosts", "string", `the hosts as messages list them, "h1, h2 +3 more"`},
	{".Duration", "string", `how long the task or plan ran, "1m30s"`},
	{".Actor.ID .Actor.Name", "string", "who caused the event"},
	{".URL", "string", "the event's page in Herald"},
	{".Timestamp", "string", "when, RFC 3339 UTC"},
	{".ReleasePlan.ID .Name .Status .Manager .ManagerID .HookEvent .Comment .ApprovalMode", "string", "the release plan of plan events"},
	{".ReleasePlan.Approvers", "[]string", "who is asked to approve"},
	{".Object.Kind .Object.ID .Object.Name", "string", "the object of object events"},
	{".Fields", "[]{Label, Value}", "the lines of Herald's default message, in .Lang"},
	{".Text", "string", `the default message as "Label: Value" lines`},
}

// SampleEvents are one event of each kind with every field filled in: the
// templates' checks run against them, and previews start from them.
func SampleEvents() []*event.Envelope {
	return []*event.Envelope{
		SampleEvent(event.ReleaseFailed, "", event.Actor{ID: "usr_sample", Name: "Sample User"}),
		SampleEvent(event.PlanApprovalRequested, "", event.Actor{ID: "usr_sample", Name: "Sample User"}),
		SampleEvent(event.HostCreated, "", event.Actor{ID: "usr_sample", Name: "Sample User"}),
	}
}

// SampleEvent is an event of the type as Herald would publish it, with
// every field its kind carries filled in; publicURL prefixes its link.
func SampleEvent(eventType, publicURL string, actor event.Actor) *event.Envelope {
	info, ok := event.Lookup(eventType)
	if !ok {
		info = event.Info{Type: eventType, ObjectKind: event.KindReleaseTask, Action: eventType}
	}
	a := actor
	ev := &event.Envelope{
		ID: "evt_sample", Sequence: 3, EventType: eventType, ObjectKind: info.ObjectKind, Action: info.Action,
		Project:   &event.ProjectRef{ID: "sample-app", Name: "Sample App", Description: "A sample project"},
		Timestamp: time.Date(2026, 1, 6, 20, 0, 0, 0, time.UTC),
		Actor:     &a,
	}
	switch info.ObjectKind {
	case event.KindReleaseTask:
		status, phase, strategy := "running", "rollout", "canary"
		dep := &event.Deployment{TotalCount: 10, CanaryCount: 1, CompletedCount: 4, FailedCount: 0,
			Hosts: []string{"web-1", "web-2", "web-3", "web-4", "web-5", "web-6", "web-7", "web-8", "web-9", "web-10"}}
		switch eventType {
		case event.CanaryStarted, event.CanaryCompleted:
			phase, dep.Hosts, dep.CompletedCount = "canary", []string{"web-1"}, 0
			if eventType == event.CanaryCompleted {
				status, dep.CompletedCount = "paused", 1
			}
		case event.ReleaseStarted:
			strategy, dep.CanaryCount, dep.CompletedCount = "rolling", 0, 0
		case event.FullCompleted:
			status, dep.CompletedCount, phase = "success", 10, ""
		case event.ReleaseFailed, event.RollbackStarted:
			status, dep.CompletedCount, dep.FailedCount = "failed", 6, 1
		case event.ReleaseCancelled:
			status = "cancelled"
		}
		ev.Version = &event.VersionRef{ID: "ver_sample", Name: "v1.2.3", Description: "Sample version"}
		ev.Task = &event.TaskRef{ID: "tsk_sample", Type: "deploy", Strategy: strategy, Status: status, Phase: phase}
		if eventType == event.RollbackStarted {
			ev.Task.Type = "rollback"
		}
		ev.Deployment = dep
		ev.Environment = "production"
		ev.Duration = "1m30s"
		ev.URL = publicURL + "/tasks/tsk_sample"
	case event.KindReleasePlan:
		status := map[string]string{
			event.PlanFinishPlanning: "finish_planning", event.PlanStartExecute: "executing", event.PlanAllJobDone: "executing",
			event.PlanApprovalRequested: "wait_for_approval", event.PlanApproved: "finish_planning", event.PlanDenied: "denied",
			event.PlanTimeout: "timeout", event.PlanCancelled: "cancel", event.PlanSuccess: "success",
		}[eventType]
		plan := map[string]any{
			"id": "pln_sample", "index": 7, "name": "Sample release plan", "status": status,
			"manager": firstNonEmpty(actor.Name, actor.ID), "manager_id": actor.ID, "instance_code": "sample",
			"hook_event": "finish_planning", "comment": "looks good",
			"approval": map[string]any{"mode": "any", "approvers": []event.Actor{actor, {ID: "usr_other", Name: "Another Approver"}}},
			"jobs":     []any{},
		}
		ev.ReleasePlan, _ = json.Marshal(plan)
		ev.Duration = "2h0m0s"
		ev.URL = publicURL + "/plans/pln_sample"
	default:
		obj := map[string]any{"id": "obj_sample", "name": "sample-" + info.ObjectKind}
		switch info.ObjectKind {
		case event.KindEnvironment, event.KindHost:
			ev.Environment = "production"
		case event.KindVersion:
			ev.Version = &event.VersionRef{ID: "ver_sample", Name: "v1.2.3", Description: "Sample version"}
			obj["name"] = "v1.2.3"
		}
		ev.Object, _ = json.Marshal(obj)
		ev.URL = publicURL + "/projects/sample-app"
	}
	return ev
}

// Outcome is how an event ended something: success, failed, cancelled, or
// "" for events that begin or ask for something, and object events.
// Conditions on outcomes and templates (.Outcome) use it.
func Outcome(eventType string) string {
	switch eventType {
	case event.CanaryCompleted, event.FullCompleted, event.PlanApproved, event.PlanAllJobDone, event.PlanSuccess:
		return OutcomeSuccess
	case event.ReleaseFailed, event.RollbackStarted, event.PlanDenied, event.PlanTimeout:
		return OutcomeFailed
	case event.ReleaseCancelled, event.PlanCancelled:
		return OutcomeCancelled
	}
	return ""
}

// Outcomes.
const (
	OutcomeSuccess   = "success"
	OutcomeFailed    = "failed"
	OutcomeCancelled = "cancelled"
)

// Text is the default message as "Label: Value" lines.
func (s Summary) Text() string {
	lines := make([]string, len(s.Fields))
	for i, f := range s.Fields {
		lines[i] = f.Label + ": " + f.Value
	}
	return strings.Join(lines, "\n")
}
