// Package slack sends events to a Slack channel through an incoming webhook
// (https://api.slack.com/messaging/webhooks), as Block Kit blocks with a
// plain-text fallback for notifications.
//
// Unlike the Chinese IM robots, Slack says no with HTTP statuses and a bare
// word in the body ("channel_not_found"), and yes with 200 "ok".
package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify/channel"
	"github.com/herald-release/herald/internal/validate"
)

// Kind is the "slack" channel type. The whole webhook URL is the
// credential, so it is write-only.
var Kind = channel.NewKind("slack", []string{"webhook_url"}, parse,
	func(c config, deps channel.Deps) channel.Sender { return &sender{cfg: c, deps: deps} })

type config struct {
	webhookURL string
	// logURL is the webhook with its token replaced by the mask; the team
	// and bot ids stay, so history still tells webhooks apart.
	logURL string
	token  string
	look   channel.Look
	// atUserIDs, atHere and atChannel are the mentions every message
	// ends with: <@U…>, <!here>, <!channel>.
	atUserIDs         []string
	atHere, atChannel bool
}

// maxMentions keeps the mention line well inside a section's 3,000
// characters.
const maxMentions = 50

// userID is a Slack member id: U… (or W… in Enterprise Grid).
var userID = regexp.MustCompile(`^[UW][A-Z0-9]{2,20}$`)

// hookPath is /services/{team}/{bot}/{token}: Slack's incoming webhooks.
// Workflow Builder webhooks (/triggers/…) take another body and are not
// accepted.
var hookPath = regexp.MustCompile(`^/services/([A-Z0-9]+)/([A-Z0-9]+)/([A-Za-z0-9]+)/?$`)

func parse(raw json.RawMessage, deps channel.Deps) (config, validate.Errors) {
	r := channel.ReadConfig(raw)
	c := config{look: r.Look(), atUserIDs: r.Strings("at_user_ids", maxMentions), atHere: r.Bool("at_here"), atChannel: r.Bool("at_channel")}
	for i, id := range c.atUserIDs {
		if !userID.MatchString(id) {
			r.Errs.Add(fmt.Sprintf("at_user_ids[%d]", i), "must be a Slack member ID (U… or W…, from the member's profile: ⋮ → Copy member ID), not a name")
		}
	}
	if u, m := r.WebhookURL("webhook_url", "Slack", "a Slack incoming webhook, https://hooks.slack.com/services/T…/B…/…", hookPath, deps); u != nil {
		c.webhookURL, c.token = u.String(), m[3]
		c.logURL = "https://" + u.Host + "/services/" + m[1] + "/" + m[2] + "/" + channel.Masked
	}
	return c, r.Done()
}

type sender struct {
	cfg  config
	deps channel.Deps
}

// RateLimits: Slack allows about one message a second per incoming webhook
// ("short bursts are allowed"), and answers 429 beyond it.
func (s *sender) RateLimits() (string, []channel.Limit) {
	return channel.RateKey("slack", s.cfg.token), []channel.Limit{{Count: 1, Per: time.Second}}
}

func (s *sender) request(ev *event.Envelope) channel.HTTPRequest {
	msg := Render(s.cfg.look.Summarize(ev, Escape), s.cfg.look.Lang)
	msg.Mention(s.cfg.atUserIDs, s.cfg.atHere, s.cfg.atChannel)
	return channel.HTTPRequest{
		Channel: "slack",
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
		return att, classify(att, body, err)
	}
	if strings.TrimSpace(string(body)) != "ok" {
		return att, channel.Permanent("slack: unexpected answer (HTTP %d, not Slack's \"ok\"): check that webhook_url is a Slack incoming webhook", att.StatusCode)
	}
	return att, nil
}

// errorWord is how Slack names a refusal: one lower-case word.
var errorWord = regexp.MustCompile(`^[a-z][a-z_]*$`)

// hints say what to do about the refusals of
// https://api.slack.com/messaging/webhooks#handling_errors.
var hints = map[string]string{
	"invalid_payload":                   "Slack refused the message; report this if it persists",
	"invalid_blocks":                    "Slack refused the message's blocks; report this if it persists",
	"invalid_blocks_format":             "Slack refused the message's blocks; report this if it persists",
	"no_text":                           "Slack refused an empty message; report this if it persists",
	"too_many_attachments":              "Slack refused the message; report this if it persists",
	"invalid_token":                     "check webhook_url: its token is wrong or was revoked",
	"no_service":                        "check webhook_url: the webhook was removed or its app uninstalled; create a new one",
	"no_service_id":                     "check webhook_url: it is incomplete",
	"no_team":                           "check webhook_url: the workspace is not found",
	"team_disabled":                     "the Slack workspace is disabled",
	"channel_not_found":                 "the webhook's channel was deleted; create a new webhook for another channel",
	"user_not_found":                    "the webhook's user was deleted; create a new webhook",
	"channel_is_archived":               "the Slack channel is archived; unarchive it or create a new webhook",
	"action_prohibited":                 "a Slack admin restricted posting to this channel",
	"posting_to_general_channel_denied": "only admins may post to this workspace's general channel; create the webhook for another channel",
}

// classify words a non-2xx answer in Slack's terms. Retries (429, 5xx) keep
// channel.Do's classification, Retry-After included; refusals name
// Slack's reason and what to do about it.
func classify(att channel.Attempt, body []byte, err error) error {
	ce := channel.Classify(err)
	word := strings.TrimSpace(string(body))
	if !errorWord.MatchString(word) || len(word) > 64 {
		return err
	}
	ce.Code = word
	if ce.Retry || att.StatusCode < 400 {
		return ce
	}
	if att.StatusCode == http.StatusGone {
		// Slack's 410 is channel_is_archived: nothing will get through until
		// someone acts, so the worker disables the channel.
		return &channel.Error{
			Err:     fmt.Errorf("slack: %s (HTTP 410): the Slack channel is gone or archived; the channel is disabled: unarchive the Slack channel or create a new webhook, then enable it again", word),
			Disable: true,
			Code:    word,
		}
	}
	text := fmt.Sprintf("slack: %s (HTTP %d)", word, att.StatusCode)
	if h := hints[word]; h != "" {
		text += ": " + h
	}
	return &channel.Error{Err: fmt.Errorf("%s", text), Code: word}
}
