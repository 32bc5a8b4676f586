package testsupport

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Feishu is a fake Feishu (Lark) group robot. Like the real one it answers
// HTTP 200 with {"code","msg"} for everything, checks the hook id, verifies
// the body's timestamp and sign when it has a secret (rejecting a timestamp
// more than an hour off), limits a robot to 5 messages a second and 100 a
// minute (11232) and refuses bodies over 20 KB.
type Feishu struct {
	robotFake[FeishuMessage]
	hookID string
	secret string
}

// FeishuMessage is one message the fake accepted, decoded.
type FeishuMessage struct {
	MsgType   string
	Title     string   // card header title
	Template  string   // card header colour
	Text      string   // the lark_md contents of the card's divs, joined by "\n"
	ButtonURL []string // the URLs of the card's buttons
	Timestamp string
	Sign      string
	Body      []byte
}

const (
	feishuMaxBody   = 20 << 10
	feishuPerSecond = 5
	feishuPerMinute = 100
)

// NewFeishu starts a fake robot; secret "" means no signing. It stops when
// t ends.
func NewFeishu(t testing.TB, secret string) *Feishu {
	t.Helper()
	h := randomHex(16)
	f := &Feishu{
		robotFake: newRobotFake[FeishuMessage]("feishu", feishuAnswer),
		hookID:    h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:],
		secret:    secret,
	}
	f.start(t, f.serve)
	return f
}

// WebhookURL is the robot's webhook, /open-apis/bot/v2/hook/{id}.
func (f *Feishu) WebhookURL() string { return f.srv.URL + "/open-apis/bot/v2/hook/" + f.hookID }

// HookID is the credential part of the webhook, for leak checks.
func (f *Feishu) HookID() string { return f.hookID }

func (f *Feishu) serve(w http.ResponseWriter, r *http.Request) {
	const prefix = "/open-apis/bot/v2/hook/"
	if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, prefix) {
		http.NotFound(w, r)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))

	f.mu.Lock()
	defer f.mu.Unlock()
	if f.begin(w) {
		return
	}
	now := f.now()
	if strings.TrimPrefix(r.URL.Path, prefix) != f.hookID {
		feishuAnswer(w, 19001, "param invalid: incoming webhook access token invalid")
		return
	}
	if len(body) > feishuMaxBody {
		feishuAnswer(w, 9499, "Bad Request: request body exceeds 20 KB")
		return
	}
	var m struct {
		Timestamp string `json:"timestamp"`
		Sign      string `json:"sign"`
		MsgType   string `json:"msg_type"`
		Card      struct {
			Header struct {
				Title struct {
					Content string `json:"content"`
				} `json:"title"`
				Template string `json:"template"`
			} `json:"header"`
			Elements []struct {
				Tag  string `json:"tag"`
				Text *struct {
					Tag     string `json:"tag"`
					Content string `json:"content"`
				} `json:"text"`
				Actions []struct {
					URL string `json:"url"`
				} `json:"actions"`
			} `json:"elements"`
		} `json:"card"`
		Content struct {
			Text string `json:"text"`
		} `json:"content"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		feishuAnswer(w, 9499, "Bad Request")
		return
	}
	if f.secret != "" {
		ts, err := strconv.ParseInt(m.Timestamp, 10, 64)
		if err != nil || absDuration(now.Sub(time.Unix(ts, 0))) > time.Hour ||
			!hmac.Equal([]byte(m.Sign), []byte(FeishuSign(ts, f.secret))) {
			feishuAnswer(w, 19021, "sign match fail or timestamp is not within one hour from current time")
			return
		}
	}
	if lastSecond, lastMinute := f.rate(now); lastSecond >= feishuPerSecond || lastMinute >= feishuPerMinute {
		feishuAnswer(w, 11232, "frequency limited psm[lark.oapi.app_platform_runtime]appID[1]")
		return
	}
	msg := FeishuMessage{MsgType: m.MsgType, Timestamp: m.Timestamp, Sign: m.Sign, Body: body}
	switch m.MsgType {
	case "interactive":
		msg.Title, msg.Template = m.Card.Header.Title.Content, m.Card.Header.Template
		var texts []string
		for _, e := range m.Card.Elements {
			if e.Text != nil {
				texts = append(texts, e.Text.Content)
			}
			for _, a := range e.Actions {
				msg.ButtonURL = append(msg.ButtonURL, a.URL)
			}
		}
		msg.Text = strings.Join(texts, "\n")
		if msg.Title == "" && msg.Text == "" {
			feishuAnswer(w, 9499, "Bad Request: card is empty")
			return
		}
	case "text":
		msg.Text = m.Content.Text
	default:
		feishuAnswer(w, 9499, "params error, msg_type need")
		return
	}
	f.accept(now, msg)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"StatusCode": 0, "StatusMessage": "success", "code": 0, "data": map[string]any{}, "msg": "success",
	})
}

// FeishuSign computes Feishu's robot signature independently of the
// channel package: HMAC-SHA256 keyed by timestamp+"\n"+secret over nothing.
func FeishuSign(timestamp int64, secret string) string {
	mac := hmac.New(sha256.New, []byte(strconv.FormatInt(timestamp, 10)+"\n"+secret))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func feishuAnswer(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"code": code, "data": map[string]any{}, "msg": msg})
}
