package feishu

import (
	"strings"

	"github.com/herald-release/herald/internal/notify/channel"
)

// Message is the body of a robot request: an interactive card, signed when
// the robot has a secret.
type Message struct {
	Timestamp string `json:"timestamp,omitempty"`
	Sign      string `json:"sign,omitempty"`
	MsgType   string `json:"msg_type"`
	Card      Card   `json:"card"`

	// fields and mentions are the parts of the lark_md text; fit shortens
	// only the fields so that mentions always reach people.
	fields, mentions string
}

// Card is an interactive message card.
type Card struct {
	Config   CardConfig `json:"config"`
	Header   Header     `json:"header"`
	Elements []Element  `json:"elements"`
}

// CardConfig lets the card use the chat's full width.
type CardConfig struct {
	WideScreenMode bool `json:"wide_screen_mode"`
}

// Header is the card's coloured title bar.
type Header struct {
	Title    Text   `json:"title"`
	Template string `json:"template"`
}

// Element is a div with text, or an action row with buttons.
type Element struct {
	Tag     string   `json:"tag"`
	Text    *Text    `json:"text,omitempty"`
	Actions []Action `json:"actions,omitempty"`
}

// Text is plain_text or lark_md.
type Text struct {
	Tag     string `json:"tag"`
	Content string `json:"content"`
}

// Action is a button linking to the event's page.
type Action struct {
	Tag  string `json:"tag"`
	Text Text   `json:"text"`
	Type string `json:"type"`
	URL  string `json:"url"`
}

// templates maps summary colours to Feishu's header templates; they share
// names except for grey.
var templates = map[string]string{
	channel.ColorBlue:   "blue",
	channel.ColorGreen:  "green",
	channel.ColorRed:    "red",
	channel.ColorOrange: "orange",
	channel.ColorGrey:   "grey",
}

// Render builds the card of the PRD: a header with the title in the
// event's colour, a lark_md div with one "**label**: value" line per field
// followed by the mentions, and a button to the event's page.
func Render(sum channel.Summary, lang string, atUserIDs []string, atAll bool) Message {
	lines := make([]string, len(sum.Fields))
	for i, f := range sum.Fields {
		lines[i] = "**" + Escape(f.Label) + "**: " + Escape(f.Value)
	}
	fields := strings.Join(lines, "\n")
	if sum.BodySet {
		// A body template's text is lark_md, its values escaped.
		fields = sum.Body
	}
	var at []string
	for _, id := range atUserIDs {
		at = append(at, `<at user_id="`+id+`"></at>`)
	}
	if atAll {
		at = append(at, "<at id=all></at>")
	}
	template := templates[sum.Color]
	if template == "" {
		template = "grey"
	}
	m := Message{
		MsgType: "interactive",
		Card: Card{
			Config: CardConfig{WideScreenMode: true},
			Header: Header{Title: Text{Tag: "plain_text", Content: sum.Title}, Template: template},
			Elements: []Element{
				{Tag: "div", Text: &Text{Tag: "lark_md"}},
			},
		},
		fields:   fields,
		mentions: strings.Join(at, " "),
	}
	m.Card.Elements[0].Text.Content = joinText(m.fields, m.mentions)
	if sum.URL != "" {
		label := "查看详情"
		if channel.Lang(lang) == "en" {
			label = "View details"
		}
		m.Card.Elements = append(m.Card.Elements, Element{Tag: "action", Actions: []Action{{
			Tag: "button", Text: Text{Tag: "plain_text", Content: label}, Type: "primary", URL: sum.URL,
		}}})
	}
	return m
}

// fit encodes the message within MaxBody, shortening the field lines
// (never the mentions) when needed.
func (m *Message) fit() []byte {
	return channel.Fit(m.fields, MaxBody, func(fields string) []byte {
		m.Card.Elements[0].Text = &Text{Tag: "lark_md", Content: joinText(fields, m.mentions)}
		return channel.MarshalJSON(m)
	})
}

func joinText(fields, mentions string) string {
	if mentions == "" {
		return fields
	}
	if fields == "" {
		return mentions
	}
	return fields + "\n" + mentions
}

// Escape keeps names from Herald's users from being read as lark_md tags:
// a project called `<at id=all></at>` must not notify everyone.
var Escape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace
