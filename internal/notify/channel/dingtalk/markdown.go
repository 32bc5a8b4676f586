package dingtalk

import (
	"strings"

	"github.com/herald-release/herald/internal/notify/channel"
)

// Message is the body of a robot request.
type Message struct {
	MsgType  string   `json:"msgtype"`
	Markdown Markdown `json:"markdown"`
	At       At       `json:"at"`

	// head, fields and tail are the parts of the text; fit shortens only
	// the fields so that the title, link and mentions always remain.
	head, fields, tail string
}

// Markdown is DingTalk's markdown message; Title is what the notification
// preview shows.
type Markdown struct {
	Title string `json:"title"`
	Text  string `json:"text"`
}

// At says whom to notify. DingTalk only notifies mobiles and user ids that
// are also written as "@…" in the text.
type At struct {
	AtMobiles []string `json:"atMobiles,omitempty"`
	AtUserIDs []string `json:"atUserIds,omitempty"`
	IsAtAll   bool     `json:"isAtAll"`
}

// Render builds the markdown of the PRD: a "## title" heading, one
// "**label**: value" paragraph per field, a link to the event's page, and
// the "@mobile"/"@userid" line that makes the mentions notify.
func Render(sum channel.Summary, lang string, atMobiles, atUserIDs []string, atAll bool) Message {
	// DingTalk's markdown joins lines separated by a single "\n" on some
	// clients; a blank line between fields keeps one field per line.
	lines := make([]string, len(sum.Fields))
	for i, f := range sum.Fields {
		lines[i] = "**" + f.Label + "**: " + f.Value
	}
	var tail []string
	if sum.URL != "" {
		label := "查看详情"
		if channel.Lang(lang) == "en" {
			label = "View details"
		}
		tail = append(tail, "["+label+"]("+sum.URL+")")
	}
	var at []string
	for _, m := range atMobiles {
		at = append(at, "@"+m)
	}
	for _, id := range atUserIDs {
		at = append(at, "@"+id)
	}
	if len(at) > 0 {
		tail = append(tail, strings.Join(at, " "))
	}
	m := Message{
		MsgType:  "markdown",
		Markdown: Markdown{Title: sum.Title},
		At:       At{AtMobiles: atMobiles, AtUserIDs: atUserIDs, IsAtAll: atAll},
		head:     "## " + sum.Title,
		fields:   strings.Join(lines, "\n\n"),
		tail:     strings.Join(tail, "\n\n"),
	}
	if sum.BodySet {
		m.fields = sum.Body
	}
	m.Markdown.Text = m.text(m.fields)
	return m
}

func (m *Message) text(fields string) string {
	parts := []string{m.head}
	for _, p := range []string{fields, m.tail} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, "\n\n")
}

// fit encodes the message within MaxBody, shortening the fields when
// needed.
func (m *Message) fit() []byte {
	return channel.Fit(m.fields, MaxBody, func(fields string) []byte {
		m.Markdown.Text = m.text(fields)
		return channel.MarshalJSON(m)
	})
}
