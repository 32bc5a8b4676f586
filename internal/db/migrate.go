package db

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrateLockKey serialises migrations of several Herald processes starting
// at once on one PostgreSQL database.
const migrateLockKey = 0x68657261 // "hera"

type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number and _", e.Name())
		}
		b, err := migrationFS.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// forSQLite turns the PostgreSQL schema text into SQLite's: the only types
// that differ are the time stamps.
func forSQLite(s string) string {
	return strings.ReplaceAll(s, "TIMESTAMPTZ", "TIMESTAMP")
}

// Migrate brings Herald's schema and River's tables up to date. It is safe to
// run from several processes at once.
func (d *DB) Migrate(ctx context.Context) ([]string, error) {
	ms, err := loadMigrations()
	if err != nil {
		return nil, err
	}
	var applied []string
	err = d.InTx(ctx, func(tx Tx) error {
		if d.dialect == Postgres {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrateLockKey)); err != nil {
				return fmt.Errorf("take the migration lock: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS herald_schema_migrations (
			version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`); err != nil {
			return fmt.Errorf("create the migrations table: %w", err)
		}
		done := map[int]bool{}
		rows, err := tx.Query(ctx, `SELECT version FROM herald_schema_migrations`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return err
			}
			done[v] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, m := range ms {
			if done[m.version] {
				continue
			}
			text := m.sql
			if d.dialect == SQLite {
				text = forSQLite(text)
			}
			if err := execScript(ctx, tx, text); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO herald_schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.version, m.name, time.Now().UTC().Format(time.RFC3339)); err != nil {
				return err
			}
			applied = append(applied, m.name)
		}
		return nil
	})
	if err != nil {
		return applied, err
	}
	if err := d.migrateRiver(ctx); err != nil {
		return applied, fmt.Errorf("River migrations: %w", err)
	}
	return applied, nil
}

// execScript runs a multi-statement script. pgx runs several statements in
// one Exec when there are no arguments; the SQLite driver does too.
func execScript(ctx context.Context, tx Tx, script string) error {
	switch raw := tx.Raw().(type) {
	case pgx.Tx:
		_, err := raw.Exec(ctx, script)
		return err
	case *sql.Tx:
		_, err := raw.ExecContext(ctx, script)
		return err
	}
	return fmt.Errorf("unknown transaction type %T", tx.Raw())
}

// migrateRiver runs River's own migrations with River's migrator, so its
// tables always match the River version built in. On PostgreSQL each River
// version runs in its own transaction (one of them adds an enum value that a
// later one uses, which PostgreSQL refuses inside one transaction), each under
// the migration lock so that concurrent starts do not race.
func (d *DB) migrateRiver(ctx context.Context) error {
	if d.dialect == SQLite {
		m, err := rivermigrate.New(riversqlite.New(nil), nil)
		if err != nil {
			return err
		}
		return d.InTx(ctx, func(tx Tx) error {
			_, err := m.MigrateTx(ctx, tx.Raw().(*sql.Tx), rivermigrate.DirectionUp, nil)
			return err
		})
	}
	m, err := rivermigrate.New(riverpgxv5.New(nil), &rivermigrate.Config{Schema: d.schema})
	if err != nil {
		return err
	}
	for {
		var stepped bool
		err := d.InTx(ctx, func(tx Tx) error {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrateLockKey)); err != nil {
				return fmt.Errorf("take the migration lock: %w", err)
			}
			res, err := m.MigrateTx(ctx, tx.Raw().(pgx.Tx), rivermigrate.DirectionUp, &rivermigrate.MigrateOpts{MaxSteps: 1})
			if err != nil {
				return err
			}
			stepped = len(res.Versions) > 0
			return nil
		})
		if err != nil {
			return err
		}
		if !stepped {
			return nil
		}
	}
}
