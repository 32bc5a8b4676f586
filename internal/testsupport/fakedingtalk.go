package testsupport

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// DingTalk is a fake DingTalk group robot. Like the real one it answers
// HTTP 200 with {"errcode","errmsg"} for everything, checks the
// access_token, verifies the signature when it has a secret (rejecting a
// timestamp more than an hour off), throttles past 20 messages a minute
// (130101) and refuses bodies over 20,000 bytes.
type DingTalk struct {
	robotFake[DingTalkMessage]
	token  string
	secret string
}

// DingTalkMessage is one message the fake accepted, decoded.
type DingTalkMessage struct {
	MsgType   string
	Title     string // markdown.title
	Text      string // markdown.text, or text.content
	AtMobiles []string
	AtUserIDs []string
	IsAtAll   bool
	// Timestamp and Sign are the query parameters as received (decoded).
	Timestamp string
	Sign      string
	Body      []byte
}

// DingTalk's answers, as the platform words them.
const (
	dingMaxBody   = 20000
	dingPerMinute = 20
)

// NewDingTalk starts a fake robot; secret "" means no signing. It stops
// when t ends.
func NewDingTalk(t testing.TB, secret string) *DingTalk {
	t.Helper()
	f := &DingTalk{
		robotFake: newRobotFake[DingTalkMessage]("dingtalk", dingAnswer),
		token:     "ding" + randomHex(16),
		secret:    secret,
	}
	f.start(t, f.serve)
	return f
}

// WebhookURL is the robot's webhook, with its access_token.
func (f *DingTalk) WebhookURL() string {
	return f.srv.URL + "/robot/send?access_token=" + f.token
}

// Token is the robot's access_token, for checks that it never leaks.
func (f *DingTalk) Token() string { return f.token }

func (f *DingTalk) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/robot/send" {
		http.NotFound(w, r)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	q := r.URL.Query()

	f.mu.Lock()
	defer f.mu.Unlock()
	if f.begin(w) {
		return
	}
	now := f.now()
	switch tok := q.Get("access_token"); {
	case tok == "":
		dingAnswer(w, 300001, "access_token is blank")
		return
	case tok != f.token:
		dingAnswer(w, 300005, "token is not exist")
		return
	}
	if f.secret != "" {
		if q.Get("timestamp") == "" || q.Get("sign") == "" {
			dingAnswer(w, 310000, "sign not match, more: [https://open.dingtalk.com/document/robots/customize-robot-security-settings]")
			return
		}
		ms, err := strconv.ParseInt(q.Get("timestamp"), 10, 64)
		if err != nil || absDuration(now.Sub(time.UnixMilli(ms))) > time.Hour {
			dingAnswer(w, 310000, "invalid timestamp, more: [https://open.dingtalk.com/document/robots/customize-robot-security-settings]")
			return
		}
		// Query().Get decodes once, as DingTalk does: a sign encoded twice
		// does not match.
		if !hmac.Equal([]byte(q.Get("sign")), []byte(DingTalkSign(ms, f.secret))) {
			dingAnswer(w, 310000, "sign not match, more: [https://open.dingtalk.com/document/robots/customize-robot-security-settings]")
			return
		}
	}
	if _, lastMinute := f.rate(now); lastMinute >= dingPerMinute {
		dingAnswer(w, 130101, "send too fast, exceed 20 times per minute")
		return
	}
	if len(body) > dingMaxBody {
		dingAnswer(w, 460101, "message too long, exceed 20000 bytes")
		return
	}
	var m struct {
		MsgType  string `json:"msgtype"`
		Markdown struct {
			Title string `json:"title"`
			Text  string `json:"text"`
		} `json:"markdown"`
		Text struct {
			Content string `json:"content"`
		} `json:"text"`
		At struct {
			AtMobiles []string `json:"atMobiles"`
			AtUserIDs []string `json:"atUserIds"`
			IsAtAll   bool     `json:"isAtAll"`
		} `json:"at"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		dingAnswer(w, 43004, "无效的HTTP HEADER Content-Type or body")
		return
	}
	msg := DingTalkMessage{
		MsgType: m.MsgType, AtMobiles: m.At.AtMobiles, AtUserIDs: m.At.AtUserIDs, IsAtAll: m.At.IsAtAll,
		Timestamp: q.Get("timestamp"), Sign: q.Get("sign"), Body: body,
	}
	switch m.MsgType {
	case "markdown":
		if m.Markdown.Title == "" || m.Markdown.Text == "" {
			dingAnswer(w, 40035, "缺少参数 markdown.title or markdown.text")
			return
		}
		msg.Title, msg.Text = m.Markdown.Title, m.Markdown.Text
	case "text":
		msg.Text = m.Text.Content
	default:
		dingAnswer(w, 40035, "缺少参数 msgtype")
		return
	}
	f.accept(now, msg)
	dingAnswer(w, 0, "ok")
}

// DingTalkSign computes DingTalk's robot signature independently of the
// channel package, so tests check one against the other and both against
// DESIGN.md's vector.
func DingTalkSign(timestampMS int64, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	io.WriteString(mac, strconv.FormatInt(timestampMS, 10)+"\n"+secret)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func dingAnswer(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"errcode": code, "errmsg": msg})
}
