package wechat

import (
	"strings"

	"github.com/herald-release/herald/internal/notify/channel"
)

// Content limits, in bytes of UTF-8.
const (
	// MaxRobotMarkdown is the group robot's markdown.content limit.
	MaxRobotMarkdown = 4096
	// MaxRobotText is the group robot's text.content limit.
	MaxRobotText = 2048
	// MaxAppMarkdown is the application message's markdown.content limit.
	MaxAppMarkdown = 2048
)

// RenderMarkdown builds the markdown of the PRD: "## title", one
// ">label: value" line per field, a link to the event's page, and a
// "<@userid>" per mention, within limit bytes (only the fields are ever
// shortened).
func RenderMarkdown(sum channel.Summary, lang string, mentions []string, limit int) string {
	lines := make([]string, len(sum.Fields))
	for i, f := range sum.Fields {
		lines[i] = ">" + f.Label + ": " + neutralize(f.Value)
	}
	var tail []string
	if sum.URL != "" {
		tail = append(tail, "["+linkLabel(lang)+"]("+sum.URL+")")
	}
	var at strings.Builder
	for _, m := range mentions {
		if m != "@all" { // markdown cannot mention everyone; see robot.go
			at.WriteString("<@" + m + ">")
		}
	}
	if at.Len() > 0 {
		tail = append(tail, at.String())
	}
	render := func(fields string) []byte {
		parts := []string{"## " + neutralize(sum.Title)}
		if fields != "" {
			parts = append(parts, fields)
		}
		parts = append(parts, tail...)
		return []byte(strings.Join(parts, "\n\n"))
	}
	fields := strings.Join(lines, "\n")
	if sum.BodySet {
		fields = sum.Body
	}
	return string(channel.Fit(fields, limit, render))
}

// RenderText is the plain-text form of the same content, for the text
// message, the only one that can mention by mobile number or everyone.
func RenderText(sum channel.Summary, lang string, limit int) string {
	lines := make([]string, len(sum.Fields))
	for i, f := range sum.Fields {
		lines[i] = f.Label + ": " + f.Value
	}
	tail := ""
	if sum.URL != "" {
		tail = "\n" + sum.URL
	}
	render := func(fields string) []byte {
		return []byte(sum.Title + "\n" + fields + tail)
	}
	fields := strings.Join(lines, "\n")
	if sum.BodySet {
		// The body template's markdown shows as typed: only text messages
		// mention by mobile number or everyone.
		fields = sum.Body
	}
	return string(channel.Fit(fields, limit, render))
}

func linkLabel(lang string) string {
	if channel.Lang(lang) == "en" {
		return "View details"
	}
	return "查看详情"
}

// neutralize keeps a name typed by a Herald user from mentioning people:
// "<@" is WeCom's mention syntax and has no escape.
func neutralize(v string) string {
	return strings.ReplaceAll(v, "<@", "< @")
}
