package channel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/herald-release/herald/internal/secret"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/herald-release/herald/internal/egress"
	"github.com/herald-release/herald/internal/validate"
)

// HTTPRequest is one call to a platform, with what history may show of it.
type HTTPRequest struct {
	// Channel names the platform at the start of every error ("dingtalk").
	Channel string
	// Method defaults to POST.
	Method string
	// URL is the URL as sent, credentials included.
	URL string
	// LogURL is the URL as recorded; empty means MaskURL(URL).
	LogURL string
	// Headers are sent as given; the record masks credential headers.
	Headers map[string]string
	Body    []byte
	// LogBody, when set, is recorded instead of Body (a body that carries a
	// signature).
	LogBody []byte
	// Secrets are cut out of everything recorded or returned, whichever
	// way they got there (a platform echoing a token in its error).
	Secrets []string
}

// DefaultTimeout bounds a request whose context has no deadline: a platform
// that never answers must not hold a delivery worker forever.
const DefaultTimeout = 15 * time.Second

// drainLimit bounds how much of an oversized answer is read and thrown away
// so the connection can be reused; past it, closing is cheaper.
const drainLimit = 256 << 10

// maxRetryAfter caps what a server may ask for; beyond it the schedule is
// a better judge than a misconfigured proxy.
const maxRetryAfter = 24 * time.Hour

// Do sends req and records it. It returns the Attempt (masked), the
// response body (at most MaxResponse bytes) and, for anything but a 2xx, an
// *Error classified the way DESIGN.md says HTTP callbacks are: transport
// failures, 408, 429 and 5xx are retryable (honouring Retry-After), 410
// disables the channel, 3xx and other 4xx are permanent. A 2xx returns a
// nil error: IM platforms answer 200 to everything, so judging the body is
// the caller's job.
func Do(ctx context.Context, client *http.Client, req HTTPRequest) (Attempt, []byte, error) {
	method := req.Method
	if method == "" {
		method = http.MethodPost
	}
	att := Attempt{Request: Record(req)}
	fail := func(e *Error) (Attempt, []byte, error) {
		redactErr(e, req.Secrets)
		return att, nil, e
	}

	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	var body io.Reader
	if req.Body != nil {
		body = bytes.NewReader(req.Body)
	}
	hr, err := http.NewRequestWithContext(ctx, method, req.URL, body)
	if err != nil {
		// The URL is the only thing that can be wrong here; never echo it.
		return fail(Permanent("%s: cannot build the request to %s: check the URL", req.Channel, att.Request.URL))
	}
	for k, v := range req.Headers {
		hr.Header.Set(k, v)
	}
	if req.Body != nil && hr.Header.Get("Content-Type") == "" {
		hr.Header.Set("Content-Type", "application/json")
	}

	resp, err := ClientOrDefault(client).Do(hr)
	if err != nil {
		return fail(transportError(req.Channel, method, att.Request.URL, err))
	}
	defer resp.Body.Close()
	respBody, readErr := io.ReadAll(io.LimitReader(resp.Body, MaxResponse))
	_, _ = io.CopyN(io.Discard, resp.Body, drainLimit)

	att.StatusCode = resp.StatusCode
	att.Response = Redact(string(respBody), req.Secrets)
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if readErr != nil {
			// The answer was cut off (timeout, reset): IM platforms judge
			// by the body, and a 2xx without all of it is no verdict.
			return fail(transportError(req.Channel, method, att.Request.URL, readErr))
		}
		return att, respBody, nil
	}
	e := statusError(req.Channel, att.Request.URL, resp, att.Response)
	redactErr(e, req.Secrets)
	return att, respBody, e
}

// Record is req as history records it: URL, headers and body with
// secrets masked. Previews show it without sending.
func Record(req HTTPRequest) Request {
	method := req.Method
	if method == "" {
		method = http.MethodPost
	}
	logURL := req.LogURL
	if logURL == "" {
		logURL = MaskURL(req.URL)
	}
	logBody := req.LogBody
	if logBody == nil {
		logBody = req.Body
	}
	return Request{
		Method:  method,
		URL:     Redact(logURL, req.Secrets),
		Headers: MaskHeaders(req.Headers, req.Secrets),
		Body:    Redact(string(logBody), req.Secrets),
	}
}

// redactErr cuts secrets out of an error's text; an error that holds none
// keeps its chain, so callers can still ask errors.Is(err, egress.ErrRefused).
func redactErr(e *Error, secrets []string) {
	if msg := e.Err.Error(); Redact(msg, secrets) != msg {
		e.Err = errors.New(Redact(msg, secrets))
	}
}

// transportError classifies a failure to get any answer. The *url.Error
// wrapper is dropped because it quotes the full, unmasked URL.
func transportError(channel, method, logURL string, err error) *Error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if egress.IsRefused(err) {
		return Permanent("%s: %s %s: %w", channel, method, logURL, err)
	}
	// An untrusted certificate stays untrusted on every retry: say so now.
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		return Permanent("%s: %s %s: the server's TLS certificate is not trusted (%v): give the endpoint a certificate from a public CA for its host name", channel, method, logURL, certErr.Err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return Temporary(0, "%s: %s %s: no answer in time (timeout); will retry", channel, method, logURL)
	}
	return Temporary(0, "%s: %s %s: %v; will retry", channel, method, logURL, err)
}

func statusError(channel, logURL string, resp *http.Response, body string) *Error {
	code := resp.StatusCode
	snippet := oneLine(Truncate(body, 200))
	if snippet != "" {
		snippet = ": " + snippet
	}
	switch {
	case code >= 300 && code < 400:
		// Following could lead anywhere, including past the egress check
		// of the saved URL; the user should save the final address.
		loc := ""
		if l := resp.Header.Get("Location"); l != "" {
			loc = " to " + MaskURL(l)
		}
		return Permanent("%s: HTTP %d from %s: redirect%s not followed; save the final URL instead", channel, code, logURL, loc)
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		wait := ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		return Temporary(wait, "%s: HTTP %d from %s%s; will retry", channel, code, logURL, snippet)
	case code == http.StatusGone:
		return &Error{
			Err:     fmt.Errorf("%s: HTTP 410 Gone from %s: the endpoint no longer exists; the channel is disabled, fix its URL and enable it again", channel, logURL),
			Disable: true,
		}
	default:
		return Permanent("%s: HTTP %d from %s%s", channel, code, logURL, snippet)
	}
}

// ParseRetryAfter reads a Retry-After header, delay-seconds or HTTP-date;
// zero when absent, malformed or in the past.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	if d < 0 {
		return 0
	}
	return min(d, maxRetryAfter)
}

var (
	defaultClientOnce sync.Once
	defaultClient     *http.Client
)

// ClientOrDefault returns c, or, when it is nil, a client under the
// default egress policy: a missing dependency must never mean "no SSRF
// protection".
func ClientOrDefault(c *http.Client) *http.Client {
	if c != nil {
		return c
	}
	defaultClientOnce.Do(func() {
		p, _ := egress.New(nil)
		defaultClient = p.Client()
	})
	return defaultClient
}

// UserAgent is the User-Agent of every request Herald makes.
func UserAgent(deps Deps) string {
	if deps.Version == "" {
		return "Herald"
	}
	return "Herald/" + deps.Version
}

// NowFunc returns the dependency clock, or the real one.
func NowFunc(deps Deps) func() time.Time {
	if deps.Now != nil {
		return deps.Now
	}
	return time.Now
}

// MaskURL hides the credential part of a robot URL; see secret.MaskURL.
func MaskURL(raw string) string { return secret.MaskURL(raw) }

// MaskHeaders copies headers for the record, masking credentials: any
// header whose name speaks of a token, secret, key, password, cookie or
// authorization, and any value containing one of secrets.
func MaskHeaders(h map[string]string, secrets []string) map[string]string {
	if len(h) == 0 {
		return nil
	}
	out := make(map[string]string, len(h))
	for k, v := range h {
		lk := strings.ToLower(k)
		switch {
		case strings.Contains(lk, "token"), strings.Contains(lk, "secret"),
			strings.Contains(lk, "key"), strings.Contains(lk, "password"),
			strings.Contains(lk, "authorization"), strings.Contains(lk, "cookie"):
			out[k] = Masked
		default:
			out[k] = Redact(v, secrets)
		}
	}
	return out
}

// minRedact is the shortest secret Redact looks for: real platform
// credentials are far longer (DingTalk "SEC…" 67 characters, Feishu 22+,
// WeCom keys and secrets 36+), while cutting a short word everywhere would
// mangle the very messages that tell users what to fix.
const minRedact = 8

// Redact replaces every occurrence of each secret, raw or URL-encoded, with
// Masked.
func Redact(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) < minRedact {
			continue
		}
		s = strings.ReplaceAll(s, sec, Masked)
		if q := url.QueryEscape(sec); q != sec {
			s = strings.ReplaceAll(s, q, Masked)
		}
	}
	return s
}

// RateKey names a rate-limit bucket shared by every sender that points at
// the same robot, without the credential itself ending up in a key that is
// logged and stored.
func RateKey(kind string, parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return kind + ":" + hex.EncodeToString(sum[:16])
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// ConfigReader decodes a channel config field by field, so that validation
// names every wrong field ("at_user_ids[1]") instead of stopping at the
// first JSON error, and refuses fields nobody reads.
type ConfigReader struct {
	fields    map[string]json.RawMessage
	read      map[string]bool
	malformed bool
	// Errs collects the problems found so far; field names are relative to
	// the config.
	Errs validate.Errors
}

// ReadConfig starts reading a config, which must be a JSON object.
func ReadConfig(cfg json.RawMessage) *ConfigReader {
	r := &ConfigReader{read: map[string]bool{}}
	if len(bytes.TrimSpace(cfg)) == 0 {
		r.fields = map[string]json.RawMessage{}
		return r
	}
	if err := json.Unmarshal(cfg, &r.fields); err != nil || r.fields == nil {
		r.malformed = true
		r.fields = map[string]json.RawMessage{}
	}
	return r
}

// raw returns a field's value; null counts as absent.
func (r *ConfigReader) raw(name string) (json.RawMessage, bool) {
	r.read[name] = true
	v, ok := r.fields[name]
	if !ok || string(bytes.TrimSpace(v)) == "null" {
		return nil, false
	}
	return v, true
}

// Has reports whether a field is set: present, not null and not "" (forms
// send empty strings for fields left blank).
func (r *ConfigReader) Has(name string) bool {
	v, ok := r.fields[name]
	s := string(bytes.TrimSpace(v))
	return ok && s != "null" && s != `""`
}

// Known marks fields as belonging to the config without reading them, for
// fields already reported otherwise ("not both").
func (r *ConfigReader) Known(names ...string) {
	for _, n := range names {
		r.read[n] = true
	}
}

// String reads a string field, trimmed; "" when absent.
func (r *ConfigReader) String(name string) string {
	v, ok := r.raw(name)
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		r.Errs.Add(name, "must be a string")
		return ""
	}
	return strings.TrimSpace(s)
}

// Bool reads a boolean field; false when absent.
func (r *ConfigReader) Bool(name string) bool {
	v, ok := r.raw(name)
	if !ok {
		return false
	}
	var b bool
	if json.Unmarshal(v, &b) != nil {
		r.Errs.Add(name, "must be true or false")
	}
	return b
}

// Int reads an integer field; ok is false when absent or wrong.
func (r *ConfigReader) Int(name string) (n int64, ok bool) {
	v, present := r.raw(name)
	if !present {
		return 0, false
	}
	// json.Number would also accept the string "3"; a number is wanted.
	if c := v[0]; c != '-' && (c < '0' || c > '9') {
		r.Errs.Add(name, "must be an integer")
		return 0, false
	}
	n, err := json.Number(v).Int64()
	if err != nil {
		r.Errs.Add(name, "must be an integer")
		return 0, false
	}
	return n, true
}

// Strings reads a list of non-empty strings of at most max entries.
func (r *ConfigReader) Strings(name string, max int) []string {
	v, ok := r.raw(name)
	if !ok {
		return nil
	}
	var items []json.RawMessage
	if json.Unmarshal(v, &items) != nil {
		r.Errs.Add(name, "must be a list of strings")
		return nil
	}
	if len(items) > max {
		r.Errs.Add(name, "at most %d entries", max)
		return nil
	}
	out := make([]string, 0, len(items))
	for i, it := range items {
		var s string
		if json.Unmarshal(it, &s) != nil || strings.TrimSpace(s) == "" {
			r.Errs.Add(fmt.Sprintf("%s[%d]", name, i), "must be a non-empty string")
			continue
		}
		out = append(out, strings.TrimSpace(s))
	}
	return out
}

// URL reads a target URL: http(s) with a host, allowed by the egress
// policy when deps has one. Messages never repeat the URL: it may hold a
// token.
func (r *ConfigReader) URL(name string, required bool, deps Deps) *url.URL {
	s := r.String(name)
	if s == "" {
		if required && !hasError(r.Errs, name) {
			r.Errs.Add(name, "is required")
		}
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		r.Errs.Add(name, "must be an http:// or https:// URL with a host")
		return nil
	}
	if deps.CheckURL != nil {
		if err := deps.CheckURL(s); err != nil {
			r.Errs.Add(name, "%s", Redact(err.Error(), []string{s}))
			return nil
		}
	}
	return u
}

// APIBase reads the optional "api_base_url" field, which points an API
// channel elsewhere than def (Lark instead of Feishu, a local Bot API
// server, a test fake): the URL without trailing slashes, or def when the
// field is absent or wrong.
func (r *ConfigReader) APIBase(def string, deps Deps) string {
	if !r.Has("api_base_url") {
		r.Known("api_base_url")
		return def
	}
	if u := r.URL("api_base_url", false, deps); u != nil {
		return strings.TrimRight(u.String(), "/")
	}
	return def
}

// WebhookURL reads a required webhook URL that is itself the credential:
// https only, with a path that path matches; what names the expected form
// in the error ("a Slack incoming webhook, https://hooks.slack.com/…").
// It returns the URL and path's submatches, or nils after adding an error.
func (r *ConfigReader) WebhookURL(name, platform, what string, path *regexp.Regexp, deps Deps) (*url.URL, []string) {
	u := r.URL(name, true, deps)
	if u == nil {
		return nil, nil
	}
	m := path.FindStringSubmatch(u.Path)
	switch {
	case u.Scheme != "https":
		r.Errs.Add(name, "must be https: %s serves webhooks over https only, and the URL itself is the credential", platform)
	case m == nil:
		r.Errs.Add(name, "must be %s", what)
	default:
		return u, m
	}
	return nil, nil
}

// Lang reads the optional "lang" field ("zh" or "en") every IM channel
// accepts for its message language.
func (r *ConfigReader) Lang() string {
	l := r.String("lang")
	switch l {
	case "", "zh", "en":
		return Lang(l)
	}
	r.Errs.Add("lang", `must be "zh" or "en"`)
	return "zh"
}

// Done adds an error for every field that was not read and returns all
// errors.
func (r *ConfigReader) Done() validate.Errors {
	if r.malformed {
		// Every "is required" that follows from it would only be noise.
		return validate.Errors{{Field: "", Message: "the config must be a JSON object"}}
	}
	var unknown []string
	for k := range r.fields {
		if !r.read[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		r.Errs.Add(k, "unknown field")
	}
	return r.Errs
}

func hasError(errs validate.Errors, field string) bool {
	for _, e := range errs {
		if e.Field == field {
			return true
		}
	}
	return false
}

// PlatformError reports a refusal in a platform's own words, then what to
// do: "dingtalk: sign not match (310000): check sign_secret".
func PlatformError(channel string, code int, msg, hint string, retry bool, wait time.Duration) *Error {
	text := fmt.Sprintf("%s: %s (%d)", channel, oneLine(Truncate(msg, 200)), code)
	if hint != "" {
		text += ": " + hint
	}
	return &Error{Err: errors.New(text), Retry: retry, RetryAfter: wait, Code: strconv.Itoa(code)}
}

// MarshalJSON encodes v without HTML escaping: platforms render "<" in
// markdown, and "\u003c" would also make size limits harder to predict.
func MarshalJSON(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only our own message structs are encoded here; they always encode.
		panic(fmt.Sprintf("channel: encoding a message: %v", err))
	}
	return bytes.TrimRight(b.Bytes(), "\n")
}
