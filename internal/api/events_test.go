package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/herald-release/herald/internal/app/apptest"
	"github.com/herald-release/herald/internal/event"
)

// TestObjectEvents drives the §4 calls and reads back the events of §6:
// one per change, with the right kind and action, a sequence growing per
// object, the actor, and no secret.
func TestObjectEvents(t *testing.T) {
	t.Parallel()
	each(t, func(t *testing.T, e *apptest.Env) {
		ctx := context.Background()
		admin := me(t, e, e.Token)
		member, mtok := newUser(t, e, "mia", "member")
		key, _ := sshKey(t)
		const pp = "/api/v1/release/projects/shop"

		e.JSON(t, "POST", "/api/v1/release/projects", map[string]any{"name": "Shop", "description": "d1"}, 201, nil)
		e.JSON(t, "PUT", pp, map[string]any{"name": "Shop", "description": "d2"}, 200, nil)
		doJSONAs(t, e, mtok.Token, "PUT", pp, map[string]any{"name": "Shop 2", "description": "d3"}, 200, nil)
		e.JSON(t, "POST", pp+"/environments", map[string]any{"name": "prod", "executor": map[string]any{
			"type": "ssh", "user": "deploy", "private_key": key, "script": "x"}}, 201, nil)
		e.JSON(t, "PUT", pp+"/environments/prod", map[string]any{"production": true, "executor": map[string]any{
			"type": "ssh", "user": "deploy", "private_key": "******", "script": "y"}}, 200, nil)
		e.JSON(t, "POST", pp+"/environments/prod/hosts", map[string]any{"hosts": []map[string]any{
			{"name": "h1", "address": "10.0.0.1"}, {"name": "h2", "address": "10.0.0.2"}}}, 201, nil)
		e.JSON(t, "DELETE", pp+"/environments/prod/hosts/h1", nil, 204, nil)
		e.JSON(t, "POST", pp+"/environments/prod/hosts", map[string]any{"name": "h1", "address": "10.0.0.11"}, 201, nil)
		var v version
		doJSONAs(t, e, mtok.Token, "POST", pp+"/versions", map[string]any{"name": "v1", "description": "first"}, 201, &v)
		// Refused calls write nothing.
		e.Do(t, "POST", pp+"/versions", map[string]any{"name": "v1"})
		e.Do(t, "POST", pp+"/environments/prod/hosts", map[string]any{"hosts": []map[string]any{{"name": "h3", "address": "10.0.0.3"}, {"name": "h2", "address": "10.0.0.2"}}})
		e.DoAs(t, mtok.Token, "DELETE", pp+"/environments/prod", nil)
		e.JSON(t, "DELETE", pp+"/environments/prod", nil, 204, nil)
		e.JSON(t, "DELETE", pp, nil, 204, nil)

		type want struct {
			types  []string
			action []string
			actor  []string
		}
		a, m := admin.ID, member.ID
		objects := []struct {
			kind, id string
			want     want
		}{
			{event.KindProject, "shop", want{
				[]string{"project_created", "project_updated", "project_updated", "project_deleted"},
				[]string{"create", "update", "update", "delete"}, []string{a, a, m, a}}},
			{event.KindEnvironment, "shop/prod", want{
				[]string{"environment_created", "environment_updated", "environment_deleted"},
				[]string{"create", "update", "delete"}, []string{a, a, a}}},
			{event.KindHost, "shop/prod/h1", want{
				[]string{"host_created", "host_deleted", "host_created"},
				[]string{"create", "delete", "create"}, []string{a, a, a}}},
			{event.KindHost, "shop/prod/h2", want{[]string{"host_created"}, []string{"create"}, []string{a}}},
			{event.KindVersion, v.ID, want{[]string{"version_created"}, []string{"create"}, []string{m}}},
		}
		ids := map[string]bool{}
		total := 0
		for _, o := range objects {
			evs, err := event.ListForObject(ctx, e.App.DB, o.kind, o.id)
			if err != nil {
				t.Fatal(err)
			}
			var types, actions, actors []string
			for i, ev := range evs {
				types = append(types, ev.EventType)
				actions = append(actions, ev.Action)
				if ev.Actor != nil {
					actors = append(actors, ev.Actor.ID)
					if ev.Actor.Name == "" {
						t.Errorf("%s %s #%d: actor without name", o.kind, o.id, i)
					}
				} else {
					actors = append(actors, "")
				}
				if ev.Sequence != int64(i+1) {
					t.Errorf("%s %s: event %s has sequence %d, want %d", o.kind, o.id, ev.EventType, ev.Sequence, i+1)
				}
				if ev.ObjectKind != o.kind {
					t.Errorf("%s %s: event %s has object_kind %q", o.kind, o.id, ev.EventType, ev.ObjectKind)
				}
				if ev.ID == "" || ids[ev.ID] {
					t.Errorf("event id %q empty or repeated", ev.ID)
				}
				ids[ev.ID] = true
				if ev.Project == nil || ev.Project.ID != "shop" {
					t.Errorf("%s: project %+v", ev.EventType, ev.Project)
				}
				if len(ev.Object) == 0 || !json.Valid(ev.Object) || string(ev.Object) == "null" {
					t.Errorf("%s: no object: %s", ev.EventType, ev.Object)
				}
				if ev.Timestamp.IsZero() {
					t.Errorf("%s: no timestamp", ev.EventType)
				}
				total++
			}
			got := want{types, actions, actors}
			if fmt.Sprint(got) != fmt.Sprint(o.want) {
				t.Errorf("%s %s events:\n got %v\nwant %v", o.kind, o.id, got, o.want)
			}
		}
		var stored int
		if err := e.App.DB.QueryRow(ctx, `SELECT COUNT(*) FROM events`).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if stored != total {
			t.Errorf("the events table holds %d events, the objects above %d: refused calls wrote events, or some are unaccounted for", stored, total)
		}

		// The objects carried.
		envEvents, _ := event.ListForObject(ctx, e.App.DB, event.KindEnvironment, "shop/prod")
		for _, ev := range envEvents {
			var obj environment
			if err := json.Unmarshal(ev.Object, &obj); err != nil {
				t.Fatal(err)
			}
			if obj.Name != "prod" || obj.Executor["private_key"] != "******" {
				t.Errorf("%s object = %s", ev.EventType, ev.Object)
			}
			if ev.Environment != "prod" {
				t.Errorf("%s environment = %q", ev.EventType, ev.Environment)
			}
		}
		verEvents, _ := event.ListForObject(ctx, e.App.DB, event.KindVersion, v.ID)
		if len(verEvents) == 1 && (verEvents[0].Version == nil || verEvents[0].Version.Name != "v1" || verEvents[0].Version.ID != v.ID) {
			t.Errorf("version_created carries version %+v", verEvents[0].Version)
		}
		projEvents, _ := event.ListForObject(ctx, e.App.DB, event.KindProject, "shop")
		if len(projEvents) == 4 {
			if projEvents[2].Project.Name != "Shop 2" || projEvents[2].Project.Description != "d3" {
				t.Errorf("project_updated carries the project before the change: %+v", projEvents[2].Project)
			}
			if projEvents[3].Project.Name != "Shop 2" {
				t.Errorf("project_deleted carries %+v", projEvents[3].Project)
			}
		}

		// No payload holds the key.
		rows, err := e.App.DB.Query(ctx, `SELECT payload FROM events`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var payload string
			if err := rows.Scan(&payload); err != nil {
				t.Fatal(err)
			}
			assertNoKey(t, "an event payload", []byte(payload), key)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	})
}
