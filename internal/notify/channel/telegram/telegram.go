// Package telegram sends events to a Telegram chat, group or channel
// through a bot (https://core.telegram.org/bots/api#sendmessage), as
// MarkdownV2 text.
//
// The bot token is part of every request's path (/bot<token>/sendMessage);
// it is masked in everything history keeps.
package telegram

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify/channel"
	"github.com/herald-release/herald/internal/validate"
)

// Kind is the "telegram" channel type.
var Kind = channel.NewKind("telegram", []string{"bot_token"}, parse,
	func(c config, deps channel.Deps) channel.Sender { return &sender{cfg: c, deps: deps} })

// DefaultAPIBase is the Bot API, overridable with api_base_url for a local
// Bot API server and for tests.
const DefaultAPIBase = "https://api.telegram.org"

type config struct {
	apiBase  string
	token    string
	chatID   string
	threadID int64
	look     channel.Look
}

var (
	// tokenRE is the shape @BotFather hands out: "123456789:AA…".
	tokenRE = regexp.MustCompile(`^[0-9]{1,20}:[A-Za-z0-9_-]{20,}$`)
	// chatRE is a numeric chat id (negative for groups, -100… for
	// supergroups and channels) or a public channel's @username.
	chatRE = regexp.MustCompile(`^(-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31})$`)
)

func parse(raw json.RawMessage, deps channel.Deps) (config, validate.Errors) {
	r := channel.ReadConfig(numberAsString(raw, "chat_id"))
	c := config{
		token:  r.String("bot_token"),
		chatID: r.String("chat_id"),
		look:   r.Look(),
	}
	switch {
	case c.token == "" && !r.Has("bot_token"):
		r.Errs.Add("bot_token", "is required: the bot's token from @BotFather")
	case c.token != "" && !tokenRE.MatchString(c.token):
		// Never repeat the value: it may be a real token with a typo.
		r.Errs.Add("bot_token", "must be a bot token as @BotFather gives it, 123456789:AA…")
	}
	switch {
	case c.chatID == "" && !r.Has("chat_id"):
		r.Errs.Add("chat_id", "is required: a numeric chat id (-100… for groups and channels) or a public channel's @username")
	case c.chatID != "" && !chatRE.MatchString(c.chatID):
		r.Errs.Add("chat_id", "must be a numeric chat id (-100… for groups and channels) or a public channel's @username")
	}
	if n, ok := r.Int("message_thread_id"); ok {
		if n <= 0 {
			r.Errs.Add("message_thread_id", "must be a forum topic's positive id")
		}
		c.threadID = n
	}
	c.apiBase = r.APIBase(DefaultAPIBase, deps)
	return c, r.Done()
}

// numberAsString turns a numeric field into a string, for ids that clients
// send either way (the Bot API itself takes chat_id as both).
func numberAsString(raw json.RawMessage, field string) json.RawMessage {
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil || fields == nil {
		return raw
	}
	v := bytes.TrimSpace(fields[field])
	if len(v) == 0 || (v[0] != '-' && (v[0] < '0' || v[0] > '9')) {
		return raw
	}
	if _, err := strconv.ParseInt(string(v), 10, 64); err != nil {
		return raw
	}
	fields[field], _ = json.Marshal(string(v))
	out, _ := json.Marshal(fields)
	return out
}

type sender struct {
	cfg  config
	deps channel.Deps
}

// RateLimits: Telegram allows a bot about one message a second in a chat,
// and 20 a minute in a group.
func (s *sender) RateLimits() (string, []channel.Limit) {
	return channel.RateKey("telegram", s.cfg.apiBase, s.cfg.token, s.cfg.chatID), []channel.Limit{
		{Count: 1, Per: time.Second},
		{Count: 20, Per: time.Minute},
	}
}

// Message is the body of sendMessage.
type Message struct {
	ChatID             string             `json:"chat_id"`
	MessageThreadID    int64              `json:"message_thread_id,omitempty"`
	Text               string             `json:"text"`
	ParseMode          string             `json:"parse_mode"`
	LinkPreviewOptions LinkPreviewOptions `json:"link_preview_options"`
}

// LinkPreviewOptions turns off the preview of the link to Herald, which
// would only repeat the message.
type LinkPreviewOptions struct {
	IsDisabled bool `json:"is_disabled"`
}

func (s *sender) request(ev *event.Envelope) channel.HTTPRequest {
	// A body template's text is plain text here: MarkdownV2 would make
	// users escape every "." and "-" of it. Mentions are @username in it.
	msg := Message{
		ChatID:             s.cfg.chatID,
		MessageThreadID:    s.cfg.threadID,
		Text:               Render(s.cfg.look.Summarize(ev, nil), s.cfg.look.Lang),
		ParseMode:          "MarkdownV2",
		LinkPreviewOptions: LinkPreviewOptions{IsDisabled: true},
	}
	return channel.HTTPRequest{
		Channel: "telegram",
		URL:     s.cfg.apiBase + "/bot" + s.cfg.token + "/sendMessage",
		LogURL:  s.cfg.apiBase + "/bot" + channel.Masked + "/sendMessage",
		Headers: map[string]string{"User-Agent": channel.UserAgent(s.deps)},
		Body:    channel.MarshalJSON(msg),
		Secrets: []string{s.cfg.token},
	}
}

// Preview implements channel.Previewer.
func (s *sender) Preview(_ context.Context, ev *event.Envelope) (channel.Request, error) {
	return channel.Record(s.request(ev)), nil
}

func (s *sender) Send(ctx context.Context, ev *event.Envelope) (channel.Attempt, error) {
	att, body, err := channel.Do(ctx, s.deps.HTTP, s.request(ev))
	var rep reply
	parsed := json.Unmarshal(body, &rep) == nil && rep.OK != nil
	if err != nil {
		ce := channel.Classify(err)
		// A 5xx from a proxy in front of a local Bot API server is worth a
		// retry whatever it says; Telegram's own refusals carry a reason.
		if !parsed || *rep.OK || (ce.Retry && att.StatusCode != 429) {
			return att, err
		}
		return att, rep.error(s.cfg.token)
	}
	if !parsed {
		return att, channel.Permanent("telegram: unexpected answer (HTTP %d, not the Bot API's JSON): check api_base_url", att.StatusCode)
	}
	if !*rep.OK {
		return att, rep.error(s.cfg.token)
	}
	return att, nil
}

// reply is the Bot API's answer.
type reply struct {
	OK          *bool  `json:"ok"`
	ErrorCode   int    `json:"error_code"`
	Description string `json:"description"`
	Parameters  struct {
		RetryAfter      int64 `json:"retry_after"`
		MigrateToChatID int64 `json:"migrate_to_chat_id"`
	} `json:"parameters"`
}

// maxRetryAfter caps a wait Telegram asks for; a long flood wait is better
// spread over the retry schedule than spent in one snooze.
const maxRetryAfter = time.Hour

func (r reply) error(token string) error {
	desc := channel.Redact(r.Description, []string{token})
	lower := strings.ToLower(desc)
	var hint string
	switch {
	case r.ErrorCode == 429:
		wait := min(time.Duration(r.Parameters.RetryAfter)*time.Second, maxRetryAfter)
		return channel.PlatformError("telegram", r.ErrorCode, desc, "over 1 message a second or 20 a minute to this chat; will retry", true, wait)
	case r.ErrorCode >= 500:
		return channel.PlatformError("telegram", r.ErrorCode, desc, "will retry", true, 0)
	case r.Parameters.MigrateToChatID != 0:
		hint = fmt.Sprintf("the group became a supergroup: set chat_id to %d", r.Parameters.MigrateToChatID)
	case r.ErrorCode == 401:
		hint = "check bot_token: it is wrong or was revoked with @BotFather"
	case r.ErrorCode == 404:
		hint = "check bot_token and api_base_url"
	case strings.Contains(lower, "chat not found"):
		hint = "check chat_id, and that the bot was added to the chat"
	case strings.Contains(lower, "message thread not found"):
		hint = "check message_thread_id: the topic does not exist"
	case strings.Contains(lower, "can't parse entities"), strings.Contains(lower, "message is too long"):
		hint = "Telegram refused the message; report this if it persists"
	case r.ErrorCode == 403:
		hint = "the bot was removed from the chat, blocked, or may not post there; add it again (as an admin for a channel)"
	}
	return channel.PlatformError("telegram", r.ErrorCode, desc, hint, false, 0)
}
