package testsupport

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// WeCom is a fake WeCom (企业微信) serving both ways Herald sends:
//
//   - the group robot, POST /cgi-bin/webhook/send?key=K: checks the key
//     (93000), the message type (40008), empty (44004) and oversized
//     content (markdown 4096, text 2048 bytes: 40058), and 20 messages a
//     minute (45009);
//   - the application API: GET /cgi-bin/gettoken?corpid=&corpsecret=
//     (40013, 40001) and POST /cgi-bin/message/send?access_token=T (40014
//     for an unknown token, 42001 for an expired one, agent id and 2048
//     bytes of markdown checked).
//
// Like the real one it answers HTTP 200 with {"errcode","errmsg"}.
type WeCom struct {
	srv     *httptest.Server
	key     string
	corpID  string
	secret  string
	agentID int64

	mu          sync.Mutex
	now         func() time.Time
	msgs        []WeComMessage
	changed     chan struct{} // closed and replaced on every new message
	accepted    []time.Time   // robot messages, for the per-minute limit
	script      []wecomFailure
	tokenScript []wecomFailure
	tokens      map[string]bool // issued tokens; false once expired
	current     string          // what gettoken answers while valid
	tokenCalls  int
	requests    int
}

// WeComMessage is one message the fake accepted, decoded.
type WeComMessage struct {
	Via                 string // "robot" or "app"
	MsgType             string
	Content             string // markdown.content or text.content
	MentionedList       []string
	MentionedMobileList []string
	ToUser              string // app only
	AgentID             int64  // app only
	Body                []byte
}

type wecomFailure struct {
	status int // HTTP status; 0 means 200 with the code
	code   int
	msg    string
}

const (
	wecomPerMinute     = 20
	wecomRobotMarkdown = 4096
	wecomText          = 2048
	wecomAppMarkdown   = 2048
	wecomTokenTTL      = 7200
)

// NewWeCom starts a fake with a random robot key, corp id and application
// secret, and agent id 1000002. It stops when t ends.
func NewWeCom(t testing.TB) *WeCom {
	t.Helper()
	f := &WeCom{
		key:     wecomRandomHex(),
		corpID:  "ww" + wecomRandomHex()[:16],
		secret:  wecomRandomHex(),
		agentID: 1000002,
		now:     time.Now,
		changed: make(chan struct{}),
		tokens:  map[string]bool{},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// URL is the API base, for api_base_url.
func (f *WeCom) URL() string { return f.srv.URL }

// WebhookURL is the group robot's webhook, with its key.
func (f *WeCom) WebhookURL() string { return f.srv.URL + "/cgi-bin/webhook/send?key=" + f.key }

// Key is the robot's key, the credential part of WebhookURL.
func (f *WeCom) Key() string { return f.key }

// CorpID is the application's corp_id.
func (f *WeCom) CorpID() string { return f.corpID }

// Secret is the application's secret.
func (f *WeCom) Secret() string { return f.secret }

// AgentID is the application's agent_id.
func (f *WeCom) AgentID() int64 { return f.agentID }

// SetNow sets the clock the robot's rate limit is counted against.
func (f *WeCom) SetNow(now func() time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = now
}

// AccessTokens lists every token gettoken issued, for leak checks.
func (f *WeCom) AccessTokens() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.tokens))
	for t := range f.tokens {
		out = append(out, t)
	}
	return out
}

// TokenRequests counts gettoken calls.
func (f *WeCom) TokenRequests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokenCalls
}

// Requests counts message sends received (robot and app), accepted or not.
func (f *WeCom) Requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

// ExpireToken expires every token issued so far: sends with them answer
// 42001, and the next gettoken issues a new one.
func (f *WeCom) ExpireToken() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for t := range f.tokens {
		f.tokens[t] = false
	}
	f.current = ""
}

// FailNext makes the next n message sends (robot or app) answer errcode
// code with msg.
func (f *WeCom) FailNext(n, code int, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.script = append(f.script, wecomFailure{code: code, msg: msg})
	}
}

// FailNextStatus makes the next n message sends answer HTTP status.
func (f *WeCom) FailNextStatus(n, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.script = append(f.script, wecomFailure{status: status})
	}
}

// FailNextToken makes the next n gettoken calls answer errcode code.
func (f *WeCom) FailNextToken(n, code int, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.tokenScript = append(f.tokenScript, wecomFailure{code: code, msg: msg})
	}
}

// Messages returns the messages accepted so far.
func (f *WeCom) Messages() []WeComMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]WeComMessage(nil), f.msgs...)
}

// WaitMessages waits until at least n messages were accepted and returns
// them; it fails the test after 10 seconds. Call it from the test
// goroutine.
func (f *WeCom) WaitMessages(t testing.TB, n int) []WeComMessage {
	t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		f.mu.Lock()
		if len(f.msgs) >= n {
			out := append([]WeComMessage(nil), f.msgs...)
			f.mu.Unlock()
			return out
		}
		changed, got := f.changed, len(f.msgs)
		f.mu.Unlock()
		select {
		case <-changed:
		case <-timeout.C:
			t.Fatalf("fake wecom: %d messages after 10s, want %d", got, n)
		}
	}
}

func (f *WeCom) serve(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/cgi-bin/webhook/send":
		f.serveRobot(w, r)
	case r.Method == http.MethodGet && r.URL.Path == "/cgi-bin/gettoken":
		f.serveToken(w, r)
	case r.Method == http.MethodPost && r.URL.Path == "/cgi-bin/message/send":
		f.serveAppSend(w, r)
	default:
		http.NotFound(w, r)
	}
}

type wecomBody struct {
	MsgType  string `json:"msgtype"`
	ToUser   string `json:"touser"`
	AgentID  int64  `json:"agentid"`
	Markdown struct {
		Content string `json:"content"`
	} `json:"markdown"`
	Text struct {
		Content             string   `json:"content"`
		MentionedList       []string `json:"mentioned_list"`
		MentionedMobileList []string `json:"mentioned_mobile_list"`
	} `json:"text"`
}

// scripted answers a scripted failure, if any; f.mu is held.
func (f *WeCom) scripted(w http.ResponseWriter, script *[]wecomFailure) bool {
	if len(*script) == 0 {
		return false
	}
	fail := (*script)[0]
	*script = (*script)[1:]
	if fail.status != 0 {
		http.Error(w, http.StatusText(fail.status), fail.status)
	} else {
		wecomAnswer(w, fail.code, fail.msg)
	}
	return true
}

func (f *WeCom) serveRobot(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	now := f.now()
	if f.scripted(w, &f.script) {
		return
	}
	if r.URL.Query().Get("key") != f.key {
		wecomAnswer(w, 93000, "invalid webhook url, hint: [1700000000_fake], from ip: 127.0.0.1, more info at https://open.work.weixin.qq.com/devtool/query?e=93000")
		return
	}
	keep := f.accepted[:0]
	for _, t := range f.accepted {
		if now.Sub(t) < time.Minute {
			keep = append(keep, t)
		}
	}
	f.accepted = keep
	if len(f.accepted) >= wecomPerMinute {
		wecomAnswer(w, 45009, "api freq out of limit, hint: [1700000000_fake]")
		return
	}
	var m wecomBody
	if err := json.Unmarshal(body, &m); err != nil {
		wecomAnswer(w, 40008, "invalid message type, hint: [1700000000_fake]")
		return
	}
	msg := WeComMessage{Via: "robot", MsgType: m.MsgType, Body: body}
	switch m.MsgType {
	case "markdown":
		msg.Content = m.Markdown.Content
		if len(msg.Content) > wecomRobotMarkdown {
			wecomAnswer(w, 40058, "markdown.content exceed max length 4096")
			return
		}
	case "text":
		msg.Content = m.Text.Content
		msg.MentionedList, msg.MentionedMobileList = m.Text.MentionedList, m.Text.MentionedMobileList
		if len(msg.Content) > wecomText {
			wecomAnswer(w, 40058, "text.content exceed max length 2048")
			return
		}
	default:
		wecomAnswer(w, 40008, "invalid message type, hint: [1700000000_fake]")
		return
	}
	if msg.Content == "" {
		wecomAnswer(w, 44004, "empty content, hint: [1700000000_fake]")
		return
	}
	f.accepted = append(f.accepted, now)
	f.record(msg)
	wecomAnswer(w, 0, "ok")
}

func (f *WeCom) serveToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokenCalls++
	if f.scripted(w, &f.tokenScript) {
		return
	}
	if q.Get("corpid") != f.corpID {
		wecomAnswer(w, 40013, "invalid corpid, hint: [1700000000_fake]")
		return
	}
	if q.Get("corpsecret") != f.secret {
		wecomAnswer(w, 40001, "invalid credential, hint: [1700000000_fake]")
		return
	}
	// Like WeCom, a token is handed out again while it is valid.
	if f.current == "" {
		f.current = "tok" + wecomRandomHex()
		f.tokens[f.current] = true
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"errcode": 0, "errmsg": "ok", "access_token": f.current, "expires_in": wecomTokenTTL,
	})
}

func (f *WeCom) serveAppSend(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	if f.scripted(w, &f.script) {
		return
	}
	valid, known := f.tokens[r.URL.Query().Get("access_token")]
	switch {
	case !known:
		wecomAnswer(w, 40014, "invalid access_token, hint: [1700000000_fake]")
		return
	case !valid:
		wecomAnswer(w, 42001, "access_token expired, hint: [1700000000_fake]")
		return
	}
	var m wecomBody
	if err := json.Unmarshal(body, &m); err != nil || m.MsgType != "markdown" {
		wecomAnswer(w, 40008, "invalid message type, hint: [1700000000_fake]")
		return
	}
	if m.AgentID != f.agentID {
		wecomAnswer(w, 40056, "invalid agentid, hint: [1700000000_fake]")
		return
	}
	if m.ToUser == "" {
		wecomAnswer(w, 81013, "user & party & tag all invalid, hint: [1700000000_fake]")
		return
	}
	if m.Markdown.Content == "" {
		wecomAnswer(w, 44004, "empty content, hint: [1700000000_fake]")
		return
	}
	if len(m.Markdown.Content) > wecomAppMarkdown {
		wecomAnswer(w, 40058, "markdown.content exceed max length 2048")
		return
	}
	f.record(WeComMessage{
		Via: "app", MsgType: m.MsgType, Content: m.Markdown.Content,
		ToUser: m.ToUser, AgentID: m.AgentID, Body: body,
	})
	wecomAnswer(w, 0, "ok")
}

// record keeps an accepted message and wakes waiters; f.mu is held.
func (f *WeCom) record(m WeComMessage) {
	f.msgs = append(f.msgs, m)
	close(f.changed)
	f.changed = make(chan struct{})
}

func wecomAnswer(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"errcode": code, "errmsg": msg})
}

// wecomRandomHex makes keys, secrets and tokens random, so a leak check
// cannot pass by accident (crypto/rand.Read never fails since Go 1.24).
func wecomRandomHex() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
