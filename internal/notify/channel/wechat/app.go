package wechat

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"strconv"
	"time"

	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify/channel"
)

type appSender struct {
	cfg  appConfig
	look channel.Look
	deps channel.Deps
}

// RateLimits: WeCom drops application messages beyond 30 a minute to the
// same member, and an application's messages all go to the same members.
func (s *appSender) RateLimits() (string, []channel.Limit) {
	return channel.RateKey("wechat-app", s.cfg.apiBase, s.cfg.corpID, strconv.FormatInt(s.cfg.agentID, 10)),
		[]channel.Limit{{Count: 30, Per: time.Minute}}
}

// AppMessage is the body of /cgi-bin/message/send.
type AppMessage struct {
	ToUser   string       `json:"touser"`
	MsgType  string       `json:"msgtype"`
	AgentID  int64        `json:"agentid"`
	Markdown MarkdownBody `json:"markdown"`
}

func (s *appSender) body(ev *event.Envelope) []byte {
	return channel.MarshalJSON(AppMessage{
		ToUser:   s.cfg.toUser,
		MsgType:  "markdown",
		AgentID:  s.cfg.agentID,
		Markdown: MarkdownBody{Content: RenderMarkdown(s.look.Summarize(ev, neutralize), s.look.Lang, nil, MaxAppMarkdown)},
	})
}

// Preview implements channel.Previewer: the message request, with the
// access token (fetched at send time) shown masked.
func (s *appSender) Preview(_ context.Context, ev *event.Envelope) (channel.Request, error) {
	return channel.Record(channel.HTTPRequest{
		Channel: "wechat",
		URL:     s.cfg.apiBase + "/cgi-bin/message/send?access_token=" + channel.Masked,
		Headers: map[string]string{"User-Agent": channel.UserAgent(s.deps)},
		Body:    s.body(ev),
	}), nil
}

func (s *appSender) Send(ctx context.Context, ev *event.Envelope) (channel.Attempt, error) {
	body := s.body(ev)
	key := s.cacheKey()
	now := channel.NowFunc(s.deps)

	stale := ""
	for try := 0; ; try++ {
		tok, att, err := tokens.Get(ctx, key, now, stale, s.fetchToken)
		if err != nil {
			return att, err
		}
		att, respBody, err := channel.Do(ctx, s.deps.HTTP, channel.HTTPRequest{
			Channel: "wechat",
			URL:     s.cfg.apiBase + "/cgi-bin/message/send?access_token=" + url.QueryEscape(tok),
			Headers: map[string]string{"User-Agent": channel.UserAgent(s.deps)},
			Body:    body,
			Secrets: []string{tok, s.cfg.secret},
		})
		if err != nil {
			return att, err
		}
		code, text, ok := decodeReply(respBody)
		if !ok {
			return att, channel.Permanent("wechat: unexpected answer (HTTP %d, not WeCom's JSON): check api_base_url", att.StatusCode)
		}
		if (code == codeInvalidToken || code == codeTokenExpired) && try == 0 {
			// The token died early (revoked, or fetched by another
			// process with a different clock): fetch one and resend once.
			stale = tok
			continue
		}
		if code != 0 {
			return att, appCodeError(code, text)
		}
		return att, nil
	}
}

// cacheKey identifies an application's token without holding its secret.
func (s *appSender) cacheKey() string {
	sum := sha256.Sum256([]byte(s.cfg.secret))
	return s.cfg.apiBase + "\x00" + s.cfg.corpID + "\x00" + hex.EncodeToString(sum[:])
}

// fetchToken calls gettoken. On failure its Attempt (corpsecret masked) is
// what history shows; on success it is dropped, since its answer is the
// token itself.
func (s *appSender) fetchToken(ctx context.Context) (string, time.Duration, channel.Attempt, error) {
	att, respBody, err := channel.Do(ctx, s.deps.HTTP, channel.HTTPRequest{
		Channel: "wechat",
		Method:  "GET",
		URL: s.cfg.apiBase + "/cgi-bin/gettoken?corpid=" + url.QueryEscape(s.cfg.corpID) +
			"&corpsecret=" + url.QueryEscape(s.cfg.secret),
		Headers: map[string]string{"User-Agent": channel.UserAgent(s.deps)},
		Secrets: []string{s.cfg.secret},
	})
	var rep struct {
		ErrCode     *int   `json:"errcode"`
		ErrMsg      string `json:"errmsg"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	parsed := json.Unmarshal(respBody, &rep) == nil
	if parsed && rep.AccessToken != "" {
		// Whatever happens next, a token must not reach history.
		att.Response = channel.Redact(att.Response, []string{rep.AccessToken})
	}
	if err != nil {
		return "", 0, att, err
	}
	if !parsed || rep.ErrCode == nil {
		return "", 0, att, channel.Permanent("wechat: gettoken: unexpected answer (HTTP %d, not WeCom's JSON): check api_base_url", att.StatusCode)
	}
	if *rep.ErrCode != 0 || rep.AccessToken == "" {
		return "", 0, att, tokenCodeError(*rep.ErrCode, rep.ErrMsg)
	}
	return rep.AccessToken, time.Duration(rep.ExpiresIn) * time.Second, att, nil
}

func tokenCodeError(code int, msg string) error {
	msg = "gettoken: " + cleanMsg(msg)
	switch code {
	case codeInvalidCorpID:
		return channel.PlatformError("wechat", code, msg, "check corp_id", false, 0)
	case codeInvalidSecret:
		return channel.PlatformError("wechat", code, msg, "check secret: it must be this application's Secret", false, 0)
	}
	return appCodeError(code, msg)
}

func appCodeError(code int, msg string) error {
	msg = cleanMsg(msg)
	var hint string
	switch code {
	case codeFreqLimit, codeConcurrencyLimit:
		return channel.PlatformError("wechat", code, msg, "WeCom's API limits were reached; will retry", true, freqWait)
	case codeSystemBusy:
		return channel.PlatformError("wechat", code, msg, "will retry", true, 0)
	case codeInvalidToken, codeTokenExpired:
		// Refused even with a freshly fetched token: another process may be
		// rotating it; later may work.
		return channel.PlatformError("wechat", code, msg, "the access token was refused twice; will retry", true, 0)
	case codeInvalidSecret:
		hint = "check secret: it must be this application's Secret"
	case codeNoValidRecipients:
		hint = "check to_user: none of its users is in the application's visible range"
	case codeIPNotAllowed:
		hint = "add Herald's outgoing IP address to the application's trusted IPs"
	}
	return channel.PlatformError("wechat", code, msg, hint, false, 0)
}
