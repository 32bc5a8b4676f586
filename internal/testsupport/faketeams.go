package testsupport

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Teams is a fake Microsoft Teams Workflows webhook (a Power Automate flow
// from "Post to a channel when a webhook request is received"), served
// over TLS. Like the real trigger it checks the URL's signature (401
// DirectApiAuthorizationRequired when missing,
// DirectApiInvalidAuthorizationSignature when wrong), the workflow id (404
// WorkflowNotFound), that the body is JSON (400 InvalidRequestContent) of
// the template's shape, {"type":"message","attachments":[{"contentType":
// "application/vnd.microsoft.card.adaptive","content":{…}}]} (400
// TriggerInputSchemaMismatch), and answers 202 Accepted with no body.
//
// As with the real flow, what goes wrong after the trigger does not reach
// the caller: a card that is not a valid Adaptive Card (version 1.0 to
// 1.5, a non-empty body) or a message over about 28 KB is accepted with
// 202 and then never posted; Dropped lists those.
//
// FailNext(n, status, code) scripts refusals with the Logic Apps error
// body; a 429 carries Retry-After.
type Teams struct {
	robotFake[TeamsMessage]
	workflow, sig string
	dropped       []TeamsDrop
}

// TeamsMessage is one card the fake posted, decoded.
type TeamsMessage struct {
	Version    string
	Width      string // msteams.width
	Title      string // the first TextBlock
	TitleColor string
	Facts      []TeamsFact
	// Texts are the TextBlocks after the title.
	Texts    []string
	Mentions []TeamsMention // msteams.entities
	Actions  []TeamsAction
	Body     []byte
}

// TeamsMention is a mention entity: Text (<at>…</at>) notifies ID.
type TeamsMention struct{ Text, ID, Name string }

// TeamsFact is one row of a FactSet.
type TeamsFact struct{ Title, Value string }

// TeamsAction is one of the card's actions.
type TeamsAction struct{ Type, Title, URL string }

// TeamsDrop is a message the trigger accepted and the flow failed to post.
type TeamsDrop struct {
	Reason string
	Body   []byte
}

const teamsMaxMessage = 28 << 10

var teamsMessages = map[string]string{
	"DirectApiAuthorizationRequired":         "The request must be authenticated only by Shared Access scheme.",
	"DirectApiInvalidAuthorizationSignature": "The provided authorization signature is not valid.",
	"WorkflowNotFound":                       "The workflow could not be found.",
	"InvalidRequestContent":                  "The request content is not valid and could not be deserialized.",
	"TriggerInputSchemaMismatch":             "The input body for trigger 'manual' of type 'Request' did not match its schema definition.",
	"WorkflowRequestsThrottled":              "Number of requests for this workflow exceeded the limit over the time window.",
}

// NewTeams starts a fake workflow with a random id and signature. It stops
// when t ends.
func NewTeams(t testing.TB) *Teams {
	t.Helper()
	f := &Teams{
		robotFake: newRobotFake[TeamsMessage]("teams", teamsAnswer),
		workflow:  randomHex(16),
		sig:       randomHex(20),
	}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// WebhookURL is the workflow's URL as Teams shows it, signature included.
func (f *Teams) WebhookURL() string {
	return f.srv.URL + "/workflows/" + f.workflow + "/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=" + f.sig
}

// Sig is the URL's signature, for leak checks.
func (f *Teams) Sig() string { return f.sig }

// Client reaches the fake over TLS like Herald's own client.
func (f *Teams) Client() *http.Client { return tlsClient(f.srv) }

// Dropped lists the messages accepted but never posted.
func (f *Teams) Dropped() []TeamsDrop {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]TeamsDrop(nil), f.dropped...)
}

func (f *Teams) serve(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutPrefix(r.URL.Path, "/workflows/")
	id, ok2 := strings.CutSuffix(id, "/triggers/manual/paths/invoke")
	if r.Method != http.MethodPost || !ok || !ok2 {
		http.NotFound(w, r)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))

	f.mu.Lock()
	defer f.mu.Unlock()
	switch sig := r.URL.Query().Get("sig"); {
	case id != f.workflow:
		teamsAnswer(w, http.StatusNotFound, "WorkflowNotFound")
		return
	case sig == "":
		teamsAnswer(w, http.StatusUnauthorized, "DirectApiAuthorizationRequired")
		return
	case sig != f.sig:
		teamsAnswer(w, http.StatusUnauthorized, "DirectApiInvalidAuthorizationSignature")
		return
	}
	if f.begin(w) {
		return
	}
	var m struct {
		Type        string `json:"type"`
		Attachments []struct {
			ContentType string          `json:"contentType"`
			Content     json.RawMessage `json:"content"`
		} `json:"attachments"`
	}
	if !json.Valid(body) {
		teamsAnswer(w, http.StatusBadRequest, "InvalidRequestContent")
		return
	}
	if json.Unmarshal(body, &m) != nil || m.Type != "message" || len(m.Attachments) == 0 ||
		m.Attachments[0].ContentType != "application/vnd.microsoft.card.adaptive" || len(m.Attachments[0].Content) == 0 {
		teamsAnswer(w, http.StatusBadRequest, "TriggerInputSchemaMismatch")
		return
	}
	// The trigger has accepted the run; the rest happens in the flow.
	w.WriteHeader(http.StatusAccepted)

	var card struct {
		Type    string `json:"type"`
		Version string `json:"version"`
		MSTeams struct {
			Width    string `json:"width"`
			Entities []struct {
				Type      string `json:"type"`
				Text      string `json:"text"`
				Mentioned struct {
					ID   string `json:"id"`
					Name string `json:"name"`
				} `json:"mentioned"`
			} `json:"entities"`
		} `json:"msteams"`
		Body []struct {
			Type  string      `json:"type"`
			Text  string      `json:"text"`
			Color string      `json:"color"`
			Facts []TeamsFact `json:"facts"`
		} `json:"body"`
		Actions []TeamsAction `json:"actions"`
	}
	drop := func(reason string) { f.dropped = append(f.dropped, TeamsDrop{Reason: reason, Body: body}) }
	if len(body) > teamsMaxMessage {
		drop("Request Entity too large")
		return
	}
	if json.Unmarshal(m.Attachments[0].Content, &card) != nil || card.Type != "AdaptiveCard" || len(card.Body) == 0 {
		drop("the content is not an Adaptive Card")
		return
	}
	switch card.Version {
	case "1.0", "1.1", "1.2", "1.3", "1.4", "1.5":
	default:
		drop("Teams renders Adaptive Cards 1.0 to 1.5, not " + card.Version)
		return
	}
	msg := TeamsMessage{Version: card.Version, Width: card.MSTeams.Width, Actions: card.Actions, Body: body}
	for i, e := range card.Body {
		switch {
		case e.Type == "TextBlock" && e.Text == "":
			drop("a TextBlock without text")
			return
		case e.Type == "FactSet" && len(e.Facts) == 0:
			drop("a FactSet without facts")
			return
		case e.Type == "TextBlock" && i == 0:
			msg.Title, msg.TitleColor = e.Text, e.Color
		case e.Type == "TextBlock":
			msg.Texts = append(msg.Texts, e.Text)
		case e.Type == "FactSet":
			msg.Facts = append(msg.Facts, e.Facts...)
		}
	}
	// Teams fails a card whose mention entity is not written, as is, in
	// its text, or names nobody.
	for _, m := range card.MSTeams.Entities {
		written := false
		for _, e := range card.Body {
			written = written || (e.Type == "TextBlock" && strings.Contains(e.Text, m.Text))
		}
		if m.Type != "mention" || m.Mentioned.ID == "" || !strings.HasPrefix(m.Text, "<at>") || !written {
			drop("a mention entity that is not in the card's text")
			return
		}
		msg.Mentions = append(msg.Mentions, TeamsMention{Text: m.Text, ID: m.Mentioned.ID, Name: m.Mentioned.Name})
	}
	for _, a := range card.Actions {
		if a.Type == "Action.OpenUrl" && !strings.HasPrefix(a.URL, "https://") && !strings.HasPrefix(a.URL, "http://") {
			drop("an Action.OpenUrl without a URL")
			return
		}
	}
	f.record(msg)
}

// teamsAnswer answers as a Logic Apps trigger does.
func teamsAnswer(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "7")
	}
	w.WriteHeader(status)
	msg := teamsMessages[code]
	if msg == "" {
		msg = "The request failed."
	}
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}
