package wechat

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify/channel"
)

type robotSender struct {
	cfg  robotConfig
	look channel.Look
	deps channel.Deps
}

// RateLimits: a WeCom group robot accepts 20 messages a minute.
func (s *robotSender) RateLimits() (string, []channel.Limit) {
	return channel.RateKey("wechat", s.cfg.key), []channel.Limit{{Count: 20, Per: time.Minute}}
}

// RobotMessage is the body of a group robot request: markdown, or text
// when mentioning by mobile number or everyone.
type RobotMessage struct {
	MsgType  string        `json:"msgtype"`
	Markdown *MarkdownBody `json:"markdown,omitempty"`
	Text     *TextBody     `json:"text,omitempty"`
}

// MarkdownBody is a markdown message's content.
type MarkdownBody struct {
	Content string `json:"content"`
}

// TextBody is a text message with its mentions.
type TextBody struct {
	Content             string   `json:"content"`
	MentionedList       []string `json:"mentioned_list,omitempty"`
	MentionedMobileList []string `json:"mentioned_mobile_list,omitempty"`
}

// RenderRobot chooses the message type. Markdown can only mention user ids
// (<@userid>); mobile numbers and "@all" are honoured by text messages
// only. Sending markdown plus a second text message would use two of the
// robot's 20 messages a minute and, worse, make a retry after a failed
// second message repeat the first. So when the config mentions mobiles or
// everyone, the whole message goes as one text message carrying both lists,
// giving up formatting for mentions that work.
func RenderRobot(sum channel.Summary, lang string, mentionedList, mentionedMobileList []string) RobotMessage {
	if len(mentionedMobileList) > 0 || slices.Contains(mentionedList, "@all") {
		return RobotMessage{MsgType: "text", Text: &TextBody{
			Content:             RenderText(sum, lang, MaxRobotText),
			MentionedList:       mentionedList,
			MentionedMobileList: mentionedMobileList,
		}}
	}
	return RobotMessage{MsgType: "markdown", Markdown: &MarkdownBody{
		Content: RenderMarkdown(sum, lang, mentionedList, MaxRobotMarkdown),
	}}
}

func (s *robotSender) request(ev *event.Envelope) channel.HTTPRequest {
	msg := RenderRobot(s.look.Summarize(ev, neutralize), s.look.Lang, s.cfg.mentionedList, s.cfg.mentionedMobileList)
	return channel.HTTPRequest{
		Channel: "wechat",
		URL:     s.cfg.webhookURL, // MaskURL hides the key
		Headers: map[string]string{"User-Agent": channel.UserAgent(s.deps)},
		Body:    channel.MarshalJSON(msg),
		Secrets: []string{s.cfg.key},
	}
}

// Preview implements channel.Previewer.
func (s *robotSender) Preview(_ context.Context, ev *event.Envelope) (channel.Request, error) {
	return channel.Record(s.request(ev)), nil
}

func (s *robotSender) Send(ctx context.Context, ev *event.Envelope) (channel.Attempt, error) {
	att, respBody, err := channel.Do(ctx, s.deps.HTTP, s.request(ev))
	if err != nil {
		return att, err
	}
	code, msgText, ok := decodeReply(respBody)
	if !ok {
		return att, channel.Permanent("wechat: unexpected answer (HTTP %d, not WeCom's JSON): check that webhook_url is a WeCom group robot webhook", att.StatusCode)
	}
	if code != 0 {
		return att, robotCodeError(code, msgText)
	}
	return att, nil
}

// WeCom error codes (developer.work.weixin.qq.com, global error codes).
const (
	codeSystemBusy        = -1
	codeInvalidSecret     = 40001
	codeInvalidCorpID     = 40013
	codeInvalidMsgType    = 40008
	codeInvalidToken      = 40014
	codeTokenExpired      = 42001
	codeEmptyContent      = 44004
	codeFreqLimit         = 45009
	codeConcurrencyLimit  = 45033
	codeIPNotAllowed      = 60020
	codeNoValidRecipients = 81013
	codeInvalidRobotKey   = 93000
)

// freqWait is how long WeCom's per-minute limits take to reset.
const freqWait = time.Minute

func robotCodeError(code int, msg string) error {
	msg = cleanMsg(msg)
	var hint string
	switch code {
	case codeFreqLimit:
		return channel.PlatformError("wechat", code, msg, "over 20 messages a minute; will retry", true, freqWait)
	case codeSystemBusy:
		return channel.PlatformError("wechat", code, msg, "will retry", true, 0)
	case codeInvalidRobotKey:
		hint = "check webhook_url: the robot's key is wrong or the robot was removed"
	case codeInvalidMsgType, codeEmptyContent:
		hint = "WeCom refused the message; report this if it persists"
	}
	return channel.PlatformError("wechat", code, msg, hint, false, 0)
}

func decodeReply(body []byte) (code int, msg string, ok bool) {
	var rep struct {
		ErrCode *int   `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
	}
	if json.Unmarshal(body, &rep) != nil || rep.ErrCode == nil {
		return 0, "", false
	}
	return *rep.ErrCode, rep.ErrMsg, true
}
