package testsupport

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
)

// Telegram is a fake Telegram Bot API (the api_base_url of a bot) serving
// sendMessage. Like the real one it answers {"ok":true,"result":{…}} or
// {"ok":false,"error_code","description"} with the same HTTP status:
// 404 "Not Found" for a malformed token, 401 "Unauthorized" for a wrong
// one, 400 "Bad Request: chat not found" for a chat the bot is not in,
// "message text is empty", "message thread not found", "message is too
// long" (over 4096 UTF-16 code units after entities are parsed), and
// "can't parse entities: …" when MarkdownV2 is not escaped the way
// https://core.telegram.org/bots/api#markdownv2-style demands. It allows
// a bot one message a second in a chat and 20 a minute in a group,
// answering 429 "Too Many Requests: retry after N" with
// parameters.retry_after.
//
// FailNext(n, error_code, description) scripts refusals; a 429 carries
// parameters.retry_after 3, and a description mentioning an upgraded group
// carries parameters.migrate_to_chat_id.
type Telegram struct {
	robotFake[TelegramMessage]
	token   string
	chats   map[string]bool
	threads map[string]bool // chat + "/" + thread id
	perChat map[string][]time.Time
}

// TelegramMessage is one message the fake sent, decoded.
type TelegramMessage struct {
	ChatID   string
	ThreadID int64
	// Markdown is the text as sent; Text is what the chat shows, entities
	// parsed; Bold and Links are the entities.
	Markdown, Text  string
	ParseMode       string
	Bold            []string
	Links           []TelegramLink
	PreviewDisabled bool
	Body            []byte
}

// TelegramLink is an inline link of a message.
type TelegramLink struct{ Text, URL string }

const (
	telegramMaxText        = 4096
	telegramGroupPerMinute = 20
	telegramMigratedChat   = -1009876543210
)

// NewTelegram starts a fake Bot API for one bot with a random token, a
// member of one group (ChatID). It stops when t ends.
func NewTelegram(t testing.TB) *Telegram {
	t.Helper()
	f := &Telegram{
		robotFake: newRobotFake[TelegramMessage]("telegram", telegramScripted),
		token:     "7123456789:AA" + randomHex(17),
		chats:     map[string]bool{"-1001234567890": true},
		threads:   map[string]bool{},
		perChat:   map[string][]time.Time{},
	}
	f.start(t, f.serve)
	return f
}

// Token is the bot's token.
func (f *Telegram) Token() string { return f.token }

// ChatID is the group the bot is a member of.
func (f *Telegram) ChatID() string { return "-1001234567890" }

// AddChat makes the bot a member of another chat (an id or @username).
func (f *Telegram) AddChat(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.chats[id] = true
}

// AddThread opens a forum topic in a chat.
func (f *Telegram) AddThread(chatID string, thread int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.threads[chatID+"/"+strconv.FormatInt(thread, 10)] = true
}

var telegramToken = regexp.MustCompile(`^[0-9]+:[A-Za-z0-9_-]+$`)

func (f *Telegram) serve(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/bot")
	token, method, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 || !telegramToken.MatchString(token) {
		telegramFail(w, 404, "Not Found", nil)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))

	f.mu.Lock()
	defer f.mu.Unlock()
	if token != f.token {
		telegramFail(w, 401, "Unauthorized", nil)
		return
	}
	if method != "sendMessage" {
		telegramFail(w, 404, "Not Found", nil)
		return
	}
	if f.begin(w) {
		return
	}
	now := f.now()
	var in struct {
		ChatID             json.RawMessage `json:"chat_id"`
		MessageThreadID    int64           `json:"message_thread_id"`
		Text               string          `json:"text"`
		ParseMode          string          `json:"parse_mode"`
		LinkPreviewOptions struct {
			IsDisabled bool `json:"is_disabled"`
		} `json:"link_preview_options"`
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" || json.Unmarshal(body, &in) != nil {
		telegramFail(w, 400, "Bad Request: chat_id is empty", nil)
		return
	}
	chat := string(bytes.Trim(bytes.TrimSpace(in.ChatID), `"`))
	switch {
	case chat == "" || chat == "null":
		telegramFail(w, 400, "Bad Request: chat_id is empty", nil)
		return
	case !f.chats[chat]:
		telegramFail(w, 400, "Bad Request: chat not found", nil)
		return
	case in.MessageThreadID != 0 && !f.threads[chat+"/"+strconv.FormatInt(in.MessageThreadID, 10)]:
		telegramFail(w, 400, "Bad Request: message thread not found", nil)
		return
	case strings.TrimSpace(in.Text) == "":
		telegramFail(w, 400, "Bad Request: message text is empty", nil)
		return
	}
	msg := TelegramMessage{
		ChatID: chat, ThreadID: in.MessageThreadID, Markdown: in.Text, Text: in.Text,
		ParseMode: in.ParseMode, PreviewDisabled: in.LinkPreviewOptions.IsDisabled, Body: body,
	}
	switch in.ParseMode {
	case "":
	case "MarkdownV2":
		text, bold, links, err := ParseMarkdownV2(in.Text)
		if err != "" {
			telegramFail(w, 400, "Bad Request: can't parse entities: "+err, nil)
			return
		}
		msg.Text, msg.Bold, msg.Links = text, bold, links
	default:
		telegramFail(w, 400, "Bad Request: unsupported parse_mode", nil)
		return
	}
	if len(utf16.Encode([]rune(msg.Text))) > telegramMaxText {
		telegramFail(w, 400, "Bad Request: message is too long", nil)
		return
	}
	if wait := f.limited(chat, now); wait > 0 {
		secs := int64((wait + time.Second - 1) / time.Second)
		telegramFail(w, 429, fmt.Sprintf("Too Many Requests: retry after %d", secs), map[string]any{"retry_after": secs})
		return
	}
	f.perChat[chat] = append(f.perChat[chat], now)
	f.record(msg)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"ok": true, "result": map[string]any{
		"message_id": len(f.msgs), "date": now.Unix(), "chat": map[string]any{"id": chat}, "text": msg.Text,
	}})
}

// limited says how long until the bot may send to chat again: a second
// after its last message there, and for groups (negative ids) a minute
// after the 20th last; mu is held.
func (f *Telegram) limited(chat string, now time.Time) time.Duration {
	var keep []time.Time
	for _, t := range f.perChat[chat] {
		if now.Sub(t) < time.Minute {
			keep = append(keep, t)
		}
	}
	f.perChat[chat] = keep
	var wait time.Duration
	if n := len(keep); n > 0 && now.Sub(keep[n-1]) < time.Second {
		wait = keep[n-1].Add(time.Second).Sub(now)
	}
	if strings.HasPrefix(chat, "-") && len(keep) >= telegramGroupPerMinute {
		wait = max(wait, keep[len(keep)-telegramGroupPerMinute].Add(time.Minute).Sub(now))
	}
	return wait
}

func telegramScripted(w http.ResponseWriter, code int, description string) {
	params := map[string]any{}
	if code == 429 {
		params["retry_after"] = 3
	}
	if strings.Contains(description, "upgraded to a supergroup") {
		params["migrate_to_chat_id"] = telegramMigratedChat
	}
	telegramFail(w, code, description, params)
}

func telegramFail(w http.ResponseWriter, code int, description string, params map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	body := map[string]any{"ok": false, "error_code": code, "description": description}
	if len(params) > 0 {
		body["parameters"] = params
	}
	json.NewEncoder(w).Encode(body)
}

// ParseMarkdownV2 parses text the way Telegram does for parse_mode
// MarkdownV2, independently of the channel package: it returns the text as
// the chat shows it, the bold parts and the inline links, or Telegram's
// complaint when the text breaks the rules (a reserved character not
// escaped, an entity not closed). Entities: *bold*, _italic_, __underline__,
// ~strike~, ||spoiler||, `code`, ```pre```, [text](url), and > quotes at
// the start of a line.
func ParseMarkdownV2(s string) (text string, bold []string, links []TelegramLink, problem string) {
	type open struct {
		kind  string
		at    int // byte offset in s, for messages
		start int // byte offset in the output
	}
	var out strings.Builder
	var stack []open
	names := map[string]string{"bold": "Bold", "italic": "Italic", "underline": "Underline", "strike": "Strikethrough", "spoiler": "Spoiler", "link": "TextUrl"}
	toggle := func(kind string, at int) string {
		if n := len(stack); n > 0 && stack[n-1].kind == kind {
			if kind == "bold" {
				bold = append(bold, out.String()[stack[n-1].start:])
			}
			stack = stack[:n-1]
			return ""
		}
		for _, o := range stack {
			if o.kind == kind {
				return fmt.Sprintf("Can't find end of %s entity at byte offset %d", names[kind], o.at)
			}
		}
		stack = append(stack, open{kind: kind, at: at, start: out.Len()})
		return ""
	}
	reserved := "_*[]()~`>#+-=|{}.!"
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			if i+1 >= len(s) || s[i+1] < 1 || s[i+1] > 126 {
				return "", nil, nil, fmt.Sprintf("Character '\\' is reserved and must be escaped with the preceding '\\' at byte offset %d", i)
			}
			out.WriteByte(s[i+1])
			i += 2
		case c == '*':
			if p := toggle("bold", i); p != "" {
				return "", nil, nil, p
			}
			i++
		case c == '_' && strings.HasPrefix(s[i:], "__"):
			if p := toggle("underline", i); p != "" {
				return "", nil, nil, p
			}
			i += 2
		case c == '_':
			if p := toggle("italic", i); p != "" {
				return "", nil, nil, p
			}
			i++
		case c == '~':
			if p := toggle("strike", i); p != "" {
				return "", nil, nil, p
			}
			i++
		case c == '|' && strings.HasPrefix(s[i:], "||"):
			if p := toggle("spoiler", i); p != "" {
				return "", nil, nil, p
			}
			i += 2
		case c == '`':
			fence := "`"
			if strings.HasPrefix(s[i:], "```") {
				fence = "```"
			}
			j := i + len(fence)
			for ; j < len(s) && !strings.HasPrefix(s[j:], fence); j++ {
				if s[j] == '\\' && j+1 < len(s) && (s[j+1] == '`' || s[j+1] == '\\') {
					out.WriteByte(s[j+1])
					j++
					continue
				}
				out.WriteByte(s[j])
			}
			if j >= len(s) {
				kind := "Code"
				if fence == "```" {
					kind = "Pre"
				}
				return "", nil, nil, fmt.Sprintf("Can't find end of %s entity at byte offset %d", kind, i)
			}
			i = j + len(fence)
		case c == '[':
			stack = append(stack, open{kind: "link", at: i, start: out.Len()})
			i++
		case c == ']' && len(stack) > 0 && stack[len(stack)-1].kind == "link":
			o := stack[len(stack)-1]
			if i+1 >= len(s) || s[i+1] != '(' {
				return "", nil, nil, fmt.Sprintf("Can't find end of the entity starting at byte offset %d", o.at)
			}
			var u strings.Builder
			j := i + 2
			for ; j < len(s) && s[j] != ')'; j++ {
				if s[j] == '\\' && j+1 < len(s) && (s[j+1] == ')' || s[j+1] == '\\') {
					j++
				}
				u.WriteByte(s[j])
			}
			if j >= len(s) {
				return "", nil, nil, fmt.Sprintf("Can't find end of a url at byte offset %d", i+2)
			}
			links = append(links, TelegramLink{Text: out.String()[o.start:], URL: u.String()})
			stack = stack[:len(stack)-1]
			i = j + 1
		case c == '>' && (i == 0 || s[i-1] == '\n'):
			i++ // a quote line
		case strings.IndexByte(reserved, c) >= 0:
			return "", nil, nil, fmt.Sprintf("Character '%c' is reserved and must be escaped with the preceding '\\'", c)
		default:
			out.WriteByte(c)
			i++
		}
	}
	if n := len(stack); n > 0 {
		return "", nil, nil, fmt.Sprintf("Can't find end of %s entity at byte offset %d", names[stack[n-1].kind], stack[n-1].at)
	}
	return out.String(), bold, links, ""
}
