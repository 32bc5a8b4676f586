package testsupport

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

// DingTalk is a fake DingTalk group robot. Like the real one it answers
// HTTP 200 with {"errcode","errmsg"} for everything, checks the
// access_token, verifies the signature when it has a secret (rejecting a
// timestamp more than an hour off), throttles past 20 messages a minute
// (130101) and refuses bodies over 20,000 bytes.
type DingTalk struct {
	srv    *httptest.Server
	token  string
	secret string

	mu       sync.Mutex
	now      func() time.Time
	msgs     []DingTalkMessage
	changed  chan struct{} // closed and replaced on every new message
	accepted []time.Time   // for the per-minute limit
	script   []dingFailure
	requests int
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

type dingFailure struct {
	status int // HTTP status; 0 means 200 with the code
	code   int
	msg    string
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
		token:   "ding" + dingRandomHex(),
		secret:  secret,
		now:     time.Now,
		changed: make(chan struct{}),
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// URL is the server's base URL.
func (f *DingTalk) URL() string { return f.srv.URL }

// WebhookURL is the robot's webhook, with its access_token.
func (f *DingTalk) WebhookURL() string {
	return f.srv.URL + "/robot/send?access_token=" + f.token
}

// Token is the robot's access_token, for checks that it never leaks.
func (f *DingTalk) Token() string { return f.token }

// SetNow sets the clock the signature and the rate limit are checked
// against, for fixed-timestamp test vectors.
func (f *DingTalk) SetNow(now func() time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = now
}

// FailNext makes the next n requests answer errcode code with msg.
func (f *DingTalk) FailNext(n, code int, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.script = append(f.script, dingFailure{code: code, msg: msg})
	}
}

// FailNextStatus makes the next n requests answer HTTP status.
func (f *DingTalk) FailNextStatus(n, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.script = append(f.script, dingFailure{status: status})
	}
}

// Requests counts every request received, accepted or not.
func (f *DingTalk) Requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

// Messages returns the messages accepted so far.
func (f *DingTalk) Messages() []DingTalkMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]DingTalkMessage(nil), f.msgs...)
}

// WaitMessages waits until at least n messages were accepted and returns
// them; it fails the test after 10 seconds. Call it from the test
// goroutine.
func (f *DingTalk) WaitMessages(t testing.TB, n int) []DingTalkMessage {
	t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		f.mu.Lock()
		if len(f.msgs) >= n {
			out := append([]DingTalkMessage(nil), f.msgs...)
			f.mu.Unlock()
			return out
		}
		changed, got := f.changed, len(f.msgs)
		f.mu.Unlock()
		select {
		case <-changed:
		case <-timeout.C:
			t.Fatalf("fake dingtalk: %d messages after 10s, want %d", got, n)
		}
	}
}

func (f *DingTalk) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/robot/send" {
		http.NotFound(w, r)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	q := r.URL.Query()

	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	now := f.now()
	if len(f.script) > 0 {
		fail := f.script[0]
		f.script = f.script[1:]
		if fail.status != 0 {
			http.Error(w, http.StatusText(fail.status), fail.status)
			return
		}
		dingAnswer(w, fail.code, fail.msg)
		return
	}
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
		if err != nil || dingAbs(now.Sub(time.UnixMilli(ms))) > time.Hour {
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
	f.accepted = dingWindow(f.accepted, now, time.Minute)
	if len(f.accepted) >= dingPerMinute {
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
	f.accepted = append(f.accepted, now)
	f.msgs = append(f.msgs, msg)
	close(f.changed)
	f.changed = make(chan struct{})
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

// dingWindow drops the times older than per before now.
func dingWindow(times []time.Time, now time.Time, per time.Duration) []time.Time {
	keep := times[:0]
	for _, t := range times {
		if now.Sub(t) < per {
			keep = append(keep, t)
		}
	}
	return keep
}

func dingAbs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// dingRandomHex makes tokens random, so a leak check cannot pass by
// accident (crypto/rand.Read never fails since Go 1.24).
func dingRandomHex() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
