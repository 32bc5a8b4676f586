package api_test

import (
	"encoding/json"
	"testing"

	"github.com/herald-release/herald/internal/app/apptest"
	"github.com/herald-release/herald/internal/notify"
)

// Placeholders the callback seeds use.
const (
	varConfig = "@CONFIG@" // the configuration under test
	varCh0    = "@CH0@"    // its channels' ids
	varCh1    = "@CH1@"
)

const callbacksPath = "/api/v1/release/callbacks"

// baseConfig is the configuration FuzzCallbackConfigUpdate edits; a 200 to
// an update is undone by sending it again.
const baseConfig = `{"name": "team", "events": ["project_updated", "canary_started"], "channels": [
	{"type": "dingtalk", "config": {"webhook_url": "https://oapi.dingtalk.com/robot/send?access_token=abcdef0123456789", "sign_secret": "SECabcdef0123456789"}},
	{"type": "custom", "config": {"url": "https://hooks.example.com/herald", "secret": "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "token": "tok-0123456789"}}]}`

var configTables = []string{"callback_configs", "callback_channels", "delivery_attempts", "events", "river_job"}

const (
	configRows  = `SELECT id || ' ' || COALESCE(project_id, '-') || ' ' || name || ' ' || events || ' ' || CAST(enabled AS TEXT) || ' ' || CAST(updated_at AS TEXT) FROM callback_configs ORDER BY id`
	channelRows = `SELECT id || ' ' || config_id || ' ' || CAST(position AS TEXT) || ' ' || type || ' ' || CAST(enabled AS TEXT) || ' ' || config FROM callback_channels ORDER BY id`
)

func configVars(t testing.TB, raw []byte, vars map[string]string) {
	t.Helper()
	var c notify.Config
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatalf("configuration %s: %v", raw, err)
	}
	vars[varConfig], vars[varCh0], vars[varCh1] = c.ID, "", ""
	for i, ch := range c.Channels {
		if i < 2 {
			vars[[]string{varCh0, varCh1}[i]] = ch.ID
		}
	}
}

// FuzzCallbackConfigCreate posts bodies to POST /api/v1/release/callbacks
// and POST /api/v1/release/projects/shop/callbacks (CONTRACT §8), under
// the default egress policy. A configuration that is created is deleted.
func FuzzCallbackConfigCreate(f *testing.F) {
	envs := fuzzHeralds(f)
	for _, e := range envs {
		mustCall(f, e, "POST", "/api/v1/release/projects", map[string]any{"id": "shop", "name": "Shop"}, 201)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		path := callbacksPath
		if len(body)%2 == 1 {
			path = "/api/v1/release/projects/shop/callbacks"
		}
		for _, e := range envs {
			before := rowState(t, e, configTables, configRows, channelRows)
			status, h, raw := sendRaw(t, e, "POST", path, body)
			if checkAnswer(t, "POST "+path, body, status, h, raw) {
				sameRowState(t, "POST "+path, body, before, rowState(t, e, configTables, configRows, channelRows))
				continue
			}
			if status != 201 {
				t.Fatalf("configuration create answered %d: %s", status, raw)
			}
			mustCall(t, e, "DELETE", callbacksPath+"/"+answerID(t, raw), nil, 204)
		}
	})
}

// FuzzCallbackConfigUpdate puts bodies to PUT /api/v1/release/callbacks/{id}.
func FuzzCallbackConfigUpdate(f *testing.F) {
	type target struct {
		e    *apptest.Env
		vars map[string]string
	}
	var targets []target
	for _, e := range fuzzHeralds(f) {
		vars := map[string]string{}
		configVars(f, mustCall(f, e, "POST", callbacksPath, baseConfig, 201), vars)
		targets = append(targets, target{e, vars})
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, tg := range targets {
			path := callbacksPath + "/" + tg.vars[varConfig]
			b := fillVars(body, tg.vars)
			before := rowState(t, tg.e, configTables, configRows, channelRows)
			status, h, raw := sendRaw(t, tg.e, "PUT", path, b)
			if checkAnswer(t, "PUT "+callbacksPath+"/{id}", b, status, h, raw) {
				sameRowState(t, "PUT "+callbacksPath+"/{id}", b, before, rowState(t, tg.e, configTables, configRows, channelRows))
				continue
			}
			if status != 200 {
				t.Fatalf("configuration update answered %d: %s", status, raw)
			}
			configVars(t, mustCall(t, tg.e, "PUT", path, baseConfig, 200), tg.vars)
		}
	})
}
