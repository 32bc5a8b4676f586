package channel

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/herald-release/herald/internal/event"
)

// Field is one labelled line of a message.
type Field struct{ Label, Value string }

// Summary is the platform-neutral content of a message. Every IM channel
// renders the same Summary, so a Feishu card, a DingTalk markdown and a WeCom
// markdown always say the same thing about an event.
type Summary struct {
	// Title is e.g. "发布通知：金丝雀发布开始" or "Release: canary started".
	Title string
	// Status is the task or plan status, or the object action, in lang.
	Status string
	// Color is semantic: "blue" (started/running), "green" (success),
	// "red" (failed/denied/timeout), "orange" (cancelled, rollback, waiting
	// for a person), "grey" (object events). Channels map it to their own
	// palette; it is Feishu's card template name as is.
	Color string
	// Fields are ordered and never have an empty value.
	Fields []Field
	// URL links to the event's page in Herald; may be empty.
	URL string
	// Body, when BodySet, replaces Fields: a body template rendered for
	// the channel (Look.Summarize), in the channel's markup with the
	// event's values escaped. It may be empty: the template printed
	// nothing for this event.
	Body    string
	BodySet bool
}

// Summary colours.
const (
	ColorBlue   = "blue"
	ColorGreen  = "green"
	ColorRed    = "red"
	ColorOrange = "orange"
	ColorGrey   = "grey"
)

// MaxHosts is how many host names a message lists before "+N more".
const MaxHosts = 5

// Lang normalises a language setting: "en" or "zh" (the default).
func Lang(lang string) string {
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(lang)), "en") {
		return "en"
	}
	return "zh"
}

// text is one phrase in both languages.
type text struct{ zh, en string }

func (t text) in(lang string) string {
	if lang == "en" {
		return t.en
	}
	return t.zh
}

type eventLook struct {
	title text
	color string
}

// looks gives every event type of the catalog its title and colour; the
// summary test walks event.Types() so a new event cannot be forgotten.
var looks = map[string]eventLook{
	event.CanaryStarted:    {text{"金丝雀发布开始", "canary started"}, ColorBlue},
	event.CanaryCompleted:  {text{"金丝雀发布完成", "canary completed"}, ColorGreen},
	event.FullCompleted:    {text{"全部发布完成", "release completed"}, ColorGreen},
	event.ReleaseStarted:   {text{"发布开始", "release started"}, ColorBlue},
	event.ReleaseFailed:    {text{"发布失败", "release failed"}, ColorRed},
	event.ReleaseCancelled: {text{"发布已取消", "release cancelled"}, ColorOrange},
	event.RollbackStarted:  {text{"自动回滚开始", "rollback started"}, ColorOrange},

	event.PlanFinishPlanning:    {text{"发布计划规划完成", "plan planning finished"}, ColorBlue},
	event.PlanStartExecute:      {text{"发布计划开始执行", "plan execution started"}, ColorBlue},
	event.PlanAllJobDone:        {text{"发布计划任务全部完成", "plan jobs all done"}, ColorGreen},
	event.PlanApprovalRequested: {text{"发布计划待审批", "plan approval requested"}, ColorOrange},
	event.PlanApproved:          {text{"发布计划已批准", "plan approved"}, ColorGreen},
	event.PlanDenied:            {text{"发布计划被拒绝", "plan denied"}, ColorRed},
	event.PlanTimeout:           {text{"发布计划已超时", "plan timed out"}, ColorRed},
	event.PlanCancelled:         {text{"发布计划已取消", "plan cancelled"}, ColorOrange},
	event.PlanSuccess:           {text{"发布计划成功", "plan succeeded"}, ColorGreen},

	event.ProjectCreated:     {text{"项目已创建", "project created"}, ColorGrey},
	event.ProjectUpdated:     {text{"项目已更新", "project updated"}, ColorGrey},
	event.ProjectDeleted:     {text{"项目已删除", "project deleted"}, ColorGrey},
	event.EnvironmentCreated: {text{"环境已创建", "environment created"}, ColorGrey},
	event.EnvironmentUpdated: {text{"环境已更新", "environment updated"}, ColorGrey},
	event.EnvironmentDeleted: {text{"环境已删除", "environment deleted"}, ColorGrey},
	event.VersionCreated:     {text{"版本已创建", "version created"}, ColorGrey},
	event.HostCreated:        {text{"主机已添加", "host created"}, ColorGrey},
	event.HostDeleted:        {text{"主机已删除", "host deleted"}, ColorGrey},
}

var titlePrefix = text{"发布通知：", "Release: "}

var labels = struct {
	project, version, environment, taskType, strategy, status, progress, canary,
	hosts, duration, actor, plan, manager, approvers, object, name text
}{
	project:     text{"项目", "Project"},
	version:     text{"版本", "Version"},
	environment: text{"环境", "Environment"},
	taskType:    text{"任务类型", "Task type"},
	strategy:    text{"发布策略", "Strategy"},
	status:      text{"状态", "Status"},
	progress:    text{"进度", "Progress"},
	canary:      text{"金丝雀主机数", "Canary hosts"},
	hosts:       text{"主机", "Hosts"},
	duration:    text{"耗时", "Duration"},
	actor:       text{"操作人", "Actor"},
	plan:        text{"发布计划", "Release plan"},
	manager:     text{"负责人", "Manager"},
	approvers:   text{"审批人", "Approvers"},
	object:      text{"对象", "Object"},
	name:        text{"名称", "Name"},
}

// words translates the fixed enum values of the contract (statuses, task
// types, strategies, object kinds and actions) for Chinese readers; English
// readers get the value itself, which is the API's own word.
var words = map[string]string{
	// task status
	"pending": "等待中", "running": "发布中", "paused": "等待推广", "success": "成功",
	"failed": "失败", "cancelled": "已取消",
	// task type and strategy
	"deploy": "部署", "rollback": "回滚", "stop": "停止",
	"canary": "金丝雀", "rolling": "滚动", "blue_green": "蓝绿",
	// plan status
	"planning": "规划中", "finish_planning": "规划完成", "wait_for_approval": "待审批",
	"executing": "执行中", "denied": "已拒绝", "timeout": "已超时", "cancel": "已取消",
	"wait_for_finish_planning_external_check":        "等待规划完成外部检查",
	"wait_for_finish_planning_external_check_failed": "规划完成外部检查失败",
	"wait_for_execute_external_check":                "等待执行外部检查",
	"wait_for_execute_external_check_failed":         "执行外部检查失败",
	"wait_for_all_done_external_check":               "等待完成外部检查",
	"wait_for_all_done_external_check_failed":        "完成外部检查失败",
	// object kinds and actions
	"project": "项目", "environment": "环境", "version": "版本", "host": "主机",
	"create": "创建", "update": "更新", "delete": "删除",
}

func word(v, lang string) string {
	if lang == "zh" {
		if w, ok := words[v]; ok {
			return w
		}
	}
	return v
}

// Summarize turns an event into the content every IM channel renders.
// lang is "zh" (the default, also for "") or "en".
func Summarize(ev *event.Envelope, lang string) Summary {
	lang = Lang(lang)
	look, ok := looks[ev.EventType]
	if !ok {
		// An event type newer than this table still gets a readable message.
		look = eventLook{text{ev.EventType, ev.EventType}, ColorGrey}
	}
	s := Summary{
		Title: titlePrefix.in(lang) + look.title.in(lang),
		Color: look.color,
		URL:   ev.URL,
	}
	add := func(label text, value string) {
		if value = strings.TrimSpace(value); value != "" {
			s.Fields = append(s.Fields, Field{label.in(lang), value})
		}
	}

	switch ev.ObjectKind {
	case event.KindReleasePlan:
		plan, _ := ev.Plan()
		s.Status = word(plan.Status, lang)
		add(labels.project, projectName(ev.Project))
		add(labels.plan, plan.Name)
		add(labels.status, s.Status)
		add(labels.manager, firstNonEmpty(plan.Manager, plan.ManagerID))
		if ev.EventType == event.PlanApprovalRequested {
			// The people asked to act on it; the link (s.URL) opens the
			// plan's page, where they approve or deny.
			add(labels.approvers, approvers(ev.ReleasePlan, lang))
		}
		add(labels.duration, ev.Duration)
		add(labels.actor, actorName(ev.Actor))
	case event.KindReleaseTask, "":
		if ev.Task != nil {
			s.Status = word(ev.Task.Status, lang)
		}
		add(labels.project, projectName(ev.Project))
		if ev.Version != nil {
			add(labels.version, firstNonEmpty(ev.Version.Name, ev.Version.ID))
		}
		add(labels.environment, ev.Environment)
		if ev.Task != nil {
			add(labels.taskType, word(ev.Task.Type, lang))
			add(labels.strategy, word(ev.Task.Strategy, lang))
			add(labels.status, s.Status)
		}
		if d := ev.Deployment; d != nil {
			add(labels.progress, progress(d, lang))
			if d.CanaryCount > 0 && (ev.EventType == event.CanaryStarted || ev.EventType == event.CanaryCompleted) {
				add(labels.canary, strconv.Itoa(d.CanaryCount))
			}
			add(labels.hosts, FormatHosts(d.Hosts, MaxHosts, lang))
		}
		add(labels.duration, ev.Duration)
		add(labels.actor, actorName(ev.Actor))
	default: // project, environment, version, host
		s.Status = word(ev.Action, lang)
		add(labels.project, projectName(ev.Project))
		add(labels.environment, ev.Environment)
		add(labels.object, objectLine(ev.ObjectKind, ev.Action, lang))
		add(labels.name, objectName(ev.Object))
		add(labels.actor, actorName(ev.Actor))
	}
	return s
}

// progress reads "completed/total", with the failures only when there are
// some: "(failed 0)" on every message is noise.
func progress(d *event.Deployment, lang string) string {
	if d.TotalCount == 0 && d.CompletedCount == 0 && d.FailedCount == 0 {
		return ""
	}
	p := fmt.Sprintf("%d/%d", d.CompletedCount, d.TotalCount)
	if d.FailedCount > 0 {
		if lang == "en" {
			p += fmt.Sprintf(" (failed %d)", d.FailedCount)
		} else {
			p += fmt.Sprintf("（失败 %d）", d.FailedCount)
		}
	}
	return p
}

// FormatHosts lists the first max hosts and says how many there are beyond
// them: "h1, h2 +3 more" in English, "h1, h2 等 5 台" (the total) in
// Chinese. Messages have size limits and a list of hundreds helps no one.
func FormatHosts(hosts []string, max int, lang string) string {
	if max <= 0 {
		max = MaxHosts
	}
	if len(hosts) <= max {
		return strings.Join(hosts, ", ")
	}
	shown := strings.Join(hosts[:max], ", ")
	if Lang(lang) == "en" {
		return fmt.Sprintf("%s +%d more", shown, len(hosts)-max)
	}
	return fmt.Sprintf("%s 等 %d 台", shown, len(hosts))
}

// maxApprovers is how many approvers a message names before "+N more".
const maxApprovers = 10

// approvers lists who a plan event asks to approve, from the release_plan
// object's "approval": {"mode", "approvers": [{"id", "name"}]} (as
// internal/plan publishes it): names, or ids for users without one, and
// with several approvers whether any one or all of them must approve.
func approvers(raw json.RawMessage, lang string) string {
	var p struct {
		Approval *struct {
			Mode      string        `json:"mode"`
			Approvers []event.Actor `json:"approvers"`
		} `json:"approval"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &p) != nil || p.Approval == nil {
		return ""
	}
	var names []string
	for _, a := range p.Approval.Approvers {
		if n := strings.TrimSpace(firstNonEmpty(a.Name, a.ID)); n != "" {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return ""
	}
	out := strings.Join(names, ", ")
	if len(names) > maxApprovers {
		out = strings.Join(names[:maxApprovers], ", ")
		if lang == "en" {
			out += fmt.Sprintf(" +%d more", len(names)-maxApprovers)
		} else {
			out += fmt.Sprintf(" 等 %d 人", len(names))
		}
	}
	if len(names) > 1 {
		switch {
		case p.Approval.Mode == "all" && lang == "en":
			out += " (all must approve)"
		case p.Approval.Mode == "all":
			out += "（需全部通过）"
		case lang == "en":
			out += " (any one may approve)"
		default:
			out += "（任一人通过即可）"
		}
	}
	return out
}

func projectName(p *event.ProjectRef) string {
	if p == nil {
		return ""
	}
	return firstNonEmpty(p.Name, p.ID)
}

func actorName(a *event.Actor) string {
	if a == nil {
		return ""
	}
	return firstNonEmpty(a.Name, a.ID)
}

func objectLine(kind, action, lang string) string {
	if lang == "en" {
		return strings.TrimSpace(kind + " " + action)
	}
	return word(kind, lang) + word(action, lang)
}

// objectName picks a human name out of the object of an object event;
// objects differ per kind, but all have a name or at least an id.
func objectName(raw json.RawMessage) string {
	var o struct {
		Name string `json:"name"`
		ID   string `json:"id"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &o) != nil {
		return ""
	}
	return firstNonEmpty(o.Name, o.ID)
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if strings.TrimSpace(v) != "" {
			return v
		}
	}
	return ""
}

// Truncate cuts s to at most n bytes without splitting a character, ending
// with "…" when something was cut. Platforms refuse oversized messages
// outright, so a shortened message is better than none.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ellipsis = "…"
	if n < len(ellipsis) {
		return ""
	}
	cut := n - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

// Fit renders a message around text and, while the result is over limit
// bytes, shortens text by the excess and renders again. Cutting n bytes of
// text removes at least n bytes of output (escaping only ever adds), so it
// takes one or two rounds. When even an empty text is too big, the result
// is over the limit and the platform's refusal says so.
func Fit(text string, limit int, render func(text string) []byte) []byte {
	out := render(text)
	for len(out) > limit && text != "" {
		over := len(out) - limit
		if over >= len(text) {
			text = ""
		} else {
			text = Truncate(text, len(text)-over)
		}
		out = render(text)
	}
	return out
}
