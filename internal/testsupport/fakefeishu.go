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
	"strings"
	"sync"
	"testing"
	"time"
)

// Feishu is a fake Feishu (Lark) group robot. Like the real one it answers
// HTTP 200 with {"code","msg"} for everything, checks the hook id, verifies
// the body's timestamp and sign when it has a secret (rejecting a timestamp
// more than an hour off), limits a robot to 5 messages a second and 100 a
// minute (11232) and refuses bodies over 20 KB.
type Feishu struct {
	srv    *httptest.Server
	hookID string
	secret string

	mu       sync.Mutex
	now      func() time.Time
	msgs     []FeishuMessage
	changed  chan struct{} // closed and replaced on every new message
	accepted []time.Time   // for the per-second and per-minute limits
	script   []feishuFailure
	requests int
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

type feishuFailure struct {
	status int // HTTP status; 0 means 200 with the code
	code   int
	msg    string
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
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails since Go 1.24
	h := hex.EncodeToString(b)
	f := &Feishu{
		hookID:  h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:],
		secret:  secret,
		now:     time.Now,
		changed: make(chan struct{}),
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// URL is the server's base URL.
func (f *Feishu) URL() string { return f.srv.URL }

// WebhookURL is the robot's webhook, /open-apis/bot/v2/hook/{id}.
func (f *Feishu) WebhookURL() string { return f.srv.URL + "/open-apis/bot/v2/hook/" + f.hookID }

// HookID is the credential part of the webhook, for leak checks.
func (f *Feishu) HookID() string { return f.hookID }

// SetNow sets the clock the signature and rate limits are checked against.
func (f *Feishu) SetNow(now func() time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = now
}

// FailNext makes the next n requests answer code with msg.
func (f *Feishu) FailNext(n, code int, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.script = append(f.script, feishuFailure{code: code, msg: msg})
	}
}

// FailNextStatus makes the next n requests answer HTTP status.
func (f *Feishu) FailNextStatus(n, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.script = append(f.script, feishuFailure{status: status})
	}
}

// Requests counts every request received, accepted or not.
func (f *Feishu) Requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

// Messages returns the messages accepted so far.
func (f *Feishu) Messages() []FeishuMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]FeishuMessage(nil), f.msgs...)
}

// WaitMessages waits until at least n messages were accepted and returns
// them; it fails the test after 10 seconds. Call it from the test
// goroutine.
func (f *Feishu) WaitMessages(t testing.TB, n int) []FeishuMessage {
	t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		f.mu.Lock()
		if len(f.msgs) >= n {
			out := append([]FeishuMessage(nil), f.msgs...)
			f.mu.Unlock()
			return out
		}
		changed, got := f.changed, len(f.msgs)
		f.mu.Unlock()
		select {
		case <-changed:
		case <-timeout.C:
			t.Fatalf("fake feishu: %d messages after 10s, want %d", got, n)
		}
	}
}

func (f *Feishu) serve(w http.ResponseWriter, r *http.Request) {
	const prefix = "/open-apis/bot/v2/hook/"
	if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, prefix) {
		http.NotFound(w, r)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))

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
		feishuAnswer(w, fail.code, fail.msg)
		return
	}
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
		if err != nil || feishuAbs(now.Sub(time.Unix(ts, 0))) > time.Hour ||
			!hmac.Equal([]byte(m.Sign), []byte(FeishuSign(ts, f.secret))) {
			feishuAnswer(w, 19021, "sign match fail or timestamp is not within one hour from current time")
			return
		}
	}
	var recent, lastMinute int
	keep := f.accepted[:0]
	for _, t := range f.accepted {
		if now.Sub(t) < time.Minute {
			keep = append(keep, t)
			lastMinute++
			if now.Sub(t) < time.Second {
				recent++
			}
		}
	}
	f.accepted = keep
	if recent >= feishuPerSecond || lastMinute >= feishuPerMinute {
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
	f.accepted = append(f.accepted, now)
	f.msgs = append(f.msgs, msg)
	close(f.changed)
	f.changed = make(chan struct{})
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

func feishuAbs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
