// Package duration is a time.Duration that travels in JSON as a Go duration
// string ("30s", "10m"), as CONTRACT §2 requires.
package duration

import (
	"encoding/json"
	"fmt"
	"reflect"
	"time"
)

// Duration marshals as "1m30s" and unmarshals from such a string.
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes the Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON accepts a Go duration string; a number is refused so that
// "30" is never silently read as 30 nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return typeError(string(b))
	}
	if s == "" {
		*d = 0
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return typeError(fmt.Sprintf("%q", s))
	}
	*d = Duration(v)
	return nil
}

// typeError is a *json.UnmarshalTypeError so that encoding/json adds the
// field path to it, and the API can name the field.
func typeError(value string) error {
	return &json.UnmarshalTypeError{Value: value, Type: reflect.TypeFor[Duration]()}
}

// Describe is the message for a value that is not a duration.
const Describe = "must be a duration string such as \"30s\" or \"10m\""
