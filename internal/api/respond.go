package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strings"

	"github.com/herald-release/herald/internal/apperr"
	"github.com/herald-release/herald/internal/duration"
	"github.com/herald-release/herald/internal/validate"
)

// MaxBody is the largest request body accepted (CONTRACT §2).
const MaxBody = 1 << 20

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code      string                `json:"code"`
	Message   string                `json:"message"`
	Details   []validate.FieldError `json:"details,omitempty"`
	RequestID string                `json:"request_id,omitempty"`
}

// WriteJSON writes v with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// WriteError writes err in the §2 shape. Errors the client cannot act on
// become a 500 whose details stay in the log, found by the request id.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	rid := RequestID(r.Context())
	e := apperr.From(err)
	if e == nil {
		slog.ErrorContext(r.Context(), "request failed", "request_id", rid, "method", r.Method, "path", r.URL.Path, "error", err)
		e = &apperr.Error{Status: http.StatusInternalServerError, Code: "internal",
			Message: "internal error; the server log has the details under request id " + rid}
	}
	WriteJSON(w, e.Status, errorBody{Error: errorDetail{Code: e.Code, Message: e.Message, Details: e.Details, RequestID: rid}})
}

// Decode reads a JSON body into dst, turning every way a body can be wrong
// into a 4xx naming what is wrong. The Content-Type is not checked, so a
// plain `curl -d` works; browsers cannot abuse that, because cookie-based
// writes need the CSRF header, which a cross-site form cannot set.
func Decode(r *http.Request, dst any) error {
	dec := json.NewDecoder(r.Body)
	err := dec.Decode(dst)
	if err == nil {
		if dec.More() {
			return apperr.BadRequest("invalid_json", "the body holds more than one JSON value")
		}
		if _, err := dec.Token(); err != io.EOF {
			return apperr.BadRequest("invalid_json", "the body has data after its JSON value")
		}
		return CheckNUL(dst)
	}
	return decodeError(err)
}

// CheckNUL refuses a decoded body with a NUL character ("\u0000") in any
// string or map key: PostgreSQL cannot store one in text, so it would
// otherwise end as a 500 there, and be kept silently by SQLite.
func CheckNUL(v any) error {
	if field := nulField(reflect.ValueOf(v), ""); field != "" {
		return apperr.Field(field, "must not contain NUL characters")
	}
	return nil
}

func nulField(v reflect.Value, path string) string {
	join := func(name string) string {
		if path == "" {
			return name
		}
		return path + "." + name
	}
	here := path
	if here == "" {
		here = "body"
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			return nulField(v.Elem(), path)
		}
	case reflect.String:
		if strings.IndexByte(v.String(), 0) >= 0 {
			return here
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			sub := path
			if !f.Anonymous || name != "" {
				if name == "" {
					name = f.Name
				}
				sub = join(name)
			}
			if field := nulField(v.Field(i), sub); field != "" {
				return field
			}
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			k := iter.Key()
			if k.Kind() != reflect.String {
				continue
			}
			if strings.IndexByte(k.String(), 0) >= 0 {
				return here
			}
			if field := nulField(iter.Value(), join(k.String())); field != "" {
				return field
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return "" // raw JSON or bytes: decoded (and checked) later
		}
		for i := range v.Len() {
			if field := nulField(v.Index(i), fmt.Sprintf("%s[%d]", path, i)); field != "" {
				return field
			}
		}
	}
	return ""
}

func decodeError(err error) error {
	var maxErr *http.MaxBytesError
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &maxErr):
		return &apperr.Error{Status: http.StatusRequestEntityTooLarge, Code: "payload_too_large",
			Message: fmt.Sprintf("the body is larger than %d bytes", maxErr.Limit)}
	case errors.Is(err, io.EOF):
		return apperr.BadRequest("invalid_json", "the body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apperr.BadRequest("invalid_json", "the body ends in the middle of its JSON")
	case errors.As(err, &syntaxErr):
		return apperr.BadRequest("invalid_json", "malformed JSON at byte %d: %v", syntaxErr.Offset, syntaxErr)
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "body"
		}
		return apperr.Field(field, "%s, not %s", describeType(typeErr.Type), typeErr.Value)
	}
	var fe validate.Errors
	if errors.As(err, &fe) {
		return err
	}
	return apperr.BadRequest("invalid_json", "the body cannot be read: %v", err)
}

func describeType(t reflect.Type) string {
	if t == reflect.TypeFor[duration.Duration]() {
		return duration.Describe
	}
	switch t.Kind() {
	case reflect.String:
		return "must be a string"
	case reflect.Bool:
		return "must be true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "must be a whole number in range"
	case reflect.Float32, reflect.Float64:
		return "must be a number"
	case reflect.Slice, reflect.Array:
		return "must be an array"
	case reflect.Map, reflect.Struct:
		return "must be an object"
	}
	return "has the wrong type"
}
