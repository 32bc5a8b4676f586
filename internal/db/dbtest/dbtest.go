// Package dbtest gives each test its own migrated database: a SQLite file in
// the test's temporary folder, and, when HERALD_TEST_DATABASE_URL is set, a
// fresh PostgreSQL schema. Tests on separate databases run in parallel.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/herald-release/herald/internal/db"
)

// EnvURL names the PostgreSQL server tests use.
const EnvURL = "HERALD_TEST_DATABASE_URL"

// Each runs fn once per available database, as parallel subtests named
// "sqlite" and "postgres".
func Each(t *testing.T, fn func(t *testing.T, d *db.DB)) {
	t.Helper()
	for _, dialect := range Dialects() {
		t.Run(string(dialect), func(t *testing.T) {
			t.Parallel()
			fn(t, New(t, dialect))
		})
	}
}

// Dialects lists the databases this test run can use.
func Dialects() []db.Dialect {
	if os.Getenv(EnvURL) != "" {
		return []db.Dialect{db.SQLite, db.Postgres}
	}
	return []db.Dialect{db.SQLite}
}

// New opens a fresh, migrated database of the dialect, closed and dropped
// when the test ends.
func New(t testing.TB, dialect db.Dialect) *db.DB {
	t.Helper()
	u := URL(t, dialect)
	ctx := context.Background()
	d, err := db.Open(ctx, u, t.TempDir())
	if err != nil {
		t.Fatalf("open %s test database: %v", dialect, err)
	}
	t.Cleanup(d.Close)
	if _, err := d.Migrate(ctx); err != nil {
		t.Fatalf("migrate %s test database: %v", dialect, err)
	}
	return d
}

// URL makes a fresh, empty database of the dialect and returns the URL that
// HERALD_DATABASE_URL would hold for it: for SQLite a file path, for
// PostgreSQL the server URL with search_path set to a new schema. The
// schema is dropped when the test ends.
func URL(t testing.TB, dialect db.Dialect) string {
	t.Helper()
	if dialect == db.SQLite {
		return "sqlite://" + filepath.Join(t.TempDir(), "herald.db")
	}
	base := os.Getenv(EnvURL)
	if base == "" {
		t.Skipf("%s is not set: skipping the PostgreSQL run", EnvURL)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to %s: %v", EnvURL, err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "herald_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
	})
	pu, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvURL, err)
	}
	q := pu.Query()
	q.Set("search_path", schema)
	pu.RawQuery = q.Encode()
	return pu.String()
}
