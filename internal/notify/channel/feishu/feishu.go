// Package feishu sends events to a Feishu (Lark) group robot as an
// interactive card (PRD §4.4).
package feishu

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify/channel"
	"github.com/herald-release/herald/internal/validate"
)

// Kind is the "feishu" channel type.
var Kind = channel.NewKind("feishu", []string{"webhook_url", "sign_secret"}, parse,
	func(c config, deps channel.Deps) channel.Sender { return &sender{cfg: c, deps: deps} })

// MaxBody is Feishu's limit on a robot request body.
const MaxBody = 20 << 10

// maxMentions keeps the mentions, which are never truncated, well inside
// MaxBody.
const maxMentions = 100

type config struct {
	webhookURL string
	signSecret string
	atUserIDs  []string
	atAll      bool
	look       channel.Look
}

func parse(raw json.RawMessage, deps channel.Deps) (config, validate.Errors) {
	r := channel.ReadConfig(raw)
	c := config{
		signSecret: r.String("sign_secret"),
		atUserIDs:  r.Strings("at_user_ids", maxMentions),
		atAll:      r.Bool("at_all"),
		look:       r.Look(),
	}
	if u := r.URL("webhook_url", true, deps); u != nil {
		c.webhookURL = u.String()
	}
	for i, id := range c.atUserIDs {
		// The id is written inside <at user_id="…">; a quote or bracket
		// would break out of the tag.
		if strings.ContainsAny(id, "\"<> ") {
			r.Errs.Add("at_user_ids["+strconv.Itoa(i)+"]", "must be a Feishu user id (ou_…), without quotes, brackets or spaces")
		}
	}
	return c, r.Done()
}

type sender struct {
	cfg  config
	deps channel.Deps
}

// RateLimits: Feishu allows 5 messages a second and 100 a minute per robot.
func (s *sender) RateLimits() (string, []channel.Limit) {
	return channel.RateKey("feishu", s.cfg.webhookURL), []channel.Limit{
		{Count: 5, Per: time.Second},
		{Count: 100, Per: time.Minute},
	}
}

// request is the robot request for ev, signed when the robot has a
// secret.
func (s *sender) request(ev *event.Envelope) channel.HTTPRequest {
	lang := s.cfg.look.Lang
	msg := Render(s.cfg.look.Summarize(ev, Escape), lang, s.cfg.atUserIDs, s.cfg.atAll)
	if s.cfg.signSecret != "" {
		ts := channel.NowFunc(s.deps)().Unix()
		msg.Timestamp = strconv.FormatInt(ts, 10)
		msg.Sign = Sign(ts, s.cfg.signSecret)
	}
	body := msg.fit()
	logMsg := msg
	if logMsg.Sign != "" {
		// A signature is a credential for an hour; history shows it masked.
		logMsg.Sign = channel.Masked
	}
	return channel.HTTPRequest{
		Channel: "feishu",
		URL:     s.cfg.webhookURL,
		Headers: map[string]string{"User-Agent": channel.UserAgent(s.deps)},
		Body:    body,
		LogBody: channel.MarshalJSON(logMsg),
		Secrets: []string{s.cfg.signSecret, hookID(s.cfg.webhookURL)},
	}
}

// Preview implements channel.Previewer.
func (s *sender) Preview(_ context.Context, ev *event.Envelope) (channel.Request, error) {
	return channel.Record(s.request(ev)), nil
}

func (s *sender) Send(ctx context.Context, ev *event.Envelope) (channel.Attempt, error) {
	att, respBody, err := channel.Do(ctx, s.deps.HTTP, s.request(ev))
	var rep reply
	parsed := json.Unmarshal(respBody, &rep) == nil && rep.code() != nil
	if err != nil {
		// Feishu answers a malformed request with HTTP 400 and a code; the
		// code says more than the status.
		if ce := channel.Classify(err); parsed && !ce.Retry && !ce.Disable && att.StatusCode >= 400 && *rep.code() != 0 {
			return att, codeError(*rep.code(), rep.message())
		}
		return att, err
	}
	if !parsed {
		return att, channel.Permanent("feishu: unexpected answer (HTTP %d, not Feishu's JSON): check that webhook_url is a Feishu robot webhook", att.StatusCode)
	}
	if code := *rep.code(); code != 0 {
		return att, codeError(code, rep.message())
	}
	return att, nil
}

// reply is Feishu's answer. Current robots answer {"code","msg"}; older
// ones answered {"StatusCode","StatusMessage"}, and some send both.
type reply struct {
	Code          *int   `json:"code"`
	Msg           string `json:"msg"`
	StatusCode    *int   `json:"StatusCode"`
	StatusMessage string `json:"StatusMessage"`
}

func (r reply) code() *int {
	if r.Code != nil {
		return r.Code
	}
	return r.StatusCode
}

func (r reply) message() string {
	if r.Msg != "" {
		return r.Msg
	}
	return r.StatusMessage
}

// Feishu error codes (open.feishu.cn, custom robot guide).
const (
	codeFrequencyLimited = 11232
	codeBadRequest       = 9499
	codeTokenInvalid     = 19001
	codeSignFail         = 19021
	codeIPNotAllowed     = 19022
	codeKeywordMissing   = 19024
)

func codeError(code int, msg string) error {
	var hint string
	switch code {
	case codeFrequencyLimited:
		return channel.PlatformError("feishu", code, msg, "over 5 messages a second or 100 a minute; will retry", true, 0)
	case codeSignFail:
		hint = "check sign_secret (and that Herald's clock is right)"
	case codeKeywordMissing:
		hint = "the robot only accepts messages with its custom keywords; add a keyword that Herald's messages contain (such as 发布通知 or Release) or remove the keyword check"
	case codeIPNotAllowed:
		hint = "add Herald's outgoing IP address to the robot's IP allowlist"
	case codeBadRequest:
		hint = "Feishu refused the message; report this if it persists"
	case codeTokenInvalid:
		hint = "check webhook_url: the robot may have been removed"
	}
	return channel.PlatformError("feishu", code, msg, hint, false, 0)
}

// Sign is Feishu's robot signature: base64(HMAC-SHA256(key =
// timestamp+"\n"+secret, message = empty)). The odd key/message order is
// the platform's, not a mistake.
func Sign(timestamp int64, secret string) string {
	mac := hmac.New(sha256.New, []byte(strconv.FormatInt(timestamp, 10)+"\n"+secret))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// hookID is the credential part of a /hook/{id} URL.
func hookID(webhook string) string {
	if i := strings.Index(webhook, "/hook/"); i >= 0 {
		id := webhook[i+len("/hook/"):]
		if j := strings.IndexAny(id, "/?#"); j >= 0 {
			id = id[:j]
		}
		return id
	}
	return ""
}
