package notify

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/notify/channel"
	"github.com/herald-release/herald/internal/validate"
)

// PreviewInput is the body of POST /callbacks/preview: one channel as the
// form holds it, the configuration's language and template, and the event
// type to show.
type PreviewInput struct {
	// EventType is the sample event's type; canary_started by default.
	EventType string `json:"event_type"`
	// Lang and Template are the configuration's.
	Lang     string            `json:"lang"`
	Template *channel.Template `json:"template"`
	// ProjectID gives the sample event a real project's name.
	ProjectID string `json:"project_id"`
	// ConfigID names the stored configuration the channel belongs to:
	// secrets sent back masked ("******") are then taken from its channel
	// with the same id, as a save would.
	ConfigID string       `json:"config_id"`
	Channel  ChannelInput `json:"channel"`
}

// Preview is what a channel would send for a sample event.
type Preview struct {
	EventType   string `json:"event_type"`
	ChannelType string `json:"channel_type"`
	// Lang is the language the channel's messages are in.
	Lang string `json:"lang"`
	// Title and Body are the message's title and body as text: the
	// templates rendered, or Herald's default wording ("Label: value"
	// lines for the body).
	Title string `json:"title"`
	Body  string `json:"body"`
	// Request is the request the channel would make, as history records
	// it (secrets masked): the platform's payload for IM channels, the
	// standard message for custom ones, the envelope and text for email.
	Request *channel.Request `json:"request,omitempty"`
	// Error says why the request could not be built (a recipient without
	// an email address); title and body are shown all the same.
	Error string `json:"error,omitempty"`
	// Event is the sample event.
	Event *event.Envelope `json:"event"`
}

// Preview renders one channel's message for a sample event without
// sending it, recording it or counting it against rate limits.
func (h *Hub) Preview(ctx context.Context, in PreviewInput, actor event.Actor) (*Preview, error) {
	var errs validate.Errors
	eventType := strings.TrimSpace(in.EventType)
	if eventType == "" {
		eventType = event.CanaryStarted
	}
	if _, ok := event.Lookup(eventType); !ok {
		errs.Add("event_type", "%q is not an event type; see CONTRACT §6 for the list", eventType)
	}
	lang := checkLang("lang", in.Lang, &errs)
	cfgTmpl := checkTemplate("template", in.Template, &errs)
	chTmpl := checkTemplate("channel.template", in.Channel.Template, &errs)
	kind, ok := kinds[in.Channel.Type]
	if !ok {
		errs.Add("channel.type", "must be one of %s", strings.Join(KindTypes(), ", "))
	}
	cfg := bytes.TrimSpace(in.Channel.Config)
	if len(cfg) == 0 || cfg[0] != '{' {
		errs.Add("channel.config", "must be an object with the channel's settings")
	} else if hasLookKey(cfg) {
		errs.Add("channel.config."+channel.LookKey, "unknown field")
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}

	if in.ConfigID != "" && in.Channel.ID != "" {
		prev, err := h.GetConfig(ctx, in.ConfigID)
		if err != nil {
			return nil, err
		}
		for _, old := range prev.Channels {
			if old.ID == in.Channel.ID && old.Type == in.Channel.Type {
				merged, err := keepMaskedSecrets(cfg, old.Config, kind.SecretFields())
				if err != nil {
					return nil, validate.Errors{{Field: "channel.config", Message: "must be a JSON object"}}
				}
				cfg = merged
			}
		}
	}
	if verrs := kind.Validate(cfg, h.deps); len(verrs) > 0 {
		var out validate.Errors
		out.Merge("channel.config", verrs)
		return nil, out
	}

	c := &Config{Lang: lang, Template: cfgTmpl}
	stored, err := withLook(cfg, c.look(&Channel{Template: chTmpl}))
	if err != nil {
		return nil, validate.Errors{{Field: "channel.config", Message: "must be a JSON object"}}
	}
	look := channel.ReadConfig(stored).Look()
	ev := channel.SampleEvent(eventType, h.deps.PublicURL, actor)
	if in.ProjectID != "" {
		var p event.ProjectRef
		if err := h.db.QueryRow(ctx, `SELECT id, name, description FROM projects WHERE id = $1`, in.ProjectID).
			Scan(&p.ID, &p.Name, &p.Description); err == nil {
			ev.Project = &p
		}
	}
	out := &Preview{EventType: eventType, ChannelType: in.Channel.Type, Lang: look.Lang, Event: ev}
	if out.Title, out.Body, err = look.Render(ev); err != nil {
		// Checked above on every kind of event; this one differs.
		out.Error = err.Error()
	}
	sender, err := kind.New(stored, h.deps)
	if err != nil {
		return nil, fmt.Errorf("preview: build the %s sender: %w", in.Channel.Type, err)
	}
	if p, ok := sender.(channel.Previewer); ok {
		req, err := p.Preview(ctx, ev)
		if err != nil {
			out.Error = channel.Classify(err).Error()
		} else {
			out.Request = &req
		}
	}
	return out, nil
}
