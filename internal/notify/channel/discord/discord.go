// Package discord sends events to a Discord channel through a webhook
// (https://discord.com/developers/docs/resources/webhook#execute-webhook),
// as an embed coloured by the event's status.
package discord

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"time"

	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify/channel"
	"github.com/herald-release/herald/internal/validate"
)

// Kind is the "discord" channel type. The webhook URL holds the webhook's
// token, so it is write-only.
var Kind = channel.NewKind("discord", []string{"webhook_url"}, parse,
	func(c config, deps channel.Deps) channel.Sender { return &sender{cfg: c, deps: deps} })

type config struct {
	webhookURL string
	logURL     string // token masked
	id, token  string
	look       channel.Look
	// atUserIDs, atRoleIDs and atEveryone are who every message pings;
	// allowed_mentions lets exactly those notify.
	atUserIDs, atRoleIDs []string
	atEveryone           bool
}

// maxMentions is Discord's limit of users, and of roles, in
// allowed_mentions.
const maxMentions = 100

// snowflake is a Discord id.
var snowflake = regexp.MustCompile(`^[0-9]{15,21}$`)

// hookPath is /api[/vN]/webhooks/{id}/{token}.
var hookPath = regexp.MustCompile(`^(/api(?:/v[0-9]+)?/webhooks/)([0-9]+)/([A-Za-z0-9_.-]+)/?$`)

func parse(raw json.RawMessage, deps channel.Deps) (config, validate.Errors) {
	r := channel.ReadConfig(raw)
	c := config{look: r.Look(), atUserIDs: r.Strings("at_user_ids", maxMentions), atRoleIDs: r.Strings("at_role_ids", maxMentions),
		atEveryone: r.Bool("at_everyone")}
	for field, ids := range map[string][]string{"at_user_ids": c.atUserIDs, "at_role_ids": c.atRoleIDs} {
		for i, id := range ids {
			if !snowflake.MatchString(id) {
				r.Errs.Add(fmt.Sprintf("%s[%d]", field, i), "must be a Discord id, digits only (Developer Mode: right-click → Copy ID)")
			}
		}
	}
	if u, m := r.WebhookURL("webhook_url", "Discord", "a Discord webhook, https://discord.com/api/webhooks/{id}/{token}", hookPath, deps); u != nil {
		c.webhookURL, c.id, c.token = u.String(), m[2], m[3]
		masked := *u
		masked.Path = m[1] + m[2] + "/" + channel.Masked
		masked.RawPath = masked.Path
		c.logURL = channel.MaskURL(masked.String())
	}
	return c, r.Done()
}

type sender struct {
	cfg  config
	deps channel.Deps
}

// RateLimits: Discord allows 5 requests per 2 seconds per webhook, and 30
// messages a minute per channel; a webhook posts to one channel.
func (s *sender) RateLimits() (string, []channel.Limit) {
	return channel.RateKey("discord", s.cfg.id), []channel.Limit{
		{Count: 5, Per: 2 * time.Second},
		{Count: 30, Per: time.Minute},
	}
}

func (s *sender) request(ev *event.Envelope) channel.HTTPRequest {
	msg := Render(s.cfg.look.Summarize(ev, Escape), s.cfg.look.Lang, ev.Timestamp)
	msg.Mention(s.cfg.atUserIDs, s.cfg.atRoleIDs, s.cfg.atEveryone)
	return channel.HTTPRequest{
		Channel: "discord",
		URL:     s.cfg.webhookURL,
		LogURL:  s.cfg.logURL,
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
	if err != nil {
		return att, classify(att, body, err, s.cfg.token)
	}
	// 204 No Content, or 200 with the message when the URL asks ?wait=true.
	return att, nil
}

// Discord's JSON error codes
// (https://discord.com/developers/docs/topics/opcodes-and-status-codes).
const (
	codeUnknownWebhook     = 10015
	codeMissingAccess      = 50001
	codeMissingPermissions = 50013
	codeInvalidToken       = 50027
	codeInvalidFormBody    = 50035
	codeEmptyMessage       = 50006
)

var hints = map[int]string{
	codeUnknownWebhook:     "the webhook was deleted; create a new one and save its URL",
	codeInvalidToken:       "check webhook_url: its token is wrong or the webhook's URL was reset",
	codeMissingAccess:      "the webhook cannot reach its channel or thread; check the channel and thread_id",
	codeMissingPermissions: "the webhook lacks permission in its channel or thread",
	codeInvalidFormBody:    "Discord refused the message; report this if it persists",
	codeEmptyMessage:       "Discord refused the message; report this if it persists",
}

// classify words a non-2xx answer. A 429 waits for Discord's retry_after,
// which is in seconds with a fraction and more exact than Retry-After.
func classify(att channel.Attempt, body []byte, err error, token string) error {
	var rep struct {
		Message    string   `json:"message"`
		Code       int      `json:"code"`
		RetryAfter *float64 `json:"retry_after"`
		Global     bool     `json:"global"`
	}
	ce := channel.Classify(err)
	if json.Unmarshal(body, &rep) != nil || (rep.Message == "" && rep.RetryAfter == nil) {
		return err
	}
	msg := channel.Redact(oneLine(channel.Truncate(rep.Message, 200)), []string{token})
	if rep.Code != 0 {
		ce.Code = fmt.Sprint(rep.Code)
	}
	if att.StatusCode == 429 {
		wait := ce.RetryAfter
		if rep.RetryAfter != nil && *rep.RetryAfter > 0 {
			wait = time.Duration(math.Ceil(*rep.RetryAfter*1000)) * time.Millisecond
		}
		scope := "over 5 messages in 2 seconds for this webhook or 30 a minute for its channel"
		if rep.Global {
			scope = "Discord's global limit"
		}
		when := "will retry"
		if wait > 0 {
			when = fmt.Sprintf("will retry in %v", wait)
		}
		return &channel.Error{
			Err:        fmt.Errorf("discord: %s (HTTP 429): %s; %s", msg, scope, when),
			Retry:      true,
			RetryAfter: wait,
			Code:       ce.Code,
		}
	}
	if ce.Retry || ce.Disable {
		return ce
	}
	text := fmt.Sprintf("discord: %s (HTTP %d", msg, att.StatusCode)
	if rep.Code != 0 {
		text += fmt.Sprintf(", code %d", rep.Code)
	}
	text += ")"
	if h := hints[rep.Code]; h != "" {
		text += ": " + h
	}
	return &channel.Error{Err: fmt.Errorf("%s", text), Code: ce.Code}
}
