package email

import (
	"bytes"
	"html/template"
	"strings"

	"github.com/herald-release/herald/internal/notify/channel"
)

// colors maps the Summary's semantic colours to ones that read well on
// white in every mail client.
var colors = map[string]string{
	channel.ColorBlue:   "#3370ff",
	channel.ColorGreen:  "#2ea043",
	channel.ColorRed:    "#d93026",
	channel.ColorOrange: "#e8850c",
	channel.ColorGrey:   "#646a73",
}

type words struct{ button, footer string }

var lang = map[string]words{
	"zh": {button: "查看详情", footer: "此邮件由 Herald 自动发送，请勿回复。"},
	"en": {button: "View in Herald", footer: "Sent automatically by Herald; replies are not read."},
}

func wordsFor(l string) words { return lang[channel.Lang(l)] }

// The layout is tables and inline styles only: that is what Outlook,
// Gmail and the rest render alike. html/template escapes every value, and
// refuses link schemes other than http(s) and mailto.
var page = template.Must(template.New("email").Parse(`<!DOCTYPE html>
<html lang="{{.Lang}}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>{{.Title}}</title></head>
<body style="margin:0;padding:24px 12px;background:#f5f6f7;font-family:-apple-system,'Segoe UI',Helvetica,Arial,'PingFang SC','Microsoft YaHei',sans-serif;color:#1f2329">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="max-width:600px;margin:0 auto;background:#ffffff;border-radius:8px;border-top:4px solid {{.Color}}">
<tr><td style="padding:20px 24px 4px">
<h1 style="margin:0;font-size:18px;line-height:26px;font-weight:600">{{.Title}}</h1>
{{- if .Status}}
<p style="margin:8px 0 0"><span style="display:inline-block;padding:2px 10px;border-radius:10px;background:{{.Color}};color:#ffffff;font-size:12px;line-height:18px">{{.Status}}</span></p>
{{- end}}
</td></tr>
{{- if .BodySet}}
<tr><td style="padding:12px 24px;font-size:14px;line-height:20px;white-space:pre-wrap;word-break:break-word">{{.Body}}</td></tr>
{{- else}}
<tr><td style="padding:12px 24px">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="border-collapse:collapse;font-size:14px;line-height:20px">
{{- range .Fields}}
<tr><th align="left" valign="top" style="padding:7px 16px 7px 0;border-bottom:1px solid #eff0f1;color:#646a73;font-weight:normal;white-space:nowrap;width:1%">{{.Label}}</th><td style="padding:7px 0;border-bottom:1px solid #eff0f1;word-break:break-word">{{.Value}}</td></tr>
{{- end}}
</table>
</td></tr>
{{- end}}
{{- if .URL}}
<tr><td style="padding:8px 24px 20px"><a href="{{.URL}}" style="display:inline-block;padding:9px 20px;border-radius:4px;background:{{.Color}};color:#ffffff;font-size:14px;text-decoration:none">{{.Button}}</a></td></tr>
{{- end}}
<tr><td style="padding:12px 24px 16px;border-top:1px solid #eff0f1;color:#8f959e;font-size:12px">{{.Footer}}</td></tr>
</table>
</body></html>
`))

type pageData struct {
	channel.Summary
	Lang   string
	Color  template.CSS // from the fixed table above, never from input
	Button string
	Footer string
}

func renderHTML(sum channel.Summary, l string) string {
	color, ok := colors[sum.Color]
	if !ok {
		color = colors[channel.ColorGrey]
	}
	w := wordsFor(l)
	var b bytes.Buffer
	if err := page.Execute(&b, pageData{
		Summary: sum, Lang: channel.Lang(l), Color: template.CSS(color),
		Button: w.button, Footer: w.footer,
	}); err != nil {
		// The template and its data are ours; only a bug gets here, and a
		// plain-text mail still says everything.
		return "<pre>" + template.HTMLEscapeString(renderText(sum, l)) + "</pre>"
	}
	return b.String()
}

// renderText is the text part: what text-only clients, previews and
// history show.
func renderText(sum channel.Summary, l string) string {
	var b strings.Builder
	b.WriteString(sum.Title)
	b.WriteString("\n\n")
	if sum.BodySet {
		b.WriteString(sum.Body)
		b.WriteString("\n")
	}
	for _, f := range sum.Fields {
		if sum.BodySet {
			break
		}
		b.WriteString(f.Label)
		b.WriteString(": ")
		b.WriteString(f.Value)
		b.WriteString("\n")
	}
	w := wordsFor(l)
	if sum.URL != "" {
		b.WriteString("\n")
		b.WriteString(w.button)
		b.WriteString(": ")
		b.WriteString(sum.URL)
		b.WriteString("\n")
	}
	b.WriteString("\n-- \n")
	b.WriteString(w.footer)
	b.WriteString("\n")
	return b.String()
}
