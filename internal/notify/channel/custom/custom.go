// Package custom POSTs (or PUTs) the standard message of CONTRACT §6 to a
// URL of the user's choosing, signed the Standard Webhooks way when a
// secret is set (CONTRACT §8).
//
// Unlike the IM channels, the receiver here is the user's own service, so
// its retries are its own too: retry_count and retry_interval come from
// the config (channel.RetryPolicy) rather than HERALD_RETRY_SCHEDULE.
package custom

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify/channel"
	"github.com/herald-release/herald/internal/validate"
)

// Kind is the "custom" channel type.
var Kind = channel.NewKind("custom", []string{"secret", "token"}, parse,
	func(c config, deps channel.Deps) channel.Sender { return &sender{cfg: c, deps: deps} })

// Limits of the config, and its defaults.
const (
	DefaultTimeout       = 10 * time.Second
	MaxTimeout           = 60 * time.Second
	DefaultRetryCount    = 3
	MaxRetryCount        = 10
	DefaultRetryInterval = 10 * time.Second
	// MaxRetryInterval keeps the last retry of a default-sized schedule
	// within a working day; anything longer is better served by redelivery.
	MaxRetryInterval = time.Hour

	// maxHeaders and maxHeaderBytes keep a config from building requests
	// that receivers' front proxies refuse (most cap headers at 8–16 KiB).
	maxHeaders     = 50
	maxHeaderBytes = 8 << 10
)

// Standard Webhooks header names (https://www.standardwebhooks.com).
const (
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"
)

// Herald's own headers; user headers may not set these.
const (
	HeaderEvent   = "X-Herald-Event"
	HeaderAction  = "X-Herald-Action"
	HeaderProject = "X-Herald-Project"
	HeaderToken   = "X-Herald-Token"
)

type config struct {
	url           string
	method        string
	headers       map[string]string
	timeout       time.Duration
	retryCount    int
	retryInterval time.Duration
	secret        string // as configured, "whsec_…"
	key           []byte // the HMAC key: base64-decoded part after whsec_
	token         string
	look          channel.Look
}

func parse(raw json.RawMessage, deps channel.Deps) (config, validate.Errors) {
	// ConfigReader reads flat values; headers is an object, so it is taken
	// out and checked here, and the rest goes through the reader (which
	// also refuses unknown fields).
	rest, headersRaw, errs := splitHeaders(raw)
	r := channel.ReadConfig(rest)
	r.Errs = append(errs, r.Errs...)
	c := config{
		method:        strings.ToUpper(r.String("method")),
		timeout:       seconds(r, "timeout", DefaultTimeout, time.Second, MaxTimeout),
		retryCount:    int(count(r, "retry_count", DefaultRetryCount, 0, MaxRetryCount)),
		retryInterval: seconds(r, "retry_interval", DefaultRetryInterval, time.Second, MaxRetryInterval),
		secret:        r.String("secret"),
		token:         r.String("token"),
		look:          r.Look(),
	}
	if u := r.URL("url", true, deps); u != nil {
		c.url = u.String()
	}
	switch c.method {
	case "":
		c.method = http.MethodPost
	case http.MethodPost, http.MethodPut:
	default:
		r.Errs.Add("method", `must be "POST" or "PUT"`)
	}
	if c.secret != "" {
		key, msg := decodeSecret(c.secret)
		if msg != "" {
			r.Errs.Add("secret", "%s", msg)
		}
		c.key = key
	}
	if c.token != "" && !validHeaderValue(c.token) {
		r.Errs.Add("token", "must not contain line breaks or control characters (it is sent as the X-Herald-Token header)")
	}
	c.headers = parseHeaders(headersRaw, &r.Errs)
	return c, r.Done()
}

// splitHeaders takes "headers" out of the config object.
func splitHeaders(raw json.RawMessage) (rest json.RawMessage, headers json.RawMessage, errs validate.Errors) {
	var fields map[string]json.RawMessage
	if len(bytes.TrimSpace(raw)) == 0 || json.Unmarshal(raw, &fields) != nil || fields == nil {
		return raw, nil, nil // the reader reports what is wrong
	}
	h, ok := fields["headers"]
	if !ok {
		return raw, nil, nil
	}
	delete(fields, "headers")
	rest, err := json.Marshal(fields)
	if err != nil {
		errs.Add("", "the config must be a JSON object")
		return raw, nil, errs
	}
	return rest, h, nil
}

func parseHeaders(raw json.RawMessage, errs *validate.Errors) map[string]string {
	if len(raw) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		errs.Add("headers", `must be an object of header names to string values ({"X-Api-Key": "…"})`)
		return nil
	}
	if len(m) > maxHeaders {
		errs.Add("headers", "at most %d headers", maxHeaders)
		return nil
	}
	out := make(map[string]string, len(m))
	seen := map[string]string{}
	size := 0
	// Sorted so that errors come in the same order on every save.
	for _, name := range slices.Sorted(maps.Keys(m)) {
		vr := m[name]
		field := "headers." + name
		var v string
		if json.Unmarshal(vr, &v) != nil {
			errs.Add(field, "must be a string")
			continue
		}
		if !validHeaderName(name) {
			errs.Add(field, "is not a valid header name (letters, digits and !#$%%&'*+-.^_`|~ only)")
			continue
		}
		canon := http.CanonicalHeaderKey(name)
		if why := reserved(canon); why != "" {
			errs.Add(field, "%s", why)
			continue
		}
		if other, dup := seen[canon]; dup {
			errs.Add(field, "is the same header as %q (header names are case-insensitive)", other)
			continue
		}
		seen[canon] = name
		if !validHeaderValue(v) {
			errs.Add(field, "must not contain line breaks or control characters")
			continue
		}
		size += len(name) + len(v)
		out[canon] = v
	}
	if size > maxHeaderBytes {
		errs.Add("headers", "at most %d bytes of names and values in total", maxHeaderBytes)
	}
	return out
}

// reserved says why a user header may not be set, or "" when it may. The
// X-Herald-* and webhook-* headers are what receivers authenticate and
// route by: letting a config set them would let it forge them. The others
// are fixed by the contract or belong to the HTTP layer.
func reserved(canon string) string {
	switch {
	case strings.HasPrefix(canon, "X-Herald-"):
		return "X-Herald-* headers are set by Herald and cannot be overridden"
	case strings.HasPrefix(canon, "Webhook-"):
		return "webhook-* headers carry the Standard Webhooks signature and cannot be overridden; set secret instead"
	}
	switch canon {
	case "Content-Type":
		return "the body is always JSON (Content-Type: application/json)"
	case "User-Agent":
		return "Herald identifies itself as Herald/<version>"
	case "Host", "Content-Length", "Transfer-Encoding", "Connection", "Upgrade",
		"Te", "Trailer", "Keep-Alive", "Proxy-Connection", "Expect":
		return "is managed by the HTTP client and cannot be set"
	}
	return ""
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue refuses control characters: CR or LF would let a value
// inject headers of its own, and Go's client refuses the request anyway.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// decodeSecret checks a Standard Webhooks secret and returns its key; the
// message never repeats the value.
func decodeSecret(s string) ([]byte, string) {
	const want = "must be whsec_ followed by the base64 of 24 to 64 random bytes (e.g. whsec_$(openssl rand -base64 32))"
	b64, ok := strings.CutPrefix(s, "whsec_")
	if !ok {
		return nil, want
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(key) < 24 || len(key) > 64 {
		return nil, want
	}
	return key, ""
}

// seconds reads a whole number of seconds in [min, max].
func seconds(r *channel.ConfigReader, name string, def, min, max time.Duration) time.Duration {
	n := count(r, name, int64(def/time.Second), int64(min/time.Second), int64(max/time.Second))
	return time.Duration(n) * time.Second
}

func count(r *channel.ConfigReader, name string, def, min, max int64) int64 {
	n, ok := r.Int(name)
	if !ok {
		return def
	}
	if n < min || n > max {
		r.Errs.Add(name, "must be between %d and %d", min, max)
		return def
	}
	return n
}

type sender struct {
	cfg  config
	deps channel.Deps
}

// RateLimits: the receiver is the user's own service, with no published
// limit; it says "later" with 429 and Retry-After.
func (s *sender) RateLimits() (string, []channel.Limit) { return "", nil }

// Retries implements channel.RetryPolicy.
func (s *sender) Retries() (int, time.Duration) { return s.cfg.retryCount, s.cfg.retryInterval }

// request is the request for ev, signed when the config has a secret.
func (s *sender) request(ev *event.Envelope) (channel.HTTPRequest, error) {
	body, err := s.body(ev)
	if err != nil {
		return channel.HTTPRequest{}, channel.Permanent("custom: cannot encode event %s: %v", ev.ID, err)
	}
	headers := s.headers(ev, body)
	secrets := []string{s.cfg.token, s.cfg.secret, strings.TrimPrefix(s.cfg.secret, "whsec_")}
	if sig := headers[HeaderWebhookSignature]; sig != "" {
		secrets = append(secrets, strings.TrimPrefix(sig, "v1,"))
	}
	return channel.HTTPRequest{
		Channel: "custom",
		Method:  s.cfg.method,
		URL:     s.cfg.url,
		Headers: headers,
		Body:    body,
		Secrets: secrets,
	}, nil
}

// Preview implements channel.Previewer.
func (s *sender) Preview(_ context.Context, ev *event.Envelope) (channel.Request, error) {
	req, err := s.request(ev)
	if err != nil {
		return channel.Request{}, err
	}
	rec := channel.Record(req)
	if _, ok := rec.Headers[HeaderWebhookSignature]; ok {
		rec.Headers[HeaderWebhookSignature] = channel.Masked
	}
	return rec, nil
}

func (s *sender) Send(ctx context.Context, ev *event.Envelope) (channel.Attempt, error) {
	req, err := s.request(ev)
	if err != nil {
		return channel.Attempt{Request: channel.Request{Method: s.cfg.method, URL: channel.MaskURL(s.cfg.url)}}, err
	}
	// The per-attempt timeout is the config's; a shorter deadline from the
	// worker still wins.
	ctx, cancel := context.WithTimeout(ctx, s.cfg.timeout)
	defer cancel()
	att, _, err := channel.Do(ctx, s.deps.HTTP, req)
	// MaskHeaders hides X-Herald-Token by name; the signature is a
	// credential too (it proves this body came from the secret's holder).
	if _, ok := att.Request.Headers[HeaderWebhookSignature]; ok {
		att.Request.Headers[HeaderWebhookSignature] = channel.Masked
	}
	return att, err
}

// Message is the "message" a custom callback's body carries when the
// configuration has a title or body template: the rendered title, and the
// rendered body (or the default message as "Label: Value" lines).
type Message struct {
	Title string `json:"title"`
	Body  string `json:"body"`
}

// body is the standard message, with "message" added only when a template
// is set: without one the body is exactly the standard message.
func (s *sender) body(ev *event.Envelope) ([]byte, error) {
	if !s.cfg.look.Templated() {
		return Body(ev)
	}
	sum := s.cfg.look.Summarize(ev, nil)
	msg := Message{Title: sum.Title, Body: sum.Text()}
	if sum.BodySet {
		msg.Body = sum.Body
	}
	return encode(struct {
		*event.Envelope
		Message Message `json:"message"`
	}{ev, msg})
}

// headers are the request's headers: the user's first, then Herald's own,
// which validation has already kept the user's from overriding.
func (s *sender) headers(ev *event.Envelope, body []byte) map[string]string {
	h := make(map[string]string, len(s.cfg.headers)+9)
	for k, v := range s.cfg.headers {
		h[k] = v
	}
	h["Content-Type"] = "application/json"
	h["User-Agent"] = channel.UserAgent(s.deps)
	h[HeaderEvent] = ev.ObjectKind
	h[HeaderAction] = ev.EventType
	if ev.Project != nil && ev.Project.ID != "" {
		h[HeaderProject] = ev.Project.ID
	}
	if s.cfg.token != "" {
		h[HeaderToken] = s.cfg.token
	}
	if s.cfg.key != nil {
		ts := channel.NowFunc(s.deps)().Unix()
		// webhook-id is the event id so a receiver can drop the retries
		// of a delivery it already processed.
		h[HeaderWebhookID] = ev.ID
		h[HeaderWebhookTimestamp] = strconv.FormatInt(ts, 10)
		h[HeaderWebhookSignature] = Sign(s.cfg.key, ev.ID, ts, body)
	}
	return h
}

// Body is the standard message as sent: the envelope's JSON, with "<",
// ">" and "&" kept readable (receivers parse JSON; nobody embeds it in
// HTML).
func Body(ev *event.Envelope) ([]byte, error) { return encode(ev) }

func encode(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// Sign is the Standard Webhooks signature: "v1," + base64(HMAC-SHA256(key,
// id + "." + timestamp + "." + body)), key being the decoded secret.
func Sign(key []byte, id string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.", id, timestamp)
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
