package db_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/db/dbtest"
)

func TestQueriesBehaveAlikeOnBothEngines(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Microsecond)
		_, err := d.Exec(ctx, `INSERT INTO projects (id, name, description, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)`, "app", "App", "", now)
		if err != nil {
			t.Fatal(err)
		}
		_, err = d.Exec(ctx, `INSERT INTO projects (id, name, description, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)`, "app", "Again", "", now)
		if !errors.Is(err, db.ErrUnique) {
			t.Fatalf("duplicate insert: got %v, want ErrUnique", err)
		}
		var got time.Time
		if err := d.QueryRow(ctx, `SELECT created_at FROM projects WHERE id = $1`, "app").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if !got.Equal(now) {
			t.Fatalf("time round trip: got %v, want %v", got, now)
		}
		err = d.QueryRow(ctx, `SELECT name FROM projects WHERE id = $1`, "missing").Scan(new(string))
		if !errors.Is(err, db.ErrNoRows) {
			t.Fatalf("missing row: got %v, want ErrNoRows", err)
		}
		_, err = d.Exec(ctx, `INSERT INTO versions (id, project_id, name, created_at) VALUES ($1, $2, $3, $4)`, "v1", "nope", "v1", now)
		if !errors.Is(err, db.ErrForeignKey) {
			t.Fatalf("orphan insert: got %v, want ErrForeignKey", err)
		}
		// A failed transaction leaves nothing behind.
		boom := errors.New("boom")
		err = d.InTx(ctx, func(tx db.Tx) error {
			if _, err := tx.Exec(ctx, `UPDATE projects SET name = $1 WHERE id = $2`, "Changed", "app"); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("InTx returned %v", err)
		}
		var name string
		if err := d.QueryRow(ctx, `SELECT name FROM projects WHERE id = $1`, "app").Scan(&name); err != nil || name != "App" {
			t.Fatalf("after rollback name = %q, %v; want App", name, err)
		}
		// Migrating again is a no-op.
		applied, err := d.Migrate(ctx)
		if err != nil || len(applied) != 0 {
			t.Fatalf("second Migrate applied %v, %v", applied, err)
		}
	})
}
