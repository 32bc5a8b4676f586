package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/herald-release/herald/internal/apperr"
	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/id"
	"github.com/herald-release/herald/internal/notify/channel"
	"github.com/herald-release/herald/internal/secret"
	"github.com/herald-release/herald/internal/validate"
)

// Config is a callback configuration (CONTRACT §8). ProjectID is empty for
// a global configuration, which hears every project's events.
type Config struct {
	ID        string    `json:"id"`
	ProjectID string    `json:"project_id"`
	Name      string    `json:"name"`
	Enabled   bool      `json:"enabled"`
	Channels  []Channel `json:"channels"`
	Events    []string  `json:"events"`
	// Lang is the language of every channel's messages ("zh", the
	// default, or "en"), unless a channel sets its own "lang".
	Lang string `json:"lang"`
	// Template overrides the title and body of every channel's messages;
	// a channel's own template wins, part by part.
	Template *channel.Template `json:"template,omitempty"`
	// Conditions narrow Events by environment, strategy, task type and
	// outcome.
	Conditions *Conditions `json:"conditions,omitempty"`
	CreatedAt  time.Time   `json:"created_at"`
	UpdatedAt  time.Time   `json:"updated_at"`
}

// Channel is one destination of a configuration. Config is in clear inside
// Herald; responses show Masked().
type Channel struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Enabled bool            `json:"enabled"`
	Config  json.RawMessage `json:"config"`
	// Template overrides the title and body of this channel's messages.
	Template *channel.Template `json:"template,omitempty"`
	// DisabledReason says why Herald switched the channel off itself
	// (its endpoint answered 410 Gone).
	DisabledReason string `json:"disabled_reason,omitempty"`
}

// sendConfig is the config a sender of ch is built from: its own, with
// the look in effect for it (channel.LookKey).
func (c *Config) sendConfig(ch *Channel) (json.RawMessage, error) {
	return withLook(ch.Config, c.look(ch))
}

// Masked returns the configuration with every channel secret masked.
func (c *Config) Masked() *Config {
	out := *c
	out.Channels = make([]Channel, len(c.Channels))
	for i, ch := range c.Channels {
		ch.Config = maskChannelConfig(ch.Type, ch.Config)
		out.Channels[i] = ch
	}
	return &out
}

func maskChannelConfig(typ string, cfg json.RawMessage) json.RawMessage {
	k, ok := kinds[typ]
	if !ok {
		return json.RawMessage(`{}`)
	}
	return secret.MaskJSON(cfg, k.SecretFields())
}

// ConfigInput is the body of create and update.
type ConfigInput struct {
	Name       string            `json:"name"`
	Enabled    *bool             `json:"enabled"`
	Channels   []ChannelInput    `json:"channels"`
	Events     []string          `json:"events"`
	Lang       string            `json:"lang"`
	Template   *channel.Template `json:"template"`
	Conditions *Conditions       `json:"conditions"`
}

// ChannelInput is one channel in a create or update body.
type ChannelInput struct {
	ID       string            `json:"id"`
	Type     string            `json:"type"`
	Enabled  *bool             `json:"enabled"`
	Config   json.RawMessage   `json:"config"`
	Template *channel.Template `json:"template"`
}

// checkLang normalises a language setting: "" is "zh".
func checkLang(field, lang string, errs *validate.Errors) string {
	switch l := strings.TrimSpace(lang); l {
	case "", "zh":
		return "zh"
	case "en":
		return "en"
	}
	errs.Add(field, `must be "zh" or "en"`)
	return "zh"
}

// checkTemplate validates a template's parts; nil when none is set.
func checkTemplate(field string, t *channel.Template, errs *validate.Errors) *channel.Template {
	if t == nil || t.IsZero() {
		return nil
	}
	for _, part := range []struct{ name, src string }{{"title", t.Title}, {"body", t.Body}} {
		if part.src == "" {
			continue
		}
		if err := channel.CheckTemplate(part.name, part.src); err != nil {
			errs.Add(field+"."+part.name, "%v", err)
		}
	}
	out := *t
	return &out
}

// hasLookKey reports whether a user's config sets the key Herald keeps
// for itself.
func hasLookKey(cfg json.RawMessage) bool {
	if !bytes.Contains(cfg, []byte(channel.LookKey)) {
		return false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(cfg, &m) != nil {
		return false
	}
	_, ok := m[channel.LookKey]
	return ok
}

// MaxChannels bounds the channels of one configuration.
const MaxChannels = 20

// build validates in and turns it into a Config; prev is the stored
// configuration on update (nil on create), whose secrets are kept where
// the input sends them back masked.
func (h *Hub) build(in ConfigInput, prev *Config) (*Config, error) {
	var errs validate.Errors
	c := &Config{Name: strings.TrimSpace(in.Name), Enabled: in.Enabled == nil || *in.Enabled, Events: []string{}}
	if len(c.Name) > 200 {
		errs.Add("name", "must be at most 200 characters")
	}
	c.Lang = checkLang("lang", in.Lang, &errs)
	c.Template = checkTemplate("template", in.Template, &errs)
	c.Conditions = checkConditions(in.Conditions, &errs)
	for i, e := range in.Events {
		if _, ok := event.Lookup(e); !ok {
			errs.Add(fmt.Sprintf("events[%d]", i), "%q is not an event type; see CONTRACT §6 for the list", e)
			continue
		}
		if !slices.Contains(c.Events, e) {
			c.Events = append(c.Events, e)
		}
	}
	if len(in.Channels) == 0 {
		errs.Add("channels", "give at least one channel")
	}
	if len(in.Channels) > MaxChannels {
		errs.Add("channels", "at most %d channels per configuration", MaxChannels)
	}
	// A stored channel is updated by one input channel at most (two would
	// be stored under one id): the one naming its id, else the one at its
	// position.
	named, taken := map[string]bool{}, map[string]bool{}
	for _, chIn := range in.Channels {
		named[chIn.ID] = chIn.ID != ""
	}
	for i, chIn := range in.Channels {
		field := fmt.Sprintf("channels[%d]", i)
		kind, ok := kinds[chIn.Type]
		if !ok {
			errs.Add(field+".type", "must be one of %s", strings.Join(KindTypes(), ", "))
			continue
		}
		cfg := bytes.TrimSpace(chIn.Config)
		if len(cfg) == 0 || cfg[0] != '{' {
			errs.Add(field+".config", "must be an object with the %s settings", chIn.Type)
			continue
		}
		if hasLookKey(cfg) {
			errs.Add(field+".config."+channel.LookKey, "unknown field")
			continue
		}
		ch := Channel{ID: chIn.ID, Type: chIn.Type, Enabled: chIn.Enabled == nil || *chIn.Enabled,
			Template: checkTemplate(field+".template", chIn.Template, &errs)}
		old := matchPrevious(prev, chIn, i)
		if old != nil && chIn.ID == "" && named[old.ID] {
			old = nil
		}
		if old != nil && taken[old.ID] {
			errs.Add(field+".id", "channel %q is listed twice", old.ID)
			continue
		}
		if old != nil {
			taken[old.ID] = true
			ch.ID = old.ID
			merged, err := keepMaskedSecrets(cfg, old.Config, kind.SecretFields())
			if err != nil {
				errs.Add(field+".config", "must be a JSON object")
				continue
			}
			cfg = merged
		} else if chIn.ID != "" {
			errs.Add(field+".id", "no channel %q in this configuration; leave id out to add a channel", chIn.ID)
			continue
		}
		if ch.ID == "" {
			ch.ID = id.New("chn")
		}
		errs.Merge(field+".config", kind.Validate(cfg, h.deps))
		ch.Config = append(json.RawMessage(nil), cfg...)
		c.Channels = append(c.Channels, ch)
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	if c.Name == "" {
		types := make([]string, 0, len(c.Channels))
		for _, ch := range c.Channels {
			types = append(types, ch.Type)
		}
		c.Name = strings.Join(types, " + ")
	}
	return c, nil
}

// matchPrevious finds the stored channel an input channel updates: by id,
// or, without one, the channel of the same type at the same position (so a
// client that PUTs back what GET showed, ids and all or not, keeps secrets).
func matchPrevious(prev *Config, in ChannelInput, pos int) *Channel {
	if prev == nil {
		return nil
	}
	if in.ID != "" {
		for i := range prev.Channels {
			if prev.Channels[i].ID == in.ID && prev.Channels[i].Type == in.Type {
				return &prev.Channels[i]
			}
		}
		return nil
	}
	if pos < len(prev.Channels) && prev.Channels[pos].Type == in.Type {
		return &prev.Channels[pos]
	}
	return nil
}

func keepMaskedSecrets(next, prev json.RawMessage, fields []string) (json.RawMessage, error) {
	var n, p map[string]any
	if err := json.Unmarshal(next, &n); err != nil {
		return nil, err
	}
	_ = json.Unmarshal(prev, &p)
	secret.KeepMasked(n, p, fields)
	return json.Marshal(n)
}

// CreateConfig stores a configuration for a project ("" for global).
func (h *Hub) CreateConfig(ctx context.Context, projectID string, in ConfigInput) (*Config, error) {
	c, err := h.build(in, nil)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	c.ID, c.ProjectID, c.CreatedAt, c.UpdatedAt = id.New("cbk"), projectID, now, now
	err = h.db.InTx(ctx, func(tx db.Tx) error {
		if projectID != "" {
			var n int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM projects WHERE id = $1`, projectID).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				return apperr.NotFound("project %q not found", projectID)
			}
		}
		evs, _ := json.Marshal(c.Events)
		if _, err := tx.Exec(ctx, `INSERT INTO callback_configs (id, project_id, name, enabled, events, lang, template, conditions, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)`, c.ID, nullable(projectID), c.Name, c.Enabled, string(evs),
			c.Lang, templateJSON(c.Template), conditionsJSON(c.Conditions), now); err != nil {
			return err
		}
		return h.insertChannels(ctx, tx, c)
	})
	h.cache.invalidate()
	if err != nil {
		return nil, err
	}
	return c, nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (h *Hub) insertChannels(ctx context.Context, tx db.Tx, c *Config) error {
	for i := range c.Channels {
		ch := &c.Channels[i]
		sealed, err := h.box.Seal(ch.Config)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO callback_channels (id, config_id, position, type, enabled, config, template, disabled_reason)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, ch.ID, c.ID, i, ch.Type, ch.Enabled, sealed, templateJSON(ch.Template), ch.DisabledReason); err != nil {
			return err
		}
	}
	return nil
}

// look is what a channel's messages look like: the configuration's
// language, and its template with the channel's parts winning.
func (c *Config) look(ch *Channel) channel.StoredLook {
	var t channel.Template
	if ch.Template != nil {
		t = *ch.Template
	}
	if c.Template != nil {
		t = t.Or(*c.Template)
	}
	return channel.StoredLook{Lang: c.Lang, Title: t.Title, Body: t.Body}
}

// withLook adds the look to a channel's config for its sender; a config
// without a template and in the default language is passed as given.
func withLook(cfg json.RawMessage, look channel.StoredLook) (json.RawMessage, error) {
	if look.Title == "" && look.Body == "" && (look.Lang == "" || look.Lang == "zh") {
		return cfg, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(cfg, &m); err != nil {
		return nil, err
	}
	if m == nil {
		m = map[string]json.RawMessage{}
	}
	m[channel.LookKey], _ = json.Marshal(look)
	return json.Marshal(m)
}

// templateJSON is the stored form of a template: "" for none.
func templateJSON(t *channel.Template) string {
	if t == nil || t.IsZero() {
		return ""
	}
	b, _ := json.Marshal(t)
	return string(b)
}

func parseTemplate(s string) (*channel.Template, error) {
	if s == "" {
		return nil, nil
	}
	var t channel.Template
	if err := json.Unmarshal([]byte(s), &t); err != nil {
		return nil, err
	}
	if t.IsZero() {
		return nil, nil
	}
	return &t, nil
}

// UpdateConfig replaces a configuration's name, state, channels and events.
func (h *Hub) UpdateConfig(ctx context.Context, configID string, in ConfigInput) (*Config, error) {
	var c *Config
	err := h.db.InTx(ctx, func(tx db.Tx) error {
		prev, err := h.getConfig(ctx, tx, configID)
		if err != nil {
			return err
		}
		if c, err = h.build(in, prev); err != nil {
			return err
		}
		c.ID, c.ProjectID, c.CreatedAt = prev.ID, prev.ProjectID, prev.CreatedAt
		c.UpdatedAt = time.Now().UTC().Truncate(time.Microsecond)
		evs, _ := json.Marshal(c.Events)
		if _, err := tx.Exec(ctx, `UPDATE callback_configs SET name = $1, enabled = $2, events = $3, lang = $4, template = $5, conditions = $6, updated_at = $7 WHERE id = $8`,
			c.Name, c.Enabled, string(evs), c.Lang, templateJSON(c.Template), conditionsJSON(c.Conditions), c.UpdatedAt, c.ID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM callback_channels WHERE config_id = $1`, c.ID); err != nil {
			return err
		}
		return h.insertChannels(ctx, tx, c)
	})
	h.cache.invalidate()
	if err != nil {
		return nil, err
	}
	return c, nil
}

// DeleteConfig removes a configuration; its history stays.
func (h *Hub) DeleteConfig(ctx context.Context, configID string) error {
	n, err := h.db.Exec(ctx, `DELETE FROM callback_configs WHERE id = $1`, configID)
	h.cache.invalidate()
	if err != nil {
		return err
	}
	if n == 0 {
		return apperr.NotFound("callback configuration %q not found", configID)
	}
	return nil
}

// GetConfig reads a configuration with its channels in clear.
func (h *Hub) GetConfig(ctx context.Context, configID string) (*Config, error) {
	return h.getConfig(ctx, h.db, configID)
}

func (h *Hub) getConfig(ctx context.Context, q db.Querier, configID string) (*Config, error) {
	cs, err := h.listConfigs(ctx, q, `WHERE c.id = $1`, configID)
	if err != nil {
		return nil, err
	}
	if len(cs) == 0 {
		return nil, apperr.NotFound("callback configuration %q not found", configID)
	}
	return cs[0], nil
}

// ListConfigs lists every configuration, or a project's when projectID is
// set (global ones excluded: they are listed at the top level).
func (h *Hub) ListConfigs(ctx context.Context, projectID string) ([]*Config, error) {
	if projectID == "" {
		return h.listConfigs(ctx, h.db, ``)
	}
	var n int
	if err := h.db.QueryRow(ctx, `SELECT COUNT(*) FROM projects WHERE id = $1`, projectID).Scan(&n); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, apperr.NotFound("project %q not found", projectID)
	}
	return h.listConfigs(ctx, h.db, `WHERE c.project_id = $1`, projectID)
}

func (h *Hub) listConfigs(ctx context.Context, q db.Querier, where string, args ...any) ([]*Config, error) {
	rows, err := q.Query(ctx, `SELECT c.id, COALESCE(c.project_id, ''), c.name, c.enabled, c.events, c.lang, c.template, c.conditions,
			c.created_at, c.updated_at, ch.id, ch.type, ch.enabled, ch.config, ch.template, ch.disabled_reason
		FROM callback_configs c JOIN callback_channels ch ON ch.config_id = c.id `+where+`
		ORDER BY c.id, ch.position`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*Config{}
	var cur *Config
	for rows.Next() {
		var c Config
		var events, tmpl, conds, sealed, chTmpl string
		var ch Channel
		if err := rows.Scan(&c.ID, &c.ProjectID, &c.Name, &c.Enabled, &events, &c.Lang, &tmpl, &conds, &c.CreatedAt, &c.UpdatedAt,
			&ch.ID, &ch.Type, &ch.Enabled, &sealed, &chTmpl, &ch.DisabledReason); err != nil {
			return nil, err
		}
		plain, err := h.box.Open(sealed)
		if err != nil {
			return nil, fmt.Errorf("callback channel %s: %w", ch.ID, err)
		}
		ch.Config = plain
		if ch.Template, err = parseTemplate(chTmpl); err != nil {
			return nil, fmt.Errorf("callback channel %s template is corrupt: %w", ch.ID, err)
		}
		if cur == nil || cur.ID != c.ID {
			if err := json.Unmarshal([]byte(events), &c.Events); err != nil {
				return nil, fmt.Errorf("callback configuration %s events are corrupt: %w", c.ID, err)
			}
			if c.Lang == "" {
				c.Lang = "zh"
			}
			if c.Template, err = parseTemplate(tmpl); err != nil {
				return nil, fmt.Errorf("callback configuration %s template is corrupt: %w", c.ID, err)
			}
			if c.Conditions, err = parseConditions(conds); err != nil {
				return nil, fmt.Errorf("callback configuration %s conditions are corrupt: %w", c.ID, err)
			}
			cur = &c
			out = append(out, cur)
		}
		cur.Channels = append(cur.Channels, ch)
	}
	return out, rows.Err()
}

// disableChannel switches a channel off for good, saying why.
func (h *Hub) disableChannel(ctx context.Context, channelID, reason string) error {
	_, err := h.db.Exec(ctx, `UPDATE callback_channels SET enabled = $1, disabled_reason = $2 WHERE id = $3`, false, reason, channelID)
	h.cache.invalidate()
	return err
}

var errNoChannel = errors.New("channel not found")
