// Package feishuapp sends events as a Feishu (Lark) app's bot, through the
// messages API (POST /open-apis/im/v1/messages), to chats or people by id:
// the same interactive card as the group robot of package feishu, without
// a robot webhook in every group.
//
// The app authenticates with a tenant_access_token, fetched with app_id and
// app_secret, cached for the process until it is about to expire (token.go),
// and fetched again when Feishu says it is invalid.
package feishuapp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify/channel"
	"github.com/herald-release/herald/internal/notify/channel/feishu"
	"github.com/herald-release/herald/internal/validate"
)

// Kind is the "feishu_app" channel type.
var Kind = channel.NewKind("feishu_app", []string{"app_secret"}, parse,
	func(c config, deps channel.Deps) channel.Sender { return &sender{cfg: c, deps: deps} })

// DefaultAPIBase is Feishu's open platform; Lark (international) is
// https://open.larksuite.com, and tests point api_base_url to a fake.
const DefaultAPIBase = "https://open.feishu.cn"

// MaxBody is the messages API's limit on a card message's request body.
const MaxBody = 30 << 10

// MaxReceivers bounds receive_ids: every receiver is one API call.
const MaxReceivers = 50

// ReceiveIDTypes are the kinds of receive_id the messages API takes.
var ReceiveIDTypes = []string{"chat_id", "open_id", "user_id", "union_id", "email"}

// idPrefixes are the fixed prefixes of Feishu's ids, which catch an id of
// the wrong type before Feishu does.
var idPrefixes = map[string]struct{ prefix, name string }{
	"chat_id":  {"oc_", "a chat id"},
	"open_id":  {"ou_", "an open id"},
	"union_id": {"on_", "a union id"},
}

type config struct {
	apiBase       string
	appID         string
	appSecret     string
	receiveIDType string
	receiveIDs    []string
	// recipients are roles (task_creator, plan_manager) whose users get
	// the message too, by email (receive_id_type email).
	recipients []string
	look       channel.Look
}

func parse(raw json.RawMessage, deps channel.Deps) (config, validate.Errors) {
	r := channel.ReadConfig(raw)
	c := config{
		appID:         r.String("app_id"),
		appSecret:     r.String("app_secret"),
		receiveIDType: r.String("receive_id_type"),
		receiveIDs:    r.Strings("receive_ids", MaxReceivers),
		recipients:    r.Recipients("recipients"),
		look:          r.Look(),
	}
	if c.appID == "" && !r.Has("app_id") {
		r.Errs.Add("app_id", "is required: the app's App ID (cli_…), from its Credentials page")
	}
	if c.appSecret == "" && !r.Has("app_secret") {
		r.Errs.Add("app_secret", "is required: the app's App Secret, from its Credentials page")
	}
	if c.receiveIDType == "" && !r.Has("receive_id_type") {
		c.receiveIDType = "chat_id"
	}
	if !slices.Contains(ReceiveIDTypes, c.receiveIDType) {
		if c.receiveIDType != "" {
			r.Errs.Add("receive_id_type", "must be one of %s", strings.Join(ReceiveIDTypes, ", "))
		}
	} else {
		for i, id := range c.receiveIDs {
			field := "receive_ids[" + strconv.Itoa(i) + "]"
			if p, ok := idPrefixes[c.receiveIDType]; ok && !strings.HasPrefix(id, p.prefix) {
				r.Errs.Add(field, "must be %s (%s…), as receive_id_type says", p.name, p.prefix)
			} else if c.receiveIDType == "email" && !strings.Contains(id, "@") {
				r.Errs.Add(field, "must be an email address, as receive_id_type says")
			}
		}
	}
	if len(c.receiveIDs) == 0 && len(c.recipients) == 0 && !hasError(r, "receive_ids") && !hasError(r, "recipients") {
		r.Errs.Add("receive_ids", "give at least one chat or person to send to (or recipients: task_creator, plan_manager)")
	}
	c.apiBase = r.APIBase(DefaultAPIBase, deps)
	return c, r.Done()
}

func hasError(r *channel.ConfigReader, field string) bool {
	for _, e := range r.Errs {
		if e.Field == field || strings.HasPrefix(e.Field, field+"[") {
			return true
		}
	}
	return false
}

type sender struct {
	cfg  config
	deps channel.Deps
}

// RateLimits: Feishu allows 5 messages a second to one chat or person, and
// an app 50 calls a second and 1000 a minute to the messages API; a send
// is one call per receiver.
func (s *sender) RateLimits() (string, []channel.Limit) {
	n := max(1, len(s.cfg.receiveIDs)+len(s.cfg.recipients))
	return channel.RateKey("feishu_app", s.cfg.apiBase, s.cfg.appID, s.cfg.receiveIDType, strings.Join(s.cfg.receiveIDs, "\x00")),
		[]channel.Limit{
			{Count: min(5, max(1, 50/n)), Per: time.Second},
			{Count: max(1, 1000/n), Per: time.Minute},
		}
}

// Request is the body of POST /open-apis/im/v1/messages.
type Request struct {
	ReceiveID string `json:"receive_id"`
	MsgType   string `json:"msg_type"`
	// Content is the card, JSON-encoded into a string.
	Content string `json:"content"`
	// UUID makes Feishu send a message at most once per hour for the same
	// value: a retry after a partial failure does not repeat the
	// receivers that already got it.
	UUID string `json:"uuid,omitempty"`
}

// receiver is one chat or person a message goes to; label names it in
// errors ("receive_ids[1]", "recipients: plan_manager").
type receiver struct{ idType, id, label string }

// receivers are the fixed receive_ids and the users of recipients, by
// email.
func (s *sender) receivers(ctx context.Context, ev *event.Envelope) ([]receiver, error) {
	var out []receiver
	for i, id := range s.cfg.receiveIDs {
		out = append(out, receiver{s.cfg.receiveIDType, id, "receive_ids[" + strconv.Itoa(i) + "]"})
	}
	people, err := channel.ResolveRecipients(ctx, s.deps, "feishu_app", ev, s.cfg.recipients)
	if err != nil {
		return nil, err
	}
	for _, p := range people {
		if !slices.ContainsFunc(out, func(r receiver) bool { return r.idType == "email" && strings.EqualFold(r.id, p.Email) }) {
			out = append(out, receiver{"email", p.Email, "the recipient"})
		}
	}
	if len(out) == 0 {
		return nil, channel.NoRecipients("feishu_app", ev, s.cfg.recipients)
	}
	return out, nil
}

func (s *sender) card(ev *event.Envelope) feishu.Card {
	return feishu.Render(s.cfg.look.Summarize(ev, feishu.Escape), s.cfg.look.Lang, nil, false).Card
}

func (s *sender) url(idType string) string {
	return s.cfg.apiBase + "/open-apis/im/v1/messages?receive_id_type=" + url.QueryEscape(idType)
}

// Preview implements channel.Previewer: the request to the first
// receiver, with the tenant_access_token (fetched at send time) masked.
func (s *sender) Preview(ctx context.Context, ev *event.Envelope) (channel.Request, error) {
	rs, err := s.receivers(ctx, ev)
	if err != nil {
		return channel.Request{Method: "POST", URL: s.url(s.cfg.receiveIDType)}, err
	}
	return channel.Record(channel.HTTPRequest{
		Channel: "feishu_app",
		URL:     s.url(rs[0].idType),
		Headers: map[string]string{
			"User-Agent":    channel.UserAgent(s.deps),
			"Authorization": "Bearer " + channel.Masked,
			"Content-Type":  "application/json; charset=utf-8",
		},
		Body: s.body(s.card(ev), ev.ID, rs[0]),
	}), nil
}

func (s *sender) Send(ctx context.Context, ev *event.Envelope) (channel.Attempt, error) {
	rs, err := s.receivers(ctx, ev)
	if err != nil {
		return channel.Attempt{Request: channel.Request{Method: "POST", URL: s.url(s.cfg.receiveIDType)}}, err
	}
	card := s.card(ev)
	key := s.cacheKey()
	now := channel.NowFunc(s.deps)
	var att channel.Attempt
	for _, r := range rs {
		att, err = s.sendOne(ctx, key, now, s.body(card, ev.ID, r), r)
		if err != nil {
			return att, err
		}
	}
	return att, nil
}

// body encodes the request for one receiver within MaxBody, shortening the
// card's fields when needed.
func (s *sender) body(card feishu.Card, eventID string, r receiver) []byte {
	req := Request{ReceiveID: r.id, MsgType: "interactive", UUID: s.uuid(eventID, r.idType, r.id)}
	text := ""
	if len(card.Elements) > 0 && card.Elements[0].Text != nil {
		text = card.Elements[0].Text.Content
	}
	return channel.Fit(text, MaxBody, func(t string) []byte {
		c := card
		c.Elements = slices.Clone(card.Elements)
		if len(c.Elements) > 0 && c.Elements[0].Text != nil {
			c.Elements[0].Text = &feishu.Text{Tag: c.Elements[0].Text.Tag, Content: t}
		}
		req.Content = string(channel.MarshalJSON(c))
		return channel.MarshalJSON(req)
	})
}

// uuid is stable for one event and receiver, so that every retry of the
// event carries it; Feishu allows at most 50 characters.
func (s *sender) uuid(eventID, idType, receiveID string) string {
	if eventID == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(s.cfg.appID + "\x00" + eventID + "\x00" + idType + "\x00" + receiveID))
	return hex.EncodeToString(sum[:16])
}

// sendOne sends to one receiver; a token Feishu calls invalid is replaced
// and the message sent once more.
func (s *sender) sendOne(ctx context.Context, key string, now func() time.Time, body []byte, r receiver) (channel.Attempt, error) {
	stale := ""
	for try := 0; ; try++ {
		tok, att, err := tokens.Get(ctx, key, now, stale, s.fetchToken)
		if err != nil {
			return att, err
		}
		client, headers := tapHeaders(s.deps.HTTP)
		att, respBody, err := channel.Do(ctx, client, channel.HTTPRequest{
			Channel: "feishu_app",
			URL:     s.url(r.idType),
			Headers: map[string]string{
				"User-Agent":    channel.UserAgent(s.deps),
				"Authorization": "Bearer " + tok,
				"Content-Type":  "application/json; charset=utf-8",
			},
			Body:    body,
			Secrets: []string{tok, s.cfg.appSecret},
		})
		rep, parsed := decode(respBody)
		if err != nil && !(parsed && rep.Code != 0 && att.StatusCode >= 400 && att.StatusCode < 500) {
			// Transport failures and 5xx: channel.Do's classification.
			return att, err
		}
		if !parsed {
			return att, channel.Permanent("feishu_app: unexpected answer (HTTP %d, not Feishu's JSON): check api_base_url", att.StatusCode)
		}
		if rep.Code == 0 {
			return att, nil
		}
		if tokenInvalid(rep.Code) && try == 0 {
			// The token died early (revoked, the app's secret reset, or
			// another process's clock): fetch one and resend once.
			stale = tok
			continue
		}
		return att, sendCodeError(rep.Code, channel.Redact(rep.Msg, []string{tok, s.cfg.appSecret}), r, headers())
	}
}

// cacheKey identifies an app's token without holding its secret.
func (s *sender) cacheKey() string {
	sum := sha256.Sum256([]byte(s.cfg.appSecret))
	return s.cfg.apiBase + "\x00" + s.cfg.appID + "\x00" + hex.EncodeToString(sum[:])
}

// fetchToken calls tenant_access_token/internal. On failure its Attempt
// (app_secret masked) is what history shows; on success it is dropped,
// since its answer is the token itself.
func (s *sender) fetchToken(ctx context.Context) (string, time.Duration, channel.Attempt, error) {
	body := channel.MarshalJSON(map[string]string{"app_id": s.cfg.appID, "app_secret": s.cfg.appSecret})
	client, headers := tapHeaders(s.deps.HTTP)
	att, respBody, err := channel.Do(ctx, client, channel.HTTPRequest{
		Channel: "feishu_app",
		URL:     s.cfg.apiBase + "/open-apis/auth/v3/tenant_access_token/internal",
		Headers: map[string]string{
			"User-Agent":   channel.UserAgent(s.deps),
			"Content-Type": "application/json; charset=utf-8",
		},
		Body:    body,
		LogBody: channel.MarshalJSON(map[string]string{"app_id": s.cfg.appID, "app_secret": channel.Masked}),
		Secrets: []string{s.cfg.appSecret},
	})
	var rep struct {
		reply
		Token  string `json:"tenant_access_token"`
		Expire int64  `json:"expire"`
	}
	parsed := json.Unmarshal(respBody, &rep) == nil && rep.Code != nil
	if parsed && rep.Token != "" {
		// Whatever happens next, a token must not reach history.
		att.Response = channel.Redact(att.Response, []string{rep.Token})
	}
	if err != nil && !(parsed && *rep.Code != 0 && att.StatusCode >= 400 && att.StatusCode < 500) {
		return "", 0, att, err
	}
	if !parsed {
		return "", 0, att, channel.Permanent("feishu_app: tenant_access_token: unexpected answer (HTTP %d, not Feishu's JSON): check api_base_url", att.StatusCode)
	}
	if *rep.Code != 0 || rep.Token == "" {
		return "", 0, att, tokenCodeError(*rep.Code, channel.Redact(rep.Msg, []string{s.cfg.appSecret}), headers())
	}
	return rep.Token, time.Duration(rep.Expire) * time.Second, att, nil
}

// reply is the envelope of every Feishu open API answer.
type reply struct {
	Code *int   `json:"code"`
	Msg  string `json:"msg"`
}

type decoded struct {
	Code int
	Msg  string
}

func decode(body []byte) (decoded, bool) {
	var rep reply
	if json.Unmarshal(body, &rep) != nil || rep.Code == nil {
		return decoded{}, false
	}
	return decoded{Code: *rep.Code, Msg: rep.Msg}, true
}

// Feishu error codes (open.feishu.cn: server error codes, and those of
// the messages API).
const (
	codeRateLimited       = 99991400 // over the API's frequency limit
	codeTokenMissing      = 99991661
	codeTokenInvalid      = 99991663
	codeTokenInvalid2     = 99991668
	codeNoPermission      = 99991672
	codeAppIDInvalid      = 10003
	codeAppSecretInvalid  = 10014
	codeInvalidParam      = 230001
	codeBotNotInChat      = 230002
	codeBotDisabled       = 230006
	codeNoAvailability    = 230013
	codeChatLimited       = 230020 // over 5 a second to the same chat or person
	codeSensitiveContent  = 230022
	codeContentTooLong    = 230025
	codeInternalError     = 1500
	codeInternalError2    = 1503
	chatLimitedRetryAfter = time.Second
)

func tokenInvalid(code int) bool {
	return code == codeTokenInvalid || code == codeTokenMissing || code == codeTokenInvalid2
}

// rateLimitHeader is how long Feishu asks a rate-limited caller to wait,
// in seconds.
const rateLimitHeader = "x-ogw-ratelimit-reset"

func tokenCodeError(code int, msg string, h http.Header) error {
	msg = "tenant_access_token: " + msg
	switch code {
	case codeAppIDInvalid, codeAppSecretInvalid:
		return channel.PlatformError("feishu_app", code, msg, "check app_id and app_secret: they must be this app's credentials", false, 0)
	}
	return commonCodeError(code, msg, h)
}

func sendCodeError(code int, msg string, r receiver, h http.Header) error {
	var hint string
	switch code {
	case codeTokenMissing, codeTokenInvalid, codeTokenInvalid2:
		// Refused even with a freshly fetched token: another process may
		// be rotating it; later may work.
		return channel.PlatformError("feishu_app", code, msg, "the tenant_access_token was refused twice; will retry", true, 0)
	case codeChatLimited:
		return channel.PlatformError("feishu_app", code, msg, fmt.Sprintf("over 5 messages a second to %s; will retry", r.label), true, chatLimitedRetryAfter)
	case codeBotNotInChat:
		hint = fmt.Sprintf("add the app's bot to the chat %s (%s)", r.label, r.id)
	case codeNoAvailability:
		hint = fmt.Sprintf("%s (%s) is outside the app's availability: widen it in the developer console and publish a version", r.label, r.id)
	case codeBotDisabled:
		hint = "enable the app's bot ability in the developer console and publish a version"
	case codeInvalidParam:
		hint = fmt.Sprintf("check %s (%s) and receive_id_type", r.label, r.id)
	case codeNoPermission:
		hint = "grant the app the im:message:send_as_bot permission and publish a version"
	case codeSensitiveContent, codeContentTooLong:
		hint = "Feishu refused the message; report this if it persists"
	default:
		return commonCodeError(code, msg, h)
	}
	return channel.PlatformError("feishu_app", code, msg, hint, false, 0)
}

func commonCodeError(code int, msg string, h http.Header) error {
	switch code {
	case codeRateLimited:
		wait := channel.ParseRetryAfter(h.Get(rateLimitHeader), time.Now())
		return channel.PlatformError("feishu_app", code, msg, "over the app's API frequency limit; will retry", true, wait)
	case codeInternalError, codeInternalError2:
		return channel.PlatformError("feishu_app", code, msg, "will retry", true, 0)
	}
	return channel.PlatformError("feishu_app", code, msg, "", false, 0)
}

// tapHeaders returns a client that sends through c and keeps the last
// response's headers: channel.Do gives back the body, and Feishu says how
// long to back off in a header of its own (x-ogw-ratelimit-reset).
func tapHeaders(c *http.Client) (*http.Client, func() http.Header) {
	base := channel.ClientOrDefault(c)
	t := &headerTap{base: base.Transport}
	if t.base == nil {
		t.base = http.DefaultTransport
	}
	tapped := *base
	tapped.Transport = t
	return &tapped, t.header
}

type headerTap struct {
	base http.RoundTripper
	mu   sync.Mutex
	h    http.Header
}

func (t *headerTap) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if resp != nil {
		t.mu.Lock()
		t.h = resp.Header.Clone()
		t.mu.Unlock()
	}
	return resp, err
}

func (t *headerTap) header() http.Header {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.h == nil {
		return http.Header{}
	}
	return t.h
}
