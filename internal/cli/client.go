package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/herald-release/herald/internal/buildinfo"
)

// Client calls Herald's API with a bearer token.
type Client struct {
	base  *url.URL
	token string
	// HTTP sends the requests; each request has its own timeout.
	HTTP *http.Client
	// RequestTimeout bounds one request.
	RequestTimeout time.Duration
}

// MaxResponse bounds a response body read into memory.
const MaxResponse = 64 << 20

// NewClient makes a client of the server at base (its scheme, host and
// any path prefix; a trailing /api/v1 is dropped).
func NewClient(base, token string) (*Client, error) {
	base = strings.TrimSpace(base)
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("HERALD_URL (or --url) %q is not an http:// or https:// URL such as https://herald.example.com", base)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, usagef("HERALD_URL (or --url) %q must not have a query or fragment", u.Redacted())
	}
	u.Path = strings.TrimSuffix(strings.TrimRight(u.Path, "/"), "/api/v1")
	u.RawPath = ""
	return &Client{base: u, token: token, HTTP: http.DefaultClient, RequestTimeout: time.Minute}, nil
}

// APIError is a refusal in the shape of CONTRACT §2, or an HTTP error
// without it.
type APIError struct {
	Status    int
	Code      string
	Message   string
	Details   []FieldError
	RequestID string
}

// FieldError is one detail of a validation error.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e *APIError) Error() string {
	if e.Code != "" {
		return e.Code + ": " + e.Message
	}
	return e.Message
}

// Describe renders the error for people: the code and message, the HTTP
// status, every field in error and the request id to look up in the log.
func (e *APIError) Describe() string {
	var b strings.Builder
	b.WriteString(e.Error())
	fmt.Fprintf(&b, " (HTTP %d", e.Status)
	if e.RequestID != "" {
		fmt.Fprintf(&b, ", request id %s", e.RequestID)
	}
	b.WriteString(")")
	for _, d := range e.Details {
		if len(e.Details) == 1 && strings.HasPrefix(e.Message, d.Field+": ") {
			break
		}
		fmt.Fprintf(&b, "\n  %s: %s", d.Field, d.Message)
	}
	return b.String()
}

// transportError is a request that got no HTTP answer.
type transportError struct {
	method, path string
	err          error
}

func (e *transportError) Error() string {
	return fmt.Sprintf("%s %s: %v", e.method, e.path, e.err)
}

func (e *transportError) Unwrap() error { return e.err }

// transient tells whether a failed call may succeed if tried again: no
// answer, a 5xx, or 429.
func transient(err error) bool {
	var te *transportError
	if errors.As(err, &te) {
		return !errors.Is(err, context.Canceled)
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status >= 500 || ae.Status == http.StatusTooManyRequests
	}
	return false
}

// Do calls method path (under the base URL) with query and body (nil, or
// a value sent as JSON) and returns the response body of a 2xx answer.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, body any) ([]byte, error) {
	var (
		r   io.Reader
		err error
	)
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(b)
	}
	// path has its segments escaped (seg): keep them as they are.
	u := *c.base
	u.RawPath = c.base.EscapedPath() + path
	if u.Path, err = url.PathUnescape(u.RawPath); err != nil {
		return nil, err
	}
	if len(query) > 0 {
		u.RawQuery = query.Encode()
	}
	if c.RequestTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.RequestTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "herald-cli/"+buildinfo.Version)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		// url.Error repeats the URL; the method and path say enough.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, &transportError{method: method, path: u.Redacted(), err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse))
	if err != nil {
		return nil, &transportError{method: method, path: u.Redacted(), err: fmt.Errorf("reading the answer: %w", err)}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return raw, nil
	}
	return nil, decodeAPIError(resp, raw)
}

func decodeAPIError(resp *http.Response, raw []byte) *APIError {
	var body struct {
		Error *struct {
			Code      string       `json:"code"`
			Message   string       `json:"message"`
			Details   []FieldError `json:"details"`
			RequestID string       `json:"request_id"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &body) == nil && body.Error != nil && body.Error.Message != "" {
		e := body.Error
		return &APIError{Status: resp.StatusCode, Code: e.Code, Message: e.Message, Details: e.Details, RequestID: e.RequestID}
	}
	// Not Herald's shape: a proxy, or not Herald at all.
	text := strings.Join(strings.Fields(string(raw)), " ")
	if len(text) > 200 {
		text = text[:200] + "…"
	}
	msg := resp.Status
	if text != "" {
		msg += ": " + text
	}
	if resp.StatusCode == http.StatusNotFound {
		msg += " (is HERALD_URL the address of Herald?)"
	}
	return &APIError{Status: resp.StatusCode, Message: msg}
}

// JSON is Do that decodes the answer into out (when not nil) and returns
// the raw answer too.
func (c *Client) JSON(ctx context.Context, method, path string, query url.Values, body, out any) ([]byte, error) {
	raw, err := c.Do(ctx, method, path, query, body)
	if err != nil {
		return nil, err
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, &transportError{method: method, path: path, err: fmt.Errorf("the answer is not the JSON expected: %w", err)}
		}
	}
	return raw, nil
}

// seg escapes one path segment.
func seg(s string) string { return url.PathEscape(s) }
