package console

import (
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/herald-release/herald/internal/duration"
)

// Form is a form's values and the errors the API found in them. Input
// names are the API's JSON field paths ("executor.script",
// "channels[0].config.webhook_url"), so a 422's details land on the input
// they are about.
type Form struct {
	// Name tells which form on the page the values and errors belong to.
	Name    string
	Values  url.Values
	Message string
	Errors  []FieldError
	// Fix heads a list of field errors, in the page's language.
	Fix string
}

// For returns the form when it is the named one, else an empty form: a
// page with several forms shows values and errors only in the one sent.
func (f *Form) For(name string) *Form {
	if f == nil {
		return &Form{Name: name}
	}
	if f.Name == name {
		return f
	}
	return &Form{Name: name, Fix: f.Fix}
}

// Get returns a submitted value, or def when the form was not submitted.
func (f *Form) Get(name string, def ...any) string {
	if f.Values != nil {
		return f.Values.Get(name)
	}
	if len(def) > 0 && def[0] != nil {
		return toString(def[0])
	}
	return ""
}

// Checked tells whether a checkbox is on: as submitted, or def.
func (f *Form) Checked(name string, def bool) bool {
	if f.Values != nil {
		v := f.Values.Get(name)
		return v != "" && v != "false"
	}
	return def
}

// Selected tells whether value is among the submitted values of name.
func (f *Form) Selected(name, value string, def bool) bool {
	if f.Values != nil {
		return slices.Contains(f.Values[name], value)
	}
	return def
}

// matches tells whether an API field path is about the input name: the
// same, or inside it ("headers.X-Key" is about "headers",
// "at_mobiles[1]" about "at_mobiles").
func matches(path, name string) bool {
	return path == name || strings.HasPrefix(path, name+".") || strings.HasPrefix(path, name+"[")
}

// Err is the message of every error about the input name.
func (f *Form) Err(name string) string {
	var msgs []string
	for _, e := range f.Errors {
		if matches(e.Field, name) {
			m := e.Message
			if e.Field != name {
				m = strings.TrimPrefix(e.Field[len(name):], ".") + ": " + m
			}
			msgs = append(msgs, m)
		}
	}
	return strings.Join(msgs, "; ")
}

// ErrBut is Err without the errors about name's inner inputs listed in
// but: what a field that holds the rest (a JSON object whose main keys
// have inputs of their own) must show.
func (f *Form) ErrBut(name string, but ...string) string {
	var msgs []string
	for _, e := range f.Errors {
		if !matches(e.Field, name) || slices.ContainsFunc(but, func(b string) bool { return matches(e.Field, name+"."+b) }) {
			continue
		}
		m := e.Message
		if e.Field != name {
			m = strings.TrimPrefix(e.Field[len(name):], ".") + ": " + m
		}
		msgs = append(msgs, m)
	}
	return strings.Join(msgs, "; ")
}

// ErrExact is the message of errors about exactly name (a whole channel,
// say), not its inner fields.
func (f *Form) ErrExact(name string) string {
	var msgs []string
	for _, e := range f.Errors {
		if e.Field == name {
			msgs = append(msgs, e.Message)
		}
	}
	return strings.Join(msgs, "; ")
}

// HasErrors tells whether the form has anything to show.
func (f *Form) HasErrors() bool { return f.Message != "" || len(f.Errors) > 0 }

// failed fills the form from an API error about the input; other errors
// (not logged in, not allowed, gone, server trouble) are returned, to be
// shown as their own page.
func (f *Form) failed(err error) error {
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status == 401 || ae.Status == 403 || ae.Status == 404 || ae.Status >= 500 {
		return err
	}
	f.Message, f.Errors = ae.Message, ae.Details
	return nil
}

// fieldID is the element id of an input.
func fieldID(name string) string { return "f-" + name }

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case bool:
		if x {
			return "true"
		}
		return ""
	case []any:
		parts := make([]string, 0, len(x))
		for _, p := range x {
			parts = append(parts, toString(p))
		}
		return strings.Join(parts, ", ")
	case []string:
		return strings.Join(x, ", ")
	case duration.Duration:
		if x == 0 {
			return ""
		}
		return x.String()
	case nil:
		return ""
	}
	return ""
}

// splitList reads a list typed as "a, b" or one per line.
func splitList(s string) []string {
	out := []string{}
	for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' || r == '，' }) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parsePairs reads "KEY=value" (or "Name: value" with sep ':') lines.
func parsePairs(s string, sep string) (map[string]string, []string) {
	out := map[string]string{}
	var bad []string
	for i, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, sep)
		if !ok || strings.TrimSpace(k) == "" {
			bad = append(bad, strconv.Itoa(i+1))
			continue
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out, bad
}

// formatPairs writes a map as lines for parsePairs, sorted.
func formatPairs(m map[string]any, sep string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + sep + toString(m[k]) + "\n")
	}
	return b.String()
}

// intField reads a whole number input; ok is false when empty, and a
// non-number is reported on the form with the field's name.
func intField(f *Form, vals url.Values, name, apiName, msg string) (int64, bool) {
	s := strings.TrimSpace(vals.Get(name))
	if s == "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f.Errors = append(f.Errors, FieldError{Field: apiName, Message: msg})
		return 0, false
	}
	return n, true
}
