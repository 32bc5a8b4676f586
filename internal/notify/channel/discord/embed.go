package discord

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/herald-release/herald/internal/notify/channel"
)

// Embed limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits),
// in characters.
const (
	MaxTitle       = 256
	MaxDescription = 4096
	MaxFieldName   = 256
	MaxFieldValue  = 1024
	MaxFields      = 25
	// MaxEmbedTotal bounds the title, field names and values together.
	MaxEmbedTotal = 6000
	// inlineUpTo is the longest value shown in a column; longer ones
	// (host lists) get a row of their own.
	inlineUpTo = 40
)

// Message is the body of an execute-webhook request.
type Message struct {
	// Content holds the configured mentions, if any.
	Content string  `json:"content,omitempty"`
	Embeds  []Embed `json:"embeds"`
	// AllowedMentions lets only the configured mentions notify: nothing
	// else in a release message may ping @everyone, a role or a user,
	// whatever a project is called.
	AllowedMentions AllowedMentions `json:"allowed_mentions"`
}

// AllowedMentions says which mentions in the message may notify.
type AllowedMentions struct {
	Parse []string `json:"parse"`
	Users []string `json:"users,omitempty"`
	Roles []string `json:"roles,omitempty"`
}

// Mention pings users (<@id>), roles (<@&id>) and, when everyone is set,
// @everyone, in the message's content, and allows exactly those.
func (m *Message) Mention(userIDs, roleIDs []string, everyone bool) {
	var at []string
	for _, id := range userIDs {
		at = append(at, "<@"+id+">")
	}
	for _, id := range roleIDs {
		at = append(at, "<@&"+id+">")
	}
	if everyone {
		at = append(at, "@everyone")
		m.AllowedMentions.Parse = append(m.AllowedMentions.Parse, "everyone")
	}
	m.Content = strings.Join(at, " ")
	m.AllowedMentions.Users = userIDs
	m.AllowedMentions.Roles = roleIDs
}

// Embed is the rich card of the message.
type Embed struct {
	Title string `json:"title"`
	// Description holds a body template's text.
	Description string  `json:"description,omitempty"`
	URL         string  `json:"url,omitempty"`
	Color       int     `json:"color"`
	Fields      []Field `json:"fields,omitempty"`
	Timestamp   string  `json:"timestamp,omitempty"`
}

// Field is one "name: value" of an embed.
type Field struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Inline bool   `json:"inline"`
}

// Colors are the embed's left bar per summary colour (Discord's own
// palette).
var Colors = map[string]int{
	channel.ColorBlue:   0x3498DB,
	channel.ColorGreen:  0x2ECC71,
	channel.ColorRed:    0xE74C3C,
	channel.ColorOrange: 0xE67E22,
	channel.ColorGrey:   0x95A5A6,
}

// Render builds one embed: the title linking to the event's page, the
// status colour, a field per summary field, and the event's time.
func Render(sum channel.Summary, lang string, at time.Time) Message {
	color, ok := Colors[sum.Color]
	if !ok {
		color = Colors[channel.ColorGrey]
	}
	e := Embed{Title: truncateRunes(Escape(sum.Title), MaxTitle), URL: sum.URL, Color: color}
	if !at.IsZero() {
		e.Timestamp = at.UTC().Format(time.RFC3339)
	}
	if sum.BodySet {
		// A body template's text is Discord markdown, its values escaped.
		e.Description = truncateRunes(sum.Body, min(MaxDescription, MaxEmbedTotal-utf8.RuneCountInString(e.Title)))
		return Message{Embeds: []Embed{e}, AllowedMentions: AllowedMentions{Parse: []string{}}}
	}
	fields := sum.Fields
	if len(fields) > MaxFields {
		fields = fields[:MaxFields]
	}
	// Each value has a limit, and the whole embed a budget, for which the
	// longest values give way.
	fields = append([]channel.Field(nil), fields...)
	for i := range fields {
		fields[i].Value = channel.FitString(fields[i].Value, func(v string) bool {
			return utf8.RuneCountInString(Escape(v)) <= MaxFieldValue
		})
	}
	fields = channel.Shorten(fields, func(fs []channel.Field) bool {
		total := utf8.RuneCountInString(e.Title)
		for _, f := range fs {
			total += utf8.RuneCountInString(fieldName(f.Label)) + utf8.RuneCountInString(Escape(f.Value))
		}
		return total <= MaxEmbedTotal
	})
	for _, f := range fields {
		e.Fields = append(e.Fields, Field{
			Name:   fieldName(f.Label),
			Value:  Escape(f.Value),
			Inline: utf8.RuneCountInString(f.Value) <= inlineUpTo,
		})
	}
	return Message{Embeds: []Embed{e}, AllowedMentions: AllowedMentions{Parse: []string{}}}
}

func fieldName(label string) string { return truncateRunes(Escape(label), MaxFieldName) }

// Escape keeps names from Herald's users literal in Discord's markdown:
// every markdown character gets a backslash, which Discord drops when
// rendering.
var Escape = strings.NewReplacer(
	`\`, `\\`, "*", `\*`, "_", `\_`, "~", `\~`, "`", "\\`", "|", `\|`,
	">", `\>`, "<", `\<`, "#", `\#`, "-", `\-`, "[", `\[`, "]", `\]`, "(", `\(`, ")", `\)`, "@", `\@`,
).Replace

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:max(0, n-1)]) + "…"
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
