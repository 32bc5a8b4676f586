// Package teams sends events to a Microsoft Teams channel or chat through
// a Workflows webhook (Power Automate's "Post to a channel when a webhook
// request is received"), as an Adaptive Card.
//
// The Office 365 connector webhooks (…webhook.office.com/webhookb2/…) that
// came before are retired and refused at validation.
package teams

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify/channel"
	"github.com/herald-release/herald/internal/validate"
)

// Kind is the "teams" channel type. The webhook URL carries its own
// signature (sig=…), so it is write-only.
var Kind = channel.NewKind("teams", []string{"webhook_url"}, parse,
	func(c config, deps channel.Deps) channel.Sender { return &sender{cfg: c, deps: deps} })

type config struct {
	webhookURL string
	logURL     string // sig masked
	sig        string
	look       channel.Look
	// atUserIDs are the people every card mentions: their user principal
	// name (usually the work email) or Microsoft Entra object id.
	atUserIDs []string
}

// maxMentions bounds a card's mention entities.
const maxMentions = 20

func parse(raw json.RawMessage, deps channel.Deps) (config, validate.Errors) {
	r := channel.ReadConfig(raw)
	c := config{look: r.Look(), atUserIDs: r.Strings("at_user_ids", maxMentions)}
	for i, id := range c.atUserIDs {
		if strings.ContainsAny(id, "<>\" \t") {
			r.Errs.Add(fmt.Sprintf("at_user_ids[%d]", i), "must be a user principal name (alice@contoso.com) or a Microsoft Entra object id, without spaces or brackets")
		}
	}
	if u := r.URL("webhook_url", true, deps); u != nil {
		host := strings.ToLower(u.Hostname())
		switch {
		case strings.HasSuffix(host, ".webhook.office.com") || host == "outlook.office.com" || host == "outlook.office365.com":
			r.Errs.Add("webhook_url", `is an Office 365 connector webhook, which Microsoft retired: in Teams, create a workflow from "Post to a channel when a webhook request is received" and save its URL`)
		case u.Scheme != "https":
			r.Errs.Add("webhook_url", "must be https: Workflows webhooks are served over https only, and the URL carries its signature")
		case u.Query().Get("sig") == "":
			r.Errs.Add("webhook_url", "must carry the workflow's signature (…&sig=…): copy the whole URL Teams showed")
		default:
			c.webhookURL, c.sig = u.String(), u.Query().Get("sig")
			c.logURL = maskSig(u)
		}
	}
	return c, r.Done()
}

// maskSig hides the signature, the one credential of a workflow URL, and
// keeps the rest (workflow id, api-version) for history.
func maskSig(u *url.URL) string {
	parts := strings.Split(u.RawQuery, "&")
	for i, p := range parts {
		if k, _, _ := strings.Cut(p, "="); strings.EqualFold(k, "sig") {
			parts[i] = k + "=" + channel.Masked
		}
	}
	m := *u
	m.RawQuery = strings.Join(parts, "&")
	return channel.MaskURL(m.String())
}

type sender struct {
	cfg  config
	deps channel.Deps
}

// RateLimits: the Teams connector that posts the card allows 100 calls a
// minute per connection, and a workflow URL runs under one connection.
func (s *sender) RateLimits() (string, []channel.Limit) {
	return channel.RateKey("teams", s.cfg.webhookURL), []channel.Limit{{Count: 100, Per: time.Minute}}
}

func (s *sender) request(ev *event.Envelope) channel.HTTPRequest {
	msg := Render(s.cfg.look.Summarize(ev, Escape), s.cfg.look.Lang)
	msg.Mention(s.cfg.atUserIDs)
	return channel.HTTPRequest{
		Channel: "teams",
		URL:     s.cfg.webhookURL,
		LogURL:  s.cfg.logURL,
		Headers: map[string]string{"User-Agent": channel.UserAgent(s.deps)},
		Body:    msg.fit(),
		Secrets: []string{s.cfg.sig},
	}
}

// Preview implements channel.Previewer.
func (s *sender) Preview(_ context.Context, ev *event.Envelope) (channel.Request, error) {
	return channel.Record(s.request(ev)), nil
}

func (s *sender) Send(ctx context.Context, ev *event.Envelope) (channel.Attempt, error) {
	att, body, err := channel.Do(ctx, s.deps.HTTP, s.request(ev))
	if err != nil {
		return att, classify(body, err, s.cfg.sig)
	}
	// 202 Accepted: the workflow run was queued. Whether the card then
	// reached Teams is only in the run history, which Herald cannot see.
	return att, nil
}

// hints say what to do about the errors the workflow trigger answers
// ({"error":{"code","message"}}, as Logic Apps do).
var hints = map[string]string{
	"DirectApiAuthorizationRequired":         "check webhook_url: copy the whole URL, signature (sig=…) included",
	"DirectApiInvalidAuthorizationSignature": "check webhook_url: its signature is wrong or the workflow's URL was regenerated",
	"WorkflowNotFound":                       "the workflow was deleted; create a new one and save its URL",
	"WorkflowTriggerNotFound":                "the workflow's webhook trigger was removed; create a new workflow and save its URL",
	"WorkflowTriggerIsNotEnabled":            "the workflow is turned off; turn it on in Teams (Workflows)",
	"TriggerInputSchemaMismatch":             `the workflow expects another body: create it from "Post to a channel when a webhook request is received"`,
	"InvalidRequestContent":                  "Teams refused the message; report this if it persists",
}

// classify words a non-2xx answer with the workflow's own error code.
func classify(body []byte, err error, sig string) error {
	var rep struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	ce := channel.Classify(err)
	if json.Unmarshal(body, &rep) != nil || rep.Error.Code == "" {
		return err
	}
	ce.Code = rep.Error.Code
	if ce.Retry || ce.Disable {
		return ce
	}
	text := fmt.Sprintf("teams: %s (%s)", oneLine(channel.Truncate(rep.Error.Message, 200)), rep.Error.Code)
	if h := hints[rep.Error.Code]; h != "" {
		text += ": " + h
	}
	return &channel.Error{Err: fmt.Errorf("%s", channel.Redact(text, []string{sig})), Code: rep.Error.Code}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
