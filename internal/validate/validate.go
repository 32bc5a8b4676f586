// Package validate collects field-level validation errors so that the API can
// answer 422 naming every field that is wrong, not just the first.
package validate

import (
	"fmt"
	"regexp"
	"strings"
)

// FieldError names one field and what is wrong with it.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Errors is a list of field errors; it is an error when not empty.
type Errors []FieldError

func (e Errors) Error() string {
	parts := make([]string, len(e))
	for i, f := range e {
		parts[i] = f.Field + ": " + f.Message
	}
	return "validation failed: " + strings.Join(parts, "; ")
}

// Add records a problem with field.
func (e *Errors) Add(field, format string, args ...any) {
	*e = append(*e, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// Merge appends others' errors with their fields placed under prefix
// ("channels[0].config" + "webhook_url" → "channels[0].config.webhook_url").
func (e *Errors) Merge(prefix string, others Errors) {
	for _, f := range others {
		field := f.Field
		switch {
		case prefix == "":
		case field == "":
			field = prefix
		case strings.HasPrefix(field, "["):
			field = prefix + field
		default:
			field = prefix + "." + field
		}
		*e = append(*e, FieldError{Field: field, Message: f.Message})
	}
}

// Err returns nil when there are no errors, so callers can `return v.Err()`.
func (e Errors) Err() error {
	if len(e) == 0 {
		return nil
	}
	return e
}

var slugRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// IsSlug reports whether s is a lowercase DNS-label-like identifier.
func IsSlug(s string) bool { return slugRE.MatchString(s) }

// Slugify turns a display name into a slug: lowercase ASCII letters and
// digits joined by single dashes; empty when nothing usable remains.
func Slugify(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case b.Len() > 0 && !dash:
			b.WriteByte('-')
			dash = true
		}
	}
	s := strings.TrimRight(b.String(), "-")
	if len(s) > 63 {
		s = strings.TrimRight(s[:63], "-")
	}
	return s
}
