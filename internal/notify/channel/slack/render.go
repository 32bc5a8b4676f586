package slack

import (
	"strings"
	"unicode/utf8"

	"github.com/herald-release/herald/internal/notify/channel"
)

// Block Kit limits (https://api.slack.com/reference/block-kit/blocks), in
// characters.
const (
	// MaxHeader is a header block's plain_text limit.
	MaxHeader = 150
	// MaxFieldText is the limit of each of a section's fields.
	MaxFieldText = 2000
	// MaxSectionFields is how many fields a section block may have.
	MaxSectionFields = 10
	// MaxSectionText is the limit of a section's text.
	MaxSectionText = 3000
	// maxBodySections bounds the sections a body template's text takes.
	maxBodySections = 10
	// MaxFallback bounds the notification text; Slack truncates "text" at
	// 40,000 characters, but a notification shows a line or two.
	MaxFallback = 3000
)

// Message is the body of an incoming webhook request: blocks for the
// channel, text for notifications and clients without blocks.
type Message struct {
	Text   string  `json:"text"`
	Blocks []Block `json:"blocks"`
}

// Block is a header or a section.
type Block struct {
	Type   string `json:"type"`
	Text   *Text  `json:"text,omitempty"`
	Fields []Text `json:"fields,omitempty"`
}

// Text is a plain_text or mrkdwn text object.
type Text struct {
	Type  string `json:"type"`
	Text  string `json:"text"`
	Emoji bool   `json:"emoji,omitempty"`
}

// emoji gives the header the event's colour: blocks have no colour of
// their own, and legacy attachments are on their way out.
var emoji = map[string]string{
	channel.ColorBlue:   ":large_blue_circle:",
	channel.ColorGreen:  ":large_green_circle:",
	channel.ColorRed:    ":red_circle:",
	channel.ColorOrange: ":large_orange_circle:",
	channel.ColorGrey:   ":white_circle:",
}

// Render builds the message: a header with the title, sections of
// "*label*\nvalue" fields (two columns in Slack), and a link to the
// event's page.
func Render(sum channel.Summary, lang string) Message {
	icon := emoji[sum.Color]
	if icon == "" {
		icon = emoji[channel.ColorGrey]
	}
	m := Message{Blocks: []Block{{
		Type: "header",
		Text: &Text{Type: "plain_text", Text: truncateRunes(icon+" "+sum.Title, MaxHeader), Emoji: true},
	}}}

	var section *Block
	if sum.BodySet {
		// A body template's text is mrkdwn, its values escaped; long ones
		// take several sections.
		for i, part := range splitRunes(sum.Body, MaxSectionText, maxBodySections) {
			if i == maxBodySections-1 {
				part = truncateRunes(part, MaxSectionText)
			}
			m.Blocks = append(m.Blocks, Block{Type: "section", Text: &Text{Type: "mrkdwn", Text: part}})
		}
	}
	for _, f := range sum.Fields {
		if sum.BodySet {
			break
		}
		if section == nil || len(section.Fields) == MaxSectionFields {
			m.Blocks = append(m.Blocks, Block{Type: "section"})
			section = &m.Blocks[len(m.Blocks)-1]
		}
		label := "*" + Escape(f.Label) + "*\n"
		value := channel.FitString(f.Value, func(v string) bool {
			return utf8.RuneCountInString(label+Escape(v)) <= MaxFieldText
		})
		section.Fields = append(section.Fields, Text{Type: "mrkdwn", Text: label + Escape(value)})
	}
	if sum.URL != "" {
		label := "查看详情"
		if channel.Lang(lang) == "en" {
			label = "View details"
		}
		m.Blocks = append(m.Blocks, Block{Type: "section", Text: &Text{Type: "mrkdwn", Text: "<" + linkURL(sum.URL) + "|" + label + ">"}})
	}

	lines := []string{Escape(sum.Title)}
	if sum.BodySet {
		lines = append(lines, sum.Body)
	}
	for _, f := range sum.Fields {
		if sum.BodySet {
			break
		}
		lines = append(lines, Escape(f.Label)+": "+Escape(f.Value))
	}
	m.Text = truncateRunes(strings.Join(lines, "\n"), MaxFallback)
	return m
}

// Escape makes text literal in mrkdwn: Slack reads "<…>" as links and
// mentions, so a project called "<!channel>" must not notify everyone.
var Escape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace

// linkURL keeps a URL from ending the <url|label> link early.
var linkURL = strings.NewReplacer("|", "%7C", ">", "%3E", "<", "%3C").Replace

// truncateRunes cuts s to at most n characters, ending with "…" when cut.
func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:max(0, n-1)]) + "…"
}

// Mention ends the message with the mentions, as a section of its own and
// in the notification text (which is what makes Slack notify): <@U…> for
// members, <!here> and <!channel> for everyone.
func (m *Message) Mention(userIDs []string, here, channel bool) {
	var at []string
	for _, id := range userIDs {
		at = append(at, "<@"+id+">")
	}
	if here {
		at = append(at, "<!here>")
	}
	if channel {
		at = append(at, "<!channel>")
	}
	if len(at) == 0 {
		return
	}
	line := strings.Join(at, " ")
	m.Blocks = append(m.Blocks, Block{Type: "section", Text: &Text{Type: "mrkdwn", Text: line}})
	m.Text = truncateRunes(m.Text, MaxFallback-utf8.RuneCountInString(line)-1) + "\n" + line
}

// splitRunes cuts s into at most n parts of at most size characters,
// preferring line ends; the last part holds the rest.
func splitRunes(s string, size, n int) []string {
	var out []string
	r := []rune(s)
	for len(r) > size && len(out) < n-1 {
		cut := size
		for i := size; i > size/2; i-- {
			if r[i-1] == '\n' {
				cut = i
				break
			}
		}
		out = append(out, strings.TrimRight(string(r[:cut]), "\n"))
		r = r[cut:]
	}
	return append(out, string(r))
}
