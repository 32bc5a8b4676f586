// Package apperr carries the error kinds of CONTRACT §2 from the domain
// packages to the API, which turns them into status codes and JSON.
package apperr

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/herald-release/herald/internal/validate"
)

// Error is an error the client can act on.
type Error struct {
	Status  int
	Code    string
	Message string
	Details []validate.FieldError
}

func (e *Error) Error() string { return e.Message }

func newf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// NotFound: the object does not exist (or the caller may not know it does).
func NotFound(format string, args ...any) *Error {
	return newf(http.StatusNotFound, "not_found", format, args...)
}

// Conflict: the request clashes with existing data (a duplicate name, an
// active task on the environment).
func Conflict(format string, args ...any) *Error {
	return newf(http.StatusConflict, "conflict", format, args...)
}

// InvalidState: the object is not in a state that allows the action.
func InvalidState(format string, args ...any) *Error {
	return newf(http.StatusConflict, "invalid_state", format, args...)
}

// Forbidden: the caller is known but not allowed.
func Forbidden(format string, args ...any) *Error {
	return newf(http.StatusForbidden, "forbidden", format, args...)
}

// Unauthorized: no valid credentials.
func Unauthorized(format string, args ...any) *Error {
	return newf(http.StatusUnauthorized, "unauthorized", format, args...)
}

// BadRequest: the request cannot be read at all.
func BadRequest(code, format string, args ...any) *Error {
	return newf(http.StatusBadRequest, code, format, args...)
}

// Invalid turns field errors into a 422.
func Invalid(errs validate.Errors) *Error {
	msg := "the request has invalid fields"
	if len(errs) == 1 {
		msg = errs[0].Field + ": " + errs[0].Message
	}
	return &Error{Status: http.StatusUnprocessableEntity, Code: "validation_failed", Message: msg, Details: errs}
}

// Field is Invalid for a single field.
func Field(field, format string, args ...any) *Error {
	var v validate.Errors
	v.Add(field, format, args...)
	return Invalid(v)
}

// From finds the *Error in err, turning validation errors into one; it
// returns nil for anything else (an internal error).
func From(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var v validate.Errors
	if errors.As(err, &v) {
		return Invalid(v)
	}
	return nil
}
