// Package dingtalk sends events to a DingTalk group robot as markdown
// (PRD §4.4).
package dingtalk

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify/channel"
	"github.com/herald-release/herald/internal/validate"
)

// Kind is the "dingtalk" channel type.
var Kind = channel.NewKind("dingtalk", []string{"webhook_url", "sign_secret"}, parse,
	func(c config, deps channel.Deps) channel.Sender { return &sender{cfg: c, deps: deps} })

// MaxBody is DingTalk's limit on a robot message.
const MaxBody = 20000

// maxMentions keeps the mentions, which are never truncated, well inside
// MaxBody.
const maxMentions = 100

type config struct {
	webhookURL  string
	accessToken string
	signSecret  string
	atMobiles   []string
	atUserIDs   []string
	atAll       bool
	look        channel.Look
}

func parse(raw json.RawMessage, deps channel.Deps) (config, validate.Errors) {
	r := channel.ReadConfig(raw)
	c := config{
		signSecret: r.String("sign_secret"),
		atMobiles:  r.Strings("at_mobiles", maxMentions),
		atUserIDs:  r.Strings("at_user_ids", maxMentions),
		atAll:      r.Bool("at_all"),
		look:       r.Look(),
	}
	if u := r.URL("webhook_url", true, deps); u != nil {
		// Without its access_token the URL names no robot; better to say
		// so now than on the first release.
		if tok := u.Query().Get("access_token"); tok == "" {
			r.Errs.Add("webhook_url", "must carry the robot's access_token (https://oapi.dingtalk.com/robot/send?access_token=…)")
		} else {
			c.webhookURL, c.accessToken = u.String(), tok
		}
	}
	for i, m := range c.atMobiles {
		if strings.Trim(m, "+-0123456789") != "" {
			r.Errs.Add("at_mobiles["+strconv.Itoa(i)+"]", "must be a phone number (digits, optionally +86-…)")
		}
	}
	return c, r.Done()
}

type sender struct {
	cfg  config
	deps channel.Deps
}

// RateLimits: DingTalk allows 20 messages a minute per robot, and
// throttles a robot that sends more for 10 minutes.
func (s *sender) RateLimits() (string, []channel.Limit) {
	return channel.RateKey("dingtalk", s.cfg.accessToken), []channel.Limit{{Count: 20, Per: time.Minute}}
}

// request is the robot request for ev, signed in the URL when the robot
// has a secret.
func (s *sender) request(ev *event.Envelope) channel.HTTPRequest {
	// DingTalk's markdown has no escapes; names cannot mention anyone
	// either, since only at.atMobiles and at.atUserIds notify.
	msg := Render(s.cfg.look.Summarize(ev, nil), s.cfg.look.Lang, s.cfg.atMobiles, s.cfg.atUserIDs, s.cfg.atAll)
	target := s.cfg.webhookURL
	if s.cfg.signSecret != "" {
		ms := channel.NowFunc(s.deps)().UnixMilli()
		target += "&timestamp=" + strconv.FormatInt(ms, 10) + "&sign=" + url.QueryEscape(Sign(ms, s.cfg.signSecret))
	}
	return channel.HTTPRequest{
		Channel: "dingtalk",
		URL:     target, // MaskURL hides access_token and sign
		Headers: map[string]string{"User-Agent": channel.UserAgent(s.deps)},
		Body:    msg.fit(),
		Secrets: []string{s.cfg.signSecret, s.cfg.accessToken},
	}
}

// Preview implements channel.Previewer.
func (s *sender) Preview(_ context.Context, ev *event.Envelope) (channel.Request, error) {
	return channel.Record(s.request(ev)), nil
}

func (s *sender) Send(ctx context.Context, ev *event.Envelope) (channel.Attempt, error) {
	att, respBody, err := channel.Do(ctx, s.deps.HTTP, s.request(ev))
	if err != nil {
		return att, err
	}
	var rep struct {
		ErrCode *int   `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
	}
	if json.Unmarshal(respBody, &rep) != nil || rep.ErrCode == nil {
		return att, channel.Permanent("dingtalk: unexpected answer (HTTP %d, not DingTalk's JSON): check that webhook_url is a DingTalk robot webhook", att.StatusCode)
	}
	if *rep.ErrCode != 0 {
		return att, codeError(*rep.ErrCode, rep.ErrMsg)
	}
	return att, nil
}

// DingTalk error codes (open.dingtalk.com, custom robot guide).
const (
	codeSystemBusy   = -1
	codeSendTooFast  = 130101
	codeSecurity     = 310000 // sign, keyword or IP check failed
	codeTokenMissing = 300001
	codeTokenInvalid = 300005
)

// throttled is how long DingTalk refuses a robot that sent too fast.
const throttled = 10 * time.Minute

func codeError(code int, msg string) error {
	// DingTalk appends ", more: [link to docs]" to its messages.
	if i := strings.Index(msg, ", more"); i > 0 {
		msg = msg[:i]
	}
	var hint string
	switch code {
	case codeSendTooFast:
		return channel.PlatformError("dingtalk", code, msg, "over 20 messages a minute, the robot is throttled for 10 minutes; will retry", true, throttled)
	case codeSystemBusy:
		return channel.PlatformError("dingtalk", code, msg, "will retry", true, 0)
	case codeSecurity:
		hint = securityHint(msg)
	case codeTokenMissing, codeTokenInvalid:
		hint = "check webhook_url: the robot's access_token is wrong or the robot was removed"
	}
	return channel.PlatformError("dingtalk", code, msg, hint, false, 0)
}

// securityHint tells which of the robot's three security settings refused
// the message; DingTalk uses one code for all of them.
func securityHint(msg string) string {
	m := strings.ToLower(msg)
	switch {
	case strings.Contains(m, "sign"):
		return "check sign_secret"
	case strings.Contains(m, "timestamp"):
		return "check sign_secret (the robot wants signed requests) and Herald's clock (the timestamp must be within an hour)"
	case strings.Contains(m, "keyword"), strings.Contains(m, "关键词"):
		return "the robot only accepts messages with its custom keywords; add a keyword that Herald's messages contain (such as 发布通知 or Release)"
	case strings.Contains(m, "ip"), strings.Contains(m, "whitelist"):
		return "add Herald's outgoing IP address to the robot's IP allowlist"
	}
	return "check sign_secret, the robot's keywords and its IP allowlist"
}

// Sign is DingTalk's robot signature: base64(HMAC-SHA256(key = secret,
// message = timestamp+"\n"+secret)), timestamp in milliseconds. It goes in
// the query URL-encoded once.
func Sign(timestampMS int64, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(timestampMS, 10) + "\n" + secret))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
