package testsupport

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"
	"unicode/utf8"
)

// Discord is a fake Discord webhook, served over TLS. Like Discord it
// answers 204 No Content to a message it posts (200 with the message when
// the URL asks ?wait=true), and refuses with a status and
// {"message","code"}: an unknown webhook (404, 10015), a wrong token (401,
// 50027), a body that is not JSON (400, 50109), nothing to post (400,
// 50006), and embeds breaking Discord's limits (400 "Invalid Form Body",
// 50035: at most 10 embeds, a title of at most 256 characters, at most 25
// fields with a name of 1 to 256 and a value of 1 to 1024 characters, at
// most 6000 characters in all, a colour up to 0xFFFFFF).
//
// It rate-limits like Discord: 5 requests per 2 seconds per webhook and 30
// messages a minute per channel, answering 429 with
// {"message","retry_after" (seconds, with a fraction),"global":false} and
// the Retry-After and X-RateLimit-Scope headers.
//
// FailNext(n, code, message) scripts Discord error codes; code 429 scripts
// a rate limit.
type Discord struct {
	robotFake[DiscordMessage]
	id, token string
	sends     []time.Time // accepted, for the 2-second and 1-minute windows
}

// DiscordMessage is one message the fake posted, decoded.
type DiscordMessage struct {
	Content string
	Embeds  []DiscordEmbed
	// AllowedMentions is allowed_mentions.parse; nil when the message set
	// no allowed_mentions (everything in it would ping).
	AllowedMentions []string
	// AllowedUsers and AllowedRoles are allowed_mentions.users and .roles:
	// the ids whose mentions in content ping.
	AllowedUsers, AllowedRoles []string
	Wait                       bool
	Body                       []byte
}

// DiscordEmbed is one embed of a message.
type DiscordEmbed struct {
	Title       string         `json:"title"`
	Description string         `json:"description"`
	URL         string         `json:"url"`
	Color       int            `json:"color"`
	Fields      []DiscordField `json:"fields"`
	Timestamp   string         `json:"timestamp"`
}

// DiscordField is one field of an embed.
type DiscordField struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Inline bool   `json:"inline"`
}

const (
	discordWebhookLimit  = 5
	discordWebhookWindow = 2 * time.Second
	discordChannelLimit  = 30
	discordChannelWindow = time.Minute
)

var discordStatus = map[int]int{10015: 404, 50027: 401, 50001: 403, 50013: 403, 50035: 400, 50006: 400, 50109: 400}

// NewDiscord starts a fake webhook with a random id and token. It stops
// when t ends.
func NewDiscord(t testing.TB) *Discord {
	t.Helper()
	f := &Discord{
		robotFake: newRobotFake[DiscordMessage]("discord", nil),
		id:        discordSnowflake(),
		token:     randomHex(24) + "-_",
	}
	f.answer = f.scriptedAnswer
	f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// discordSnowflake is a random id of Discord's shape (digits).
func discordSnowflake() string {
	n, _ := strconv.ParseUint(randomHex(7), 16, 64)
	return fmt.Sprintf("1%017d", n)
}

// WebhookURL is the webhook, https://…/api/webhooks/{id}/{token}.
func (f *Discord) WebhookURL() string { return f.srv.URL + "/api/webhooks/" + f.id + "/" + f.token }

// Token is the credential part of WebhookURL, for leak checks.
func (f *Discord) Token() string { return f.token }

// Client reaches the fake over TLS like Herald's own client.
func (f *Discord) Client() *http.Client { return tlsClient(f.srv) }

var discordPath = regexp.MustCompile(`^/api(?:/v[0-9]+)?/webhooks/([^/]+)/([^/]+)$`)

func (f *Discord) serve(w http.ResponseWriter, r *http.Request) {
	m := discordPath.FindStringSubmatch(r.URL.Path)
	if r.Method != http.MethodPost || m == nil {
		discordAnswer(w, 404, map[string]any{"message": "404: Not Found", "code": 0})
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))

	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case m[1] != f.id:
		discordError(w, 10015, "Unknown Webhook")
		return
	case m[2] != f.token:
		discordError(w, 50027, "Invalid Webhook Token")
		return
	}
	if f.begin(w) {
		return
	}
	now := f.now()
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		// Anything else is read as a form, in which nothing was sent.
		discordError(w, 50006, "Cannot send an empty message")
		return
	}
	var in struct {
		Content         string         `json:"content"`
		Embeds          []DiscordEmbed `json:"embeds"`
		AllowedMentions *struct {
			Parse []string `json:"parse"`
			Users []string `json:"users"`
			Roles []string `json:"roles"`
		} `json:"allowed_mentions"`
	}
	if json.Unmarshal(body, &in) != nil {
		discordError(w, 50109, "The request body contains invalid JSON.")
		return
	}
	if in.Content == "" && len(in.Embeds) == 0 {
		discordError(w, 50006, "Cannot send an empty message")
		return
	}
	problems := discordCheck(in.Content, in.Embeds)
	if am := in.AllowedMentions; am != nil {
		// Discord refuses a type both parsed and listed, and lists over 100.
		for _, k := range []struct {
			name string
			ids  []string
		}{{"users", am.Users}, {"roles", am.Roles}} {
			if len(k.ids) > 0 && slices.Contains(am.Parse, k.name) {
				problems["allowed_mentions"] = "parse:[\"" + k.name + "\"] and " + k.name + ": [ids] are mutually exclusive."
			}
			if len(k.ids) > 100 {
				problems["allowed_mentions."+k.name] = "Must be 100 or fewer in length."
			}
		}
	}
	if len(problems) > 0 {
		discordAnswer(w, 400, map[string]any{"message": "Invalid Form Body", "code": 50035, "errors": problems})
		return
	}
	if wait, scope := f.limited(now); wait > 0 {
		secs := math.Ceil(wait.Seconds()*1000) / 1000
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(secs))))
		w.Header().Set("X-RateLimit-Scope", scope)
		discordAnswer(w, 429, map[string]any{"message": "You are being rate limited.", "retry_after": secs, "global": false})
		return
	}
	f.sends = append(f.sends, now)
	msg := DiscordMessage{Content: in.Content, Embeds: in.Embeds, Wait: r.URL.Query().Get("wait") == "true", Body: body}
	if in.AllowedMentions != nil {
		msg.AllowedMentions = append([]string{}, in.AllowedMentions.Parse...)
		msg.AllowedUsers, msg.AllowedRoles = in.AllowedMentions.Users, in.AllowedMentions.Roles
	}
	f.record(msg)
	if msg.Wait {
		discordAnswer(w, 200, map[string]any{"id": fmt.Sprint(now.UnixNano()), "channel_id": "1", "content": in.Content, "embeds": in.Embeds})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// limited says how long until a send would fit both windows, and which
// limit holds it back; mu is held.
func (f *Discord) limited(now time.Time) (time.Duration, string) {
	keep := f.sends[:0]
	var inWebhook []time.Time
	for _, t := range f.sends {
		if now.Sub(t) < discordChannelWindow {
			keep = append(keep, t)
			if now.Sub(t) < discordWebhookWindow {
				inWebhook = append(inWebhook, t)
			}
		}
	}
	f.sends = keep
	if len(inWebhook) >= discordWebhookLimit {
		return inWebhook[len(inWebhook)-discordWebhookLimit].Add(discordWebhookWindow).Sub(now), "user"
	}
	if len(keep) >= discordChannelLimit {
		return keep[len(keep)-discordChannelLimit].Add(discordChannelWindow).Sub(now), "shared"
	}
	return 0, ""
}

// discordCheck reports what Discord's form validation would, keyed the
// way Discord keys it ("embeds.0.fields.1.value").
func discordCheck(content string, embeds []DiscordEmbed) map[string]string {
	problems := map[string]string{}
	runes := utf8.RuneCountInString
	if runes(content) > 2000 {
		problems["content"] = "Must be 2000 or fewer in length."
	}
	if len(embeds) > 10 {
		problems["embeds"] = "Must be 10 or fewer in length."
	}
	total := 0
	for i, e := range embeds {
		p := fmt.Sprintf("embeds.%d.", i)
		if runes(e.Title) > 256 {
			problems[p+"title"] = "Must be 256 or fewer in length."
		}
		if runes(e.Description) > 4096 {
			problems[p+"description"] = "Must be 4096 or fewer in length."
		}
		if e.Color < 0 || e.Color > 0xFFFFFF {
			problems[p+"color"] = "Int value should be less than or equal to 16777215."
		}
		if e.Timestamp != "" {
			if _, err := time.Parse(time.RFC3339, e.Timestamp); err != nil {
				problems[p+"timestamp"] = "Could not parse " + e.Timestamp + ". Should be ISO8601."
			}
		}
		if len(e.Fields) > 25 {
			problems[p+"fields"] = "Must be 25 or fewer in length."
		}
		total += runes(e.Title) + runes(e.Description)
		for j, fd := range e.Fields {
			q := fmt.Sprintf("%sfields.%d.", p, j)
			if n := runes(fd.Name); n == 0 || n > 256 {
				problems[q+"name"] = "Must be between 1 and 256 in length."
			}
			if n := runes(fd.Value); n == 0 || n > 1024 {
				problems[q+"value"] = "Must be between 1 and 1024 in length."
			}
			total += runes(fd.Name) + runes(fd.Value)
		}
	}
	if total > 6000 {
		problems["embeds"] = "Embed size exceeds maximum size of 6000"
	}
	return problems
}

// scriptedAnswer answers a FailNext: a Discord error code, or 429.
func (f *Discord) scriptedAnswer(w http.ResponseWriter, code int, msg string) {
	if code == 429 {
		w.Header().Set("Retry-After", "2")
		w.Header().Set("X-RateLimit-Scope", "user")
		discordAnswer(w, 429, map[string]any{"message": msg, "retry_after": 1.5, "global": false})
		return
	}
	discordError(w, code, msg)
}

func discordError(w http.ResponseWriter, code int, msg string) {
	status := discordStatus[code]
	if status == 0 {
		status = 400
	}
	discordAnswer(w, status, map[string]any{"message": msg, "code": code})
}

func discordAnswer(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}
