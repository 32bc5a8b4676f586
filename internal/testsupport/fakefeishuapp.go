package testsupport

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FeishuApp is a fake Feishu open platform for one self-built app:
//
//   - POST /open-apis/auth/v3/tenant_access_token/internal with
//     {"app_id","app_secret"} answers {"code":0,"tenant_access_token",
//     "expire"}; like Feishu it hands out the same token while it has 30
//     minutes or more to live, and a new one after (the old stays valid
//     until it expires). A wrong app_id is 10003, a wrong secret 10014.
//   - POST /open-apis/im/v1/messages?receive_id_type=… with
//     "Authorization: Bearer <token>" checks the token (99991661 missing,
//     99991663 invalid or expired), receive_id_type and the body (99992402),
//     the receiver (230001 unknown, 230002 the bot is not in the chat,
//     230013 outside the app's availability), a card body of at most 30 KB
//     (230025), 5 messages a second per receiver (230020) and 50 a second
//     for the app (HTTP 429, 99991400, x-ogw-ratelimit-reset), and sends a
//     uuid's message at most once an hour.
//
// Errors are {"code","msg"} with HTTP 400 (429 for 99991400), as Feishu
// answers them.
type FeishuApp struct {
	// Its tokens map each issued token to its expiry; zero once revoked.
	appFake[FeishuAppMessage, time.Time]
	appID, secret string
	chatID        string
	openID        string

	// robotFake.mu guards the rest.
	receivers   map[string]int // type + ":" + id → 0 ok, or the refusal code
	uuids       map[string]time.Time
	perReceiver map[string][]time.Time
	appSends    []time.Time
}

// FeishuAppMessage is one message the fake sent, decoded.
type FeishuAppMessage struct {
	ReceiveIDType, ReceiveID string
	MsgType                  string
	UUID                     string
	Title, Template, Text    string // the card's header and lark_md texts
	ButtonURL                []string
	Token                    string // the tenant_access_token it came with
	Body                     []byte
}

const (
	feishuAppTokenTTL     = 2 * time.Hour
	feishuAppTokenRenew   = 30 * time.Minute
	feishuAppMaxBody      = 30 << 10
	feishuAppPerReceiver  = 5
	feishuAppPerSecond    = 50
	feishuAppUUIDLifetime = time.Hour
)

// NewFeishuApp starts a fake with a random app id and secret, whose bot is
// in one chat (ChatID) and may message one person (OpenID). It stops when t
// ends.
func NewFeishuApp(t testing.TB) *FeishuApp {
	t.Helper()
	f := &FeishuApp{
		appFake:     newAppFake[FeishuAppMessage, time.Time]("feishu app", feishuAppAnswer),
		appID:       "cli_" + randomHex(8),
		secret:      randomHex(16),
		chatID:      "oc_" + randomHex(16),
		openID:      "ou_" + randomHex(16),
		receivers:   map[string]int{},
		uuids:       map[string]time.Time{},
		perReceiver: map[string][]time.Time{},
	}
	f.receivers["chat_id:"+f.chatID] = 0
	f.receivers["open_id:"+f.openID] = 0
	f.start(t, f.serve)
	return f
}

// AppID is the app's app_id.
func (f *FeishuApp) AppID() string { return f.appID }

// Secret is the app's app_secret.
func (f *FeishuApp) Secret() string { return f.secret }

// ChatID is a chat the app's bot is in.
func (f *FeishuApp) ChatID() string { return f.chatID }

// OpenID is a person the app may message.
func (f *FeishuApp) OpenID() string { return f.openID }

// AddReceiver adds a receiver of a receive_id_type; refusal 0 accepts
// messages, 230002 or 230013 refuses them with that code.
func (f *FeishuApp) AddReceiver(idType, id string, refusal int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.receivers[idType+":"+id] = refusal
}

// RevokeTokens invalidates every token issued so far (as resetting the
// app secret does): sends with them answer 99991663, and the next token
// call issues a new one.
func (f *FeishuApp) RevokeTokens() { f.revokeTokens() }

func (f *FeishuApp) serve(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/open-apis/auth/v3/tenant_access_token/internal":
		f.serveToken(w, r)
	case r.Method == http.MethodPost && r.URL.Path == "/open-apis/im/v1/messages":
		f.serveSend(w, r)
	default:
		feishuAppAnswer(w, 404, "404 page not found")
	}
}

func (f *FeishuApp) serveToken(w http.ResponseWriter, r *http.Request) {
	var in struct {
		AppID     string `json:"app_id"`
		AppSecret string `json:"app_secret"`
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.beginToken(w) {
		return
	}
	now := f.now()
	switch {
	case json.Unmarshal(body, &in) != nil || in.AppID != f.appID:
		feishuAppAnswer(w, 10003, "invalid param")
		return
	case in.AppSecret != f.secret:
		feishuAppAnswer(w, 10014, "app secret invalid")
		return
	}
	if exp, ok := f.tokens[f.current]; !ok || exp.Sub(now) < feishuAppTokenRenew {
		f.current = "t-" + randomHex(20)
		f.tokens[f.current] = now.Add(feishuAppTokenTTL)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(map[string]any{
		"code": 0, "msg": "ok", "tenant_access_token": f.current,
		"expire": int(f.tokens[f.current].Sub(now) / time.Second),
	})
}

func (f *FeishuApp) serveSend(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.begin(w) {
		return
	}
	now := f.now()
	tok, hasBearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !hasBearer || tok == "" {
		feishuAppAnswer(w, 99991661, "Missing access token for authorization. Please make a request with token attached.")
		return
	}
	if exp, ok := f.tokens[tok]; !ok || !now.Before(exp) {
		feishuAppAnswer(w, 99991663, "Invalid access token for authorization. Please make a request with token attached.")
		return
	}
	idType := r.URL.Query().Get("receive_id_type")
	var in struct {
		ReceiveID string `json:"receive_id"`
		MsgType   string `json:"msg_type"`
		Content   string `json:"content"`
		UUID      string `json:"uuid"`
	}
	switch idType {
	case "chat_id", "open_id", "user_id", "union_id", "email":
	default:
		feishuAppAnswer(w, 99992402, "field validation failed")
		return
	}
	if json.Unmarshal(body, &in) != nil || in.ReceiveID == "" || in.Content == "" || len(in.UUID) > 50 {
		feishuAppAnswer(w, 99992402, "field validation failed")
		return
	}
	if len(body) > feishuAppMaxBody {
		feishuAppAnswer(w, 230025, "The length of the message content reaches its limit.")
		return
	}
	refusal, known := f.receivers[idType+":"+in.ReceiveID]
	switch {
	case !known:
		feishuAppAnswer(w, 230001, "Your request contains an invalid request parameter, ext=invalid receive_id")
		return
	case refusal == 230002:
		feishuAppAnswer(w, 230002, "Bot can NOT be out of the chat.")
		return
	case refusal == 230013:
		feishuAppAnswer(w, 230013, "Bot has NO availability to this user.")
		return
	}
	msg := FeishuAppMessage{ReceiveIDType: idType, ReceiveID: in.ReceiveID, MsgType: in.MsgType, UUID: in.UUID, Token: tok, Body: body}
	switch in.MsgType {
	case "interactive":
		var card struct {
			Header struct {
				Title struct {
					Content string `json:"content"`
				} `json:"title"`
				Template string `json:"template"`
			} `json:"header"`
			Elements []struct {
				Text *struct {
					Content string `json:"content"`
				} `json:"text"`
				Actions []struct {
					URL string `json:"url"`
				} `json:"actions"`
			} `json:"elements"`
		}
		if json.Unmarshal([]byte(in.Content), &card) != nil || len(card.Elements) == 0 {
			feishuAppAnswer(w, 230099, "Failed to create card content")
			return
		}
		msg.Title, msg.Template = card.Header.Title.Content, card.Header.Template
		var texts []string
		for _, e := range card.Elements {
			if e.Text != nil {
				texts = append(texts, e.Text.Content)
			}
			for _, a := range e.Actions {
				msg.ButtonURL = append(msg.ButtonURL, a.URL)
			}
		}
		msg.Text = strings.Join(texts, "\n")
	case "text":
		var c struct {
			Text string `json:"text"`
		}
		if json.Unmarshal([]byte(in.Content), &c) != nil || c.Text == "" {
			feishuAppAnswer(w, 230001, "Your request contains an invalid request parameter, ext=invalid content")
			return
		}
		msg.Text = c.Text
	default:
		feishuAppAnswer(w, 230001, "Your request contains an invalid request parameter, ext=invalid msg_type")
		return
	}
	if at, ok := f.uuids[in.UUID]; in.UUID != "" && ok && now.Sub(at) < feishuAppUUIDLifetime {
		// The same request again: Feishu answers as it did and sends
		// nothing new.
		feishuAppSuccess(w, in.UUID, in.MsgType)
		return
	}
	if n := countSince(&f.appSends, now, time.Second); n >= feishuAppPerSecond {
		feishuAppAnswer(w, 99991400, "request trigger frequency limit")
		return
	}
	key := idType + ":" + in.ReceiveID
	times := f.perReceiver[key]
	if countSince(&times, now, time.Second) >= feishuAppPerReceiver {
		f.perReceiver[key] = times
		feishuAppAnswer(w, 230020, "This operation triggers the frequency limit.")
		return
	}
	f.perReceiver[key] = append(times, now)
	f.appSends = append(f.appSends, now)
	if in.UUID != "" {
		f.uuids[in.UUID] = now
	}
	f.record(msg)
	feishuAppSuccess(w, in.UUID, in.MsgType)
}

// countSince forgets the times older than window before now and counts
// the rest.
func countSince(times *[]time.Time, now time.Time, window time.Duration) int {
	keep := (*times)[:0]
	for _, t := range *times {
		if now.Sub(t) < window {
			keep = append(keep, t)
		}
	}
	*times = keep
	return len(keep)
}

func feishuAppSuccess(w http.ResponseWriter, uuid, msgType string) {
	id := "om_" + randomHex(16)
	if uuid != "" {
		id = "om_" + uuid
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(map[string]any{"code": 0, "msg": "success", "data": map[string]any{
		"message_id": id, "msg_type": msgType, "create_time": strconv.FormatInt(time.Now().UnixMilli(), 10),
	}})
}

// feishuAppAnswer is Feishu's error body, with HTTP 400 as the open APIs
// answer, 429 for the frequency limit.
func feishuAppAnswer(w http.ResponseWriter, code int, msg string) {
	status := http.StatusBadRequest
	switch {
	case code == 99991400:
		status = http.StatusTooManyRequests
		w.Header().Set("x-ogw-ratelimit-limit", "50")
		w.Header().Set("x-ogw-ratelimit-reset", "2")
	case code == 404:
		status, code = http.StatusNotFound, 404
	case code >= 1500 && code < 1600:
		status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"code": code, "msg": msg})
}
