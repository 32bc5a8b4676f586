package testsupport

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/herald-release/herald/internal/egress"
)

// Slack is a fake Slack incoming webhook, served over TLS like the real
// one. Like Slack it answers 200 "ok" to a message it posts, and refuses
// with an HTTP status and a bare word in the body: an unknown webhook
// (404 no_service), a wrong token (403 invalid_token), a body that is not
// JSON (400 invalid_payload), nothing to post (400 no_text), blocks
// breaking Block Kit's limits (400 invalid_blocks: at most 50 blocks, a
// header of at most 150 characters of plain_text, a section's text of at
// most 3000 characters, at most 10 fields of at most 2000), and more than
// about one message a second (429 rate_limited with Retry-After; the fake
// allows bursts of 3 in a second and 60 a minute).
//
// FailNext(n, status, word) scripts refusals: FailNext(1, 410,
// "channel_is_archived").
type Slack struct {
	robotFake[SlackMessage]
	team, bot, token string
}

// SlackMessage is one message the fake posted, decoded.
type SlackMessage struct {
	Text   string   // the fallback text
	Header string   // the header block's text
	Fields []string // the mrkdwn of every section field
	Texts  []string // the text of every section
	Links  []SlackLink
	Body   []byte
}

// SlackLink is a <url|label> link in a section text.
type SlackLink struct{ URL, Label string }

const (
	slackBurst     = 3
	slackPerMinute = 60
	slackMaxBlocks = 50
)

// NewSlack starts a fake webhook with a random token. It stops when t ends.
func NewSlack(t testing.TB) *Slack {
	t.Helper()
	f := &Slack{
		robotFake: newRobotFake[SlackMessage]("slack", slackAnswer),
		team:      "T" + strings.ToUpper(randomHex(5)),
		bot:       "B" + strings.ToUpper(randomHex(5)),
		token:     randomHex(12),
	}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// WebhookURL is the webhook, https://…/services/T…/B…/token.
func (f *Slack) WebhookURL() string {
	return f.srv.URL + "/services/" + f.team + "/" + f.bot + "/" + f.token
}

// Token is the credential part of WebhookURL, for leak checks.
func (f *Slack) Token() string { return f.token }

// Client reaches the fake over TLS, through an egress policy that allows
// loopback, never following redirects, like Herald's own client.
func (f *Slack) Client() *http.Client { return tlsClient(f.srv) }

var slackLink = regexp.MustCompile(`<([^|>]+)\|([^>]*)>`)

func (f *Slack) serve(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/services/"), "/")
	if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/services/") || len(parts) != 3 {
		slackAnswer(w, http.StatusNotFound, "no_service")
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))

	f.mu.Lock()
	defer f.mu.Unlock()
	if f.begin(w) {
		return
	}
	now := f.now()
	switch {
	case parts[0] != f.team:
		slackAnswer(w, http.StatusNotFound, "no_team")
		return
	case parts[1] != f.bot:
		slackAnswer(w, http.StatusNotFound, "no_service")
		return
	case parts[2] != f.token:
		slackAnswer(w, http.StatusForbidden, "invalid_token")
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		slackAnswer(w, http.StatusBadRequest, "invalid_payload")
		return
	}
	var m struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type   string      `json:"type"`
			Text   *slackText  `json:"text"`
			Fields []slackText `json:"fields"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		slackAnswer(w, http.StatusBadRequest, "invalid_payload")
		return
	}
	if m.Text == "" && len(m.Blocks) == 0 {
		slackAnswer(w, http.StatusBadRequest, "no_text")
		return
	}
	msg := SlackMessage{Text: m.Text, Body: body}
	valid := len(m.Blocks) <= slackMaxBlocks
	for _, b := range m.Blocks {
		switch b.Type {
		case "header":
			valid = valid && b.Text != nil && b.Text.Type == "plain_text" && b.Text.valid(150)
			if b.Text != nil {
				msg.Header = b.Text.Text
			}
		case "section":
			valid = valid && (b.Text != nil || len(b.Fields) > 0) && len(b.Fields) <= 10
			if b.Text != nil {
				valid = valid && b.Text.valid(3000)
				msg.Texts = append(msg.Texts, b.Text.Text)
				for _, l := range slackLink.FindAllStringSubmatch(b.Text.Text, -1) {
					msg.Links = append(msg.Links, SlackLink{URL: l[1], Label: l[2]})
				}
			}
			for _, fd := range b.Fields {
				valid = valid && fd.valid(2000)
				msg.Fields = append(msg.Fields, fd.Text)
			}
		case "divider", "context", "actions", "image":
		default:
			valid = false
		}
	}
	if !valid {
		slackAnswer(w, http.StatusBadRequest, "invalid_blocks")
		return
	}
	if lastSecond, lastMinute := f.rate(now); lastSecond >= slackBurst || lastMinute >= slackPerMinute {
		slackAnswer(w, http.StatusTooManyRequests, "rate_limited")
		return
	}
	f.accept(now, msg)
	w.Header().Set("Content-Type", "text/html")
	io.WriteString(w, "ok")
}

type slackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

func (t slackText) valid(max int) bool {
	n := utf8.RuneCountInString(t.Text)
	return (t.Type == "mrkdwn" || t.Type == "plain_text") && n > 0 && n <= max
}

// slackAnswer answers as Slack does: the status and one word.
func slackAnswer(w http.ResponseWriter, status int, word string) {
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(status)
	io.WriteString(w, word)
}

// tlsClient is Herald's kind of client (egress policy, no redirects)
// trusting a TLS test server's certificate.
func tlsClient(srv *httptest.Server) *http.Client {
	c := egress.AllowAll().Client()
	c.Transport.(*http.Transport).TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	return c
}
