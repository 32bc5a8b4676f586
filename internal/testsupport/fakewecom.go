package testsupport

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
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
	// The application's access tokens: its tokens map each issued token
	// to true, false once expired.
	appFake[WeComMessage, bool]
	key     string
	corpID  string
	secret  string
	agentID int64
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
		appFake: newAppFake[WeComMessage, bool]("wecom", wecomAnswer),
		key:     randomHex(18),
		corpID:  "ww" + randomHex(18)[:16],
		secret:  randomHex(18),
		agentID: 1000002,
	}
	f.start(t, f.serve)
	return f
}

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

// ExpireToken expires every token issued so far: sends with them answer
// 42001, and the next gettoken issues a new one.
func (f *WeCom) ExpireToken() { f.revokeTokens() }

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

func (f *WeCom) serveRobot(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.begin(w) {
		return
	}
	now := f.now()
	if r.URL.Query().Get("key") != f.key {
		wecomAnswer(w, 93000, "invalid webhook url, hint: [1700000000_fake], from ip: 127.0.0.1, more info at https://open.work.weixin.qq.com/devtool/query?e=93000")
		return
	}
	if _, lastMinute := f.rate(now); lastMinute >= wecomPerMinute {
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
	f.accept(now, msg)
	wecomAnswer(w, 0, "ok")
}

func (f *WeCom) serveToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.beginToken(w) {
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
		f.current = "tok" + randomHex(18)
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
	if f.begin(w) {
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

func wecomAnswer(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"errcode": code, "errmsg": msg})
}
