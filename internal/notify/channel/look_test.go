package channel_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify/channel"
)

func TestCheckTemplate(t *testing.T) {
	t.Parallel()
	good := []string{
		"{{.Title}}",
		"{{.Project.Name}} {{.Version.Name}} → {{.Environment}} ({{.Task.Type}}/{{.Task.Strategy}}) {{.StatusText}}",
		"{{range .Fields}}{{.Label}}: {{.Value}}\n{{end}}",
		"{{range $i, $h := .Deployment.Hosts}}{{if $i}}, {{end}}{{$h}}{{end}}",
		`{{join ", " .Deployment.Hosts}} {{upper .Environment}} {{lower .Lang}} {{trim " x "}} {{truncate 3 .Project.Description}}`,
		`{{if eq .Outcome "failed"}}FAILED {{.Deployment.FailedCount}}/{{.Deployment.TotalCount}}{{else}}{{.Outcome}}{{end}}`,
		"{{with .ReleasePlan}}{{.Name}} {{.Manager}} {{join \", \" .Approvers}} {{.Comment}} {{.HookEvent}} {{.ApprovalMode}}{{end}}",
		"{{.Object.Kind}} {{.Object.Name}} {{.Actor.Name}} {{.URL}} {{.Timestamp}} {{.Duration}} {{.Hosts}} {{.EventType}} {{.ObjectKind}} {{.Action}} {{.Status}} {{.Text}}",
		"{{range $.Fields}}{{.Label}}{{end}}{{printf \"%d%%\" .Deployment.CompletedCount}}",
		"",
	}
	for _, src := range good {
		if err := channel.CheckTemplate("body", src); err != nil {
			t.Errorf("%q refused: %v", src, err)
		}
	}
	bad := []struct{ src, want string }{
		{"ok\n\n{{.Project.Nmae}}", "line 3: unknown field Nmae"},
		{"{{.Nope}}", "line 1: unknown field Nope"},
		{"{{range .Fields}}{{.Name}}{{end}}", "Field has no field Name"},
		{"{{if}}", "line 1"},
		{"a\n{{.Title", "line 2"},
		{"{{nosuch .Title}}", `function "nosuch" not defined`},
		{`{{template "x"}}`, "not supported"},
		{`{{define "x"}}y{{end}}`, "not supported"},
		{"{{block \"b\" .}}x{{end}}", "not supported"},
		{"{{range 100000}}x{{end}}", "range"},
		{"{{$n := len .Text}}{{range $n}}x{{end}}", "range"},
		{"{{range len .Text}}x{{end}}", "range"},
		{"{{index .Deployment.Hosts 99}}", "line 1"},
		{strings.Repeat("x", channel.MaxTemplateBody+1), "at most"},
		{"\xff", "UTF-8"},
	}
	for _, b := range bad {
		err := channel.CheckTemplate("body", b.src)
		var te *channel.TemplateError
		if err == nil || !errors.As(err, &te) || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%.40q: %v, want an error saying %q", b.src, err, b.want)
		}
	}
	if err := channel.CheckTemplate("title", strings.Repeat("x", channel.MaxTemplateTitle+1)); err == nil {
		t.Error("a long title passed")
	}
}

// A template cannot make Herald build an unbounded text: assignments that
// double a value fail, output is bounded.
func TestTemplatesAreBounded(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString(`{{$a := printf "%s%s" .Text .Text}}`)
	for range 40 {
		b.WriteString(`{{$a = printf "%s%s" $a $a}}`)
	}
	b.WriteString("{{$a}}")
	err := channel.CheckTemplate("body", b.String())
	if err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("doubling: %v", err)
	}
	err = channel.CheckTemplate("body", "{{range .Deployment.Hosts}}{{range $.Deployment.Hosts}}{{range $.Fields}}{{$.Text}}{{$.Text}}{{end}}{{end}}{{end}}")
	if err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("nested output: %v", err)
	}
}

// Every documented field is a field: the reference cannot drift.
func TestTemplateFieldsAreDocumented(t *testing.T) {
	t.Parallel()
	for _, f := range channel.TemplateFields {
		names := strings.Fields(f.Name)
		base := names[0][:strings.LastIndex(names[0], ".")]
		for i, n := range names {
			if i > 0 && strings.Count(n, ".") == 1 {
				n = base + n
			}
			if err := channel.CheckTemplate("title", "{{"+n+"}}"); err != nil {
				t.Errorf("documented %s: %v", n, err)
			}
		}
	}
}

// Values are escaped for the channel; the template's own text is not.
func TestSummarizeEscapesValues(t *testing.T) {
	t.Parallel()
	look, err := channel.NewLook("en", channel.Template{
		Title: "<{{.Project.Name}}>",
		Body:  `<b>{{.Project.Name}}</b> {{$n := .Project.Name}}{{$n}} {{printf "%s!" .Project.Name}} {{len .Project.Name}}`,
	})
	if err != nil {
		t.Fatal(err)
	}
	ev := channel.SampleEvent(event.FullCompleted, "https://h.example", event.Actor{ID: "u", Name: "U"})
	ev.Project.Name = "a<x>"
	esc := strings.NewReplacer("<", "&lt;", ">", "&gt;").Replace
	s := look.Summarize(ev, esc)
	if s.Title != "<a<x>>" {
		t.Errorf("title %q: titles are text, escaped by each channel itself", s.Title)
	}
	if !s.BodySet || s.Body != "<b>a&lt;x&gt;</b> a&lt;x&gt; a&lt;x&gt;! 4" {
		t.Errorf("body %q", s.Body)
	}
	// A body that prints nothing keeps the default fields.
	look, _ = channel.NewLook("en", channel.Template{Body: `{{if eq .Outcome "failed"}}failed{{end}}`})
	if s := look.Summarize(ev, nil); s.BodySet || len(s.Fields) == 0 {
		t.Errorf("empty body: %+v", s)
	}
}

func TestSampleEventsRenderForEveryType(t *testing.T) {
	t.Parallel()
	look, err := channel.NewLook("zh", channel.Template{Title: "{{.Title}} {{.Outcome}}", Body: "{{.Text}}"})
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range event.Types() {
		ev := channel.SampleEvent(typ, "", event.Actor{ID: "u1", Name: "Ann"})
		title, body, err := look.Render(ev)
		if err != nil || title == "" || body == "" {
			t.Errorf("%s: %q %q %v", typ, title, body, err)
		}
		d := channel.NewTemplateData(ev, "en")
		if d.EventType != typ || d.ObjectKind == "" || d.Project.Name == "" || d.Actor.Name != "Ann" {
			t.Errorf("%s: data %+v", typ, d)
		}
	}
	outcomes := map[string]string{
		event.FullCompleted: "success", event.ReleaseFailed: "failed", event.RollbackStarted: "failed",
		event.ReleaseCancelled: "cancelled", event.PlanDenied: "failed", event.PlanSuccess: "success",
		event.CanaryStarted: "", event.ProjectCreated: "", event.PlanApprovalRequested: "",
	}
	for typ, want := range outcomes {
		if got := channel.Outcome(typ); got != want {
			t.Errorf("Outcome(%s) = %q, want %q", typ, got, want)
		}
	}
}
