package teams

import (
	"strings"

	"github.com/herald-release/herald/internal/notify/channel"
)

// MaxBody keeps a message under what Teams posts: the Teams connector
// refuses messages over about 28 KB ("Request Entity too large"), counted
// after Teams converts the card, and a workflow answers 202 before it
// finds out, so the margin is ours to keep.
const MaxBody = 24 << 10

// CardVersion is the Adaptive Card version every Teams client renders.
const CardVersion = "1.4"

// Message is the body the Workflows webhook template expects.
type Message struct {
	Type        string       `json:"type"`
	Attachments []Attachment `json:"attachments"`

	// sum, lang and mentions let fit render again with shorter values.
	sum      channel.Summary
	lang     string
	mentions []string
}

// Attachment wraps the card.
type Attachment struct {
	ContentType string `json:"contentType"`
	Content     Card   `json:"content"`
}

// Card is an Adaptive Card.
type Card struct {
	Schema  string    `json:"$schema"`
	Type    string    `json:"type"`
	Version string    `json:"version"`
	MSTeams MSTeams   `json:"msteams"`
	Body    []Element `json:"body"`
	Actions []Action  `json:"actions,omitempty"`
}

// MSTeams lets the card use the channel's full width, and says whom its
// <at>…</at> texts mention.
type MSTeams struct {
	Width    string    `json:"width"`
	Entities []Mention `json:"entities,omitempty"`
}

// Mention is an Adaptive Card mention entity: Text must appear as is in
// one of the card's TextBlocks.
type Mention struct {
	Type      string    `json:"type"`
	Text      string    `json:"text"`
	Mentioned Mentioned `json:"mentioned"`
}

// Mentioned is the person a mention notifies.
type Mentioned struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Element is a TextBlock or a FactSet.
type Element struct {
	Type   string `json:"type"`
	Text   string `json:"text,omitempty"`
	Weight string `json:"weight,omitempty"`
	Size   string `json:"size,omitempty"`
	Color  string `json:"color,omitempty"`
	Wrap   bool   `json:"wrap,omitempty"`
	Facts  []Fact `json:"facts,omitempty"`
}

// Fact is one "label: value" row of a FactSet.
type Fact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

// Action is the button to the event's page.
type Action struct {
	Type  string `json:"type"`
	Title string `json:"title"`
	URL   string `json:"url"`
}

// colors maps summary colours to the TextBlock colours Teams themes.
var colors = map[string]string{
	channel.ColorBlue:   "Accent",
	channel.ColorGreen:  "Good",
	channel.ColorRed:    "Attention",
	channel.ColorOrange: "Warning",
	channel.ColorGrey:   "Default",
}

// Render builds the card: the title in the event's colour, a FactSet with
// the fields, and an "open" button to the event's page.
func Render(sum channel.Summary, lang string) Message {
	return build(sum, lang, sum.Fields, sum.Body, nil)
}

// Mention makes the card mention people by user principal name or
// Microsoft Entra object id: a TextBlock of <at>…</at> and their
// mention entities.
func (m *Message) Mention(ids []string) {
	if len(ids) == 0 {
		return
	}
	*m = build(m.sum, m.lang, m.sum.Fields, m.sum.Body, ids)
}

func build(sum channel.Summary, lang string, fields []channel.Field, body string, mentions []string) Message {
	color := colors[sum.Color]
	if color == "" {
		color = "Default"
	}
	card := Card{
		Schema:  "http://adaptivecards.io/schemas/adaptive-card.json",
		Type:    "AdaptiveCard",
		Version: CardVersion,
		MSTeams: MSTeams{Width: "Full"},
		Body: []Element{{
			Type: "TextBlock", Text: Escape(sum.Title), Weight: "Bolder", Size: "Medium", Color: color, Wrap: true,
		}},
	}
	if sum.BodySet {
		// A body template's text is the TextBlock markdown Teams knows,
		// its values escaped.
		card.Body = append(card.Body, Element{Type: "TextBlock", Text: body, Wrap: true})
	} else if len(fields) > 0 {
		facts := make([]Fact, len(fields))
		for i, f := range fields {
			facts[i] = Fact{Title: Escape(f.Label), Value: Escape(f.Value)}
		}
		card.Body = append(card.Body, Element{Type: "FactSet", Facts: facts})
	}
	if sum.URL != "" {
		label := "查看详情"
		if channel.Lang(lang) == "en" {
			label = "View details"
		}
		card.Actions = []Action{{Type: "Action.OpenUrl", Title: label, URL: sum.URL}}
	}
	if len(mentions) > 0 {
		at := make([]string, len(mentions))
		for i, id := range mentions {
			at[i] = "<at>" + id + "</at>"
			card.MSTeams.Entities = append(card.MSTeams.Entities, Mention{Type: "mention", Text: at[i], Mentioned: Mentioned{ID: id, Name: id}})
		}
		card.Body = append(card.Body, Element{Type: "TextBlock", Text: strings.Join(at, " "), Wrap: true})
	}
	m := Message{Type: "message", Attachments: []Attachment{{
		ContentType: "application/vnd.microsoft.card.adaptive",
		Content:     card,
	}}}
	m.sum, m.lang, m.mentions = sum, lang, mentions
	return m
}

// fit encodes the message within MaxBody, shortening the longest values
// first so that every field keeps its row.
func (m Message) fit() []byte {
	if m.sum.BodySet {
		return channel.Fit(m.sum.Body, MaxBody, func(body string) []byte {
			return channel.MarshalJSON(build(m.sum, m.lang, nil, body, m.mentions))
		})
	}
	fields := channel.Shorten(m.sum.Fields, func(f []channel.Field) bool {
		return len(channel.MarshalJSON(build(m.sum, m.lang, f, "", m.mentions))) <= MaxBody
	})
	return channel.MarshalJSON(build(m.sum, m.lang, fields, "", m.mentions))
}

// Escape keeps names from Herald's users literal in the card's markdown:
// a version called "[x](https://…)" must not become a link.
var Escape = strings.NewReplacer(
	`\`, `\\`, "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`, "`", "\\`", "~", `\~`,
).Replace
