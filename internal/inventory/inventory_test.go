package inventory_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/herald-release/herald/internal/apperr"
	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/db/dbtest"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/inventory"
	"github.com/herald-release/herald/internal/release/executor"
	"github.com/herald-release/herald/internal/secret"
)

var actor = event.Actor{ID: "usr_test", Name: "tester"}

func newBox(t *testing.T, b byte) *secret.Box {
	t.Helper()
	box, err := secret.NewBox(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return box
}

func newService(t *testing.T, d *db.DB) *inventory.Service {
	t.Helper()
	return inventory.New(d, newBox(t, 7), event.NewPublisher(), "http://herald.test")
}

func localExec(script string) *executor.Spec {
	return &executor.Spec{Type: executor.TypeLocal, Script: script}
}

// fixture makes project "shop" with environment "prod" holding hosts
// h1..h3 and a version v1.
func fixture(t *testing.T, s *inventory.Service) *inventory.Version {
	t.Helper()
	ctx := context.Background()
	if _, err := s.CreateProject(ctx, actor, inventory.ProjectInput{Name: "Shop"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateEnvironment(ctx, actor, "shop", inventory.EnvironmentInput{Name: "prod", Executor: localExec("true")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddHosts(ctx, actor, "shop", "prod", []inventory.HostInput{
		{Name: "h3", Address: "10.0.0.3"}, {Name: "h1", Address: "10.0.0.1", Labels: map[string]string{"group": "blue"}}, {Name: "h2", Address: "10.0.0.2:2222"},
	}); err != nil {
		t.Fatal(err)
	}
	v, err := s.CreateVersion(ctx, actor, "shop", inventory.VersionInput{Name: "v1", Artifact: "s3://b/v1.tgz"})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func count(t *testing.T, d *db.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := d.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func eventTypes(t *testing.T, d *db.DB, kind, objectID string) []string {
	t.Helper()
	evs, err := event.ListForObject(context.Background(), d, kind, objectID)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i, ev := range evs {
		if ev.Sequence != int64(i+1) {
			t.Errorf("%s %s: event %d (%s) has sequence %d, want %d", kind, objectID, i, ev.EventType, ev.Sequence, i+1)
		}
		out = append(out, ev.EventType)
	}
	return out
}

func TestDeleteCheckRefusalRollsEverythingBack(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := newService(t, d)
		refusal := apperr.InvalidState("a task is active")
		var refuse atomic.Bool
		refuse.Store(true)
		type call struct{ project, env string }
		var mu sync.Mutex
		var calls []call
		s.OnDelete(func(ctx context.Context, tx db.Tx, projectID, env string) error {
			mu.Lock()
			calls = append(calls, call{projectID, env})
			mu.Unlock()
			// The check runs inside the deleting transaction: what it
			// writes commits or rolls back with the delete.
			if _, err := tx.Exec(ctx, `INSERT INTO projects (id, name, description, created_at, updated_at)
				VALUES ($1, 'x', '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)`, "check-"+projectID+"-"+env); err != nil {
				return err
			}
			if !refuse.Load() {
				return nil
			}
			// It sees the rows still there.
			var hosts int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM hosts WHERE project_id = $1`, projectID).Scan(&hosts); err != nil {
				return err
			}
			if hosts != 3 {
				return fmt.Errorf("the check saw %d hosts, want 3", hosts)
			}
			return refusal
		})
		fixture(t, s)

		err := s.DeleteEnvironment(ctx, actor, "shop", "prod")
		if !errors.Is(err, refusal) {
			t.Fatalf("DeleteEnvironment = %v, want the check's refusal", err)
		}
		err = s.DeleteProject(ctx, actor, "shop")
		if !errors.Is(err, refusal) {
			t.Fatalf("DeleteProject = %v, want the check's refusal", err)
		}
		mu.Lock()
		got := append([]call(nil), calls...)
		mu.Unlock()
		if len(got) != 2 || got[0] != (call{"shop", "prod"}) || got[1] != (call{"shop", ""}) {
			t.Fatalf("the check was called with %v, want [{shop prod} {shop }]", got)
		}

		// Nothing changed: rows, events and the check's own writes.
		for q, want := range map[string]int{
			`SELECT COUNT(*) FROM projects WHERE id = 'shop'`:                                            1,
			`SELECT COUNT(*) FROM environments WHERE project_id = 'shop'`:                                1,
			`SELECT COUNT(*) FROM hosts WHERE project_id = 'shop'`:                                       3,
			`SELECT COUNT(*) FROM versions WHERE project_id = 'shop'`:                                    1,
			`SELECT COUNT(*) FROM projects WHERE id LIKE 'check-%'`:                                      0,
			`SELECT COUNT(*) FROM events WHERE event_type IN ('project_deleted', 'environment_deleted')`: 0,
		} {
			if n := count(t, d, q); n != want {
				t.Errorf("%s = %d, want %d", q, n, want)
			}
		}
		if _, err := s.GetEnvironment(ctx, "shop", "prod"); err != nil {
			t.Fatalf("the environment is gone after a refused delete: %v", err)
		}

		// Allowed now: the deletes go through, and the refused attempts
		// left no gap in the sequences.
		refuse.Store(false)
		if err := s.DeleteEnvironment(ctx, actor, "shop", "prod"); err != nil {
			t.Fatal(err)
		}
		if got := eventTypes(t, d, event.KindEnvironment, "shop/prod"); fmt.Sprint(got) != "[environment_created environment_deleted]" {
			t.Fatalf("environment events = %v", got)
		}
		if n := count(t, d, `SELECT COUNT(*) FROM hosts WHERE project_id = 'shop'`); n != 0 {
			t.Fatalf("%d hosts outlived their environment", n)
		}
		if err := s.DeleteProject(ctx, actor, "shop"); err != nil {
			t.Fatal(err)
		}
		if got := eventTypes(t, d, event.KindProject, "shop"); fmt.Sprint(got) != "[project_created project_deleted]" {
			t.Fatalf("project events = %v", got)
		}
		if n := count(t, d, `SELECT COUNT(*) FROM versions WHERE project_id = 'shop'`); n != 0 {
			t.Fatalf("%d versions outlived their project", n)
		}
		// The allowed check's writes committed with the delete.
		if n := count(t, d, `SELECT COUNT(*) FROM projects WHERE id LIKE 'check-%'`); n != 2 {
			t.Fatalf("the passing checks' writes: %d rows, want 2 (one per delete)", n)
		}
	})
}

func TestSubscriberFailureRollsBackTheChange(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		pub := event.NewPublisher()
		boom := errors.New("router down")
		var fail atomic.Bool
		pub.Subscribe(func(ctx context.Context, tx db.Tx, ev *event.Envelope) error {
			if fail.Load() {
				return boom
			}
			return nil
		})
		s := inventory.New(d, newBox(t, 7), pub, "http://herald.test")
		fixture(t, s)
		fail.Store(true)
		steps := map[string]func() error{
			"CreateProject": func() error {
				_, err := s.CreateProject(ctx, actor, inventory.ProjectInput{Name: "Other"})
				return err
			},
			"UpdateProject": func() error {
				_, err := s.UpdateProject(ctx, actor, "shop", inventory.ProjectInput{Name: "Renamed"})
				return err
			},
			"AddHosts": func() error {
				_, err := s.AddHosts(ctx, actor, "shop", "prod", []inventory.HostInput{{Name: "h9", Address: "10.0.0.9"}})
				return err
			},
			"DeleteHost":        func() error { return s.DeleteHost(ctx, actor, "shop", "prod", "h1") },
			"DeleteEnvironment": func() error { return s.DeleteEnvironment(ctx, actor, "shop", "prod") },
			"CreateVersion": func() error {
				_, err := s.CreateVersion(ctx, actor, "shop", inventory.VersionInput{Name: "v2"})
				return err
			},
			"DeleteProject": func() error { return s.DeleteProject(ctx, actor, "shop") },
		}
		for name, step := range steps {
			if err := step(); !errors.Is(err, boom) {
				t.Errorf("%s with a failing subscriber = %v, want the subscriber's error", name, err)
			}
		}
		for q, want := range map[string]int{
			`SELECT COUNT(*) FROM projects`:                     1,
			`SELECT COUNT(*) FROM projects WHERE name = 'Shop'`: 1,
			`SELECT COUNT(*) FROM environments`:                 1,
			`SELECT COUNT(*) FROM hosts`:                        3,
			`SELECT COUNT(*) FROM versions`:                     1,
			`SELECT COUNT(*) FROM events`:                       6, // project, environment, 3 hosts, version
		} {
			if n := count(t, d, q); n != want {
				t.Errorf("%s = %d, want %d", q, n, want)
			}
		}
	})
}

func TestAllHosts(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := newService(t, d)
		fixture(t, s)
		if _, err := s.CreateEnvironment(ctx, actor, "shop", inventory.EnvironmentInput{Name: "staging", Executor: localExec("true")}); err != nil {
			t.Fatal(err)
		}

		empty, err := s.AllHosts(ctx, d, "shop", "staging")
		if err != nil || empty == nil || len(empty) != 0 {
			t.Fatalf("AllHosts of an empty environment = %#v, %v; want an empty, non-nil list", empty, err)
		}
		missing, err := s.AllHosts(ctx, d, "shop", "nowhere")
		if err != nil || len(missing) != 0 {
			t.Fatalf("AllHosts of a missing environment = %v, %v", missing, err)
		}

		hosts, err := s.AllHosts(ctx, d, "shop", "prod")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, h := range hosts {
			got = append(got, h.Name+"@"+h.Address)
			if h.Labels == nil {
				t.Errorf("host %s has nil labels", h.Name)
			}
			if h.CreatedAt.IsZero() {
				t.Errorf("host %s has no created_at", h.Name)
			}
		}
		if fmt.Sprint(got) != "[h1@10.0.0.1 h2@10.0.0.2:2222 h3@10.0.0.3]" {
			t.Fatalf("AllHosts = %v, want the three hosts by name", got)
		}
		if hosts[0].Labels["group"] != "blue" {
			t.Fatalf("h1 labels = %v", hosts[0].Labels)
		}

		// Inside a transaction, AllHosts sees the transaction's own rows,
		// for an engine that reads and writes in one transaction.
		err = d.InTx(ctx, func(tx db.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO hosts (project_id, environment, name, address, labels, created_at)
				VALUES ('shop', 'staging', 's1', '10.1.0.1', '{"zone":"a"}', CURRENT_TIMESTAMP)`); err != nil {
				return err
			}
			in, err := s.AllHosts(ctx, tx, "shop", "staging")
			if err != nil {
				return err
			}
			if len(in) != 1 || in[0].Name != "s1" || in[0].Labels["zone"] != "a" {
				return fmt.Errorf("AllHosts in the transaction = %v", in)
			}
			return errors.New("roll back")
		})
		if err == nil || err.Error() != "roll back" {
			t.Fatal(err)
		}
		after, err := s.AllHosts(ctx, d, "shop", "staging")
		if err != nil || len(after) != 0 {
			t.Fatalf("after the rollback AllHosts = %v, %v", after, err)
		}
	})
}

func TestGetVersionByName(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := newService(t, d)
		v1 := fixture(t, s)
		if _, err := s.CreateProject(ctx, actor, inventory.ProjectInput{ID: "other", Name: "Other"}); err != nil {
			t.Fatal(err)
		}
		ov, err := s.CreateVersion(ctx, actor, "other", inventory.VersionInput{Name: "v1", Metadata: map[string]any{"commit": "abc"}})
		if err != nil {
			t.Fatalf("the same version name in another project: %v", err)
		}

		got, err := s.GetVersionByName(ctx, d, "shop", "v1")
		if err != nil || got.ID != v1.ID || got.Artifact != "s3://b/v1.tgz" || got.CreatedBy != actor.ID {
			t.Fatalf("GetVersionByName(shop, v1) = %+v, %v; want %+v", got, err, v1)
		}
		got, err = s.GetVersionByName(ctx, d, "other", "v1")
		if err != nil || got.ID != ov.ID || got.Metadata["commit"] != "abc" {
			t.Fatalf("GetVersionByName(other, v1) = %+v, %v", got, err)
		}
		err = d.InTx(ctx, func(tx db.Tx) error {
			got, err := s.GetVersionByName(ctx, tx, "shop", "v1")
			if err == nil && got.ID != v1.ID {
				err = fmt.Errorf("in a transaction: %s", got.ID)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}

		for _, tt := range []struct {
			project, name, mention string
		}{
			{"shop", "v2", "v2"},
			{"shop", "V1", "V1"},
			{"shop", v1.ID, v1.ID}, // an id is not a name
			{"nope", "v1", "nope"},
		} {
			_, err := s.GetVersionByName(ctx, d, tt.project, tt.name)
			e := apperr.From(err)
			if e == nil || e.Status != 404 || e.Code != "not_found" || !bytes.Contains([]byte(e.Message), []byte(tt.mention)) {
				t.Errorf("GetVersionByName(%s, %s) = %v; want a 404 naming %q", tt.project, tt.name, err, tt.mention)
			}
		}
		// And the id lookup is not a name lookup.
		if _, err := s.GetVersion(ctx, "shop", "v1"); apperr.From(err) == nil || apperr.From(err).Status != 404 {
			t.Fatalf("GetVersion by a name: %v", err)
		}
	})
}

func TestConcurrentDuplicatesAreConflicts(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := newService(t, d)
		fixture(t, s)
		const n = 8
		type result struct {
			what string
			err  error
		}
		results := make(chan result, 3*n)
		var wg sync.WaitGroup
		for range n {
			wg.Add(3)
			go func() {
				defer wg.Done()
				_, err := s.CreateVersion(ctx, actor, "shop", inventory.VersionInput{Name: "v2"})
				results <- result{"version", err}
			}()
			go func() {
				defer wg.Done()
				_, err := s.AddHosts(ctx, actor, "shop", "prod", []inventory.HostInput{{Name: "h9", Address: "10.0.0.9"}})
				results <- result{"host", err}
			}()
			go func() {
				defer wg.Done()
				_, err := s.CreateProject(ctx, actor, inventory.ProjectInput{Name: "Twin"})
				results <- result{"project", err}
			}()
		}
		wg.Wait()
		close(results)
		ok := map[string]int{}
		for r := range results {
			if r.err == nil {
				ok[r.what]++
				continue
			}
			if e := apperr.From(r.err); e == nil || e.Status != 409 {
				t.Errorf("concurrent %s: %v, want success or 409", r.what, r.err)
			}
		}
		if ok["version"] != 1 || ok["host"] != 1 || ok["project"] != 1 {
			t.Fatalf("successes %v, want exactly one of each", ok)
		}
		if got := eventTypes(t, d, event.KindHost, "shop/prod/h9"); len(got) != 1 {
			t.Fatalf("host h9 events %v, want one host_created", got)
		}
	})
}

func TestExecutorSealedWithTheKey(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := newService(t, d)
		fixture(t, s)
		spec := &executor.Spec{Type: executor.TypeLocal, Script: "deploy --token=SCRIPT-SECRET-42", Env: map[string]string{"API_KEY": "ENV-SECRET-42"}}
		if _, err := s.CreateEnvironment(ctx, actor, "shop", inventory.EnvironmentInput{Name: "qa", Executor: spec}); err != nil {
			t.Fatal(err)
		}
		var sealed string
		if err := d.QueryRow(ctx, `SELECT executor FROM environments WHERE project_id = 'shop' AND name = 'qa'`).Scan(&sealed); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains([]byte(sealed), []byte("SECRET-42")) || bytes.Contains([]byte(sealed), []byte("local")) {
			t.Fatalf("the executor column holds clear text: %s", sealed)
		}
		e, err := s.GetEnvironment(ctx, "shop", "qa")
		if err != nil || e.Executor.Env["API_KEY"] != "ENV-SECRET-42" || e.Executor.Script != spec.Script {
			t.Fatalf("GetEnvironment = %+v, %v", e, err)
		}

		// Another key cannot read it, and says so rather than returning an
		// empty executor.
		other := inventory.New(d, newBox(t, 9), event.NewPublisher(), "")
		if _, err := other.GetEnvironment(ctx, "shop", "qa"); !errors.Is(err, secret.ErrWrongKey) {
			t.Fatalf("GetEnvironment with the wrong key = %v, want ErrWrongKey", err)
		}
	})
}
