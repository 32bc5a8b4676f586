// Package channel is the contract between the delivery worker and the
// per-platform packages below it (feishu, dingtalk, wechat, custom, email).
//
// A channel package knows three things about its platform: which config is
// valid, how an event looks there, and how the platform says yes, "later" or
// "never". Everything else (retries, rate limiting, history) belongs to the
// delivery worker, so that every platform gets the same guarantees.
package channel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/validate"
)

// Deps are what a sender may use; they come from the server's configuration.
type Deps struct {
	// HTTP goes through the egress policy and never follows redirects.
	HTTP *http.Client
	// Egress validates target URLs at save time. Nil allows everything.
	CheckURL func(string) error
	// PublicURL is HERALD_PUBLIC_URL, for links in messages.
	PublicURL string
	// Version is Herald's version, for the User-Agent.
	Version string
	// Now is the clock; signatures use it.
	Now func() time.Time
	// People finds recipients by role (task_creator, plan_manager) at
	// send time; nil means none can be found.
	People People
}

// Kind is one channel type. Kinds are stateless and registered once.
type Kind interface {
	// Type is the channel's "type" value in the API.
	Type() string
	// Validate checks a config; field names are relative to the config
	// ("webhook_url"), the caller adds "channels[0].config".
	Validate(cfg json.RawMessage, deps Deps) validate.Errors
	// SecretFields are the config keys that are write-only: masked in
	// responses, kept when a PUT sends "******". URL fields listed here are
	// masked as URLs (token part only).
	SecretFields() []string
	// New builds a sender for a validated config.
	New(cfg json.RawMessage, deps Deps) (Sender, error)
}

// Sender delivers events to one configured channel. One Sender serves
// many attempts at once: it must be safe for concurrent use.
type Sender interface {
	// Send delivers one event. The Attempt is filled as far as the send got,
	// with secrets masked, even when err is not nil. A non-nil err should be
	// an *Error so the worker knows whether to retry.
	Send(ctx context.Context, ev *event.Envelope) (Attempt, error)
	// RateLimits names the bucket this sender shares with others pointing at
	// the same robot, and the platform's limits for it. Empty key: no limit.
	RateLimits() (key string, limits []Limit)
}

// Previewer is implemented by senders that can show the request a Send
// of ev would make, as history would record it (secrets masked), without
// sending anything or fetching tokens.
type Previewer interface {
	Preview(ctx context.Context, ev *event.Envelope) (Request, error)
}

// RetryPolicy is implemented by senders whose config sets its own retries
// (custom: retry_count, retry_interval) instead of HERALD_RETRY_SCHEDULE.
type RetryPolicy interface {
	// Retries returns how many retries after the first attempt, and the
	// base interval between them.
	Retries() (count int, interval time.Duration)
}

// Limit is "at most Count messages per Per".
type Limit struct {
	Count int
	Per   time.Duration
}

// Attempt is what history records about one send.
type Attempt struct {
	Request    Request `json:"request"`
	StatusCode int     `json:"status_code,omitempty"`
	// Response is the first MaxResponse bytes of the body.
	Response string `json:"response,omitempty"`
}

// MaxResponse is how much of a response body history keeps.
const MaxResponse = 16 << 10

// Request is the request as sent, with secrets masked.
type Request struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    string            `json:"body,omitempty"`
}

// Error classifies a failed send.
type Error struct {
	// Err says what failed and what to do; it never contains a secret.
	Err error
	// Retry: the platform may accept the same message later.
	Retry bool
	// RetryAfter is the wait the platform asked for (Retry-After header,
	// retry_after field); zero means use the schedule.
	RetryAfter time.Duration
	// Disable: the endpoint is gone for good (HTTP 410); the worker disables
	// the channel and says so in history.
	Disable bool
	// Code is the platform's own error code, when it gave one.
	Code string
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Permanent wraps a failure that retrying cannot fix.
func Permanent(format string, args ...any) *Error {
	return &Error{Err: fmt.Errorf(format, args...)}
}

// Temporary wraps a failure worth retrying after wait (zero: the schedule).
func Temporary(wait time.Duration, format string, args ...any) *Error {
	return &Error{Err: fmt.Errorf(format, args...), Retry: true, RetryAfter: wait}
}

// Classify turns any error into an *Error; unknown errors (network
// failures, timeouts) are retryable.
func Classify(err error) *Error {
	if err == nil {
		return nil
	}
	var ce *Error
	if errors.As(err, &ce) {
		return ce
	}
	return &Error{Err: err, Retry: true}
}

// Masked is what responses show in place of a secret.
const Masked = "******"
