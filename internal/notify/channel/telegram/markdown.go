package telegram

import (
	"strings"
	"unicode/utf16"

	"github.com/herald-release/herald/internal/notify/channel"
)

// MaxText is sendMessage's limit: 4096 characters of text after entities
// are parsed, counted in UTF-16 code units as Telegram counts them.
const MaxText = 4096

// Escape makes text literal in MarkdownV2: outside entities, every one of
// _ * [ ] ( ) ~ ` > # + - = | { } . ! must carry a backslash, and so must
// the backslash itself (https://core.telegram.org/bots/api#markdownv2-style).
// Telegram refuses the whole message ("can't parse entities") otherwise.
var Escape = strings.NewReplacer(
	`\`, `\\`, "_", `\_`, "*", `\*`, "[", `\[`, "]", `\]`, "(", `\(`, ")", `\)`,
	"~", `\~`, "`", "\\`", ">", `\>`, "#", `\#`, "+", `\+`, "-", `\-`, "=", `\=`,
	"|", `\|`, "{", `\{`, "}", `\}`, ".", `\.`, "!", `\!`,
).Replace

// escapeLinkURL escapes the (…) part of an inline link, where only ")"
// and "\" must be escaped.
var escapeLinkURL = strings.NewReplacer(`\`, `\\`, ")", `\)`).Replace

// Render builds the MarkdownV2 text: the title in bold, a "*label:* value"
// line per field, and a link to the event's page, within MaxText.
func Render(sum channel.Summary, lang string) string {
	// The raw text is never shorter than the parsed one (markup and
	// escapes only add), so fitting the raw text is safe.
	if sum.BodySet {
		body := channel.FitString(sum.Body, func(b string) bool { return utf16Len(render(sum, lang, nil, b)) <= MaxText })
		return render(sum, lang, nil, body)
	}
	fields := channel.Shorten(sum.Fields, func(f []channel.Field) bool {
		return utf16Len(render(sum, lang, f, "")) <= MaxText
	})
	return render(sum, lang, fields, "")
}

func render(sum channel.Summary, lang string, fields []channel.Field, body string) string {
	var b strings.Builder
	b.WriteString("*" + Escape(sum.Title) + "*\n")
	if len(fields) > 0 || body != "" {
		b.WriteString("\n")
	}
	if body != "" {
		b.WriteString(Escape(body) + "\n")
	}
	for _, f := range fields {
		b.WriteString("*" + Escape(f.Label) + ":* " + Escape(f.Value) + "\n")
	}
	if sum.URL != "" {
		label := "查看详情"
		if channel.Lang(lang) == "en" {
			label = "View details"
		}
		b.WriteString("\n[" + Escape(label) + "](" + escapeLinkURL(sum.URL) + ")")
	}
	return strings.TrimRight(b.String(), "\n")
}

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}
