// Package db is Herald's one handle on its database, SQLite or PostgreSQL.
//
// Queries are written once, in the SQL both engines share, with $1-style
// placeholders. The package hides the two drivers behind Querier and Tx, and
// hands River the driver-native transaction through Tx.Raw so that jobs are
// enqueued in the same transaction as the change that caused them.
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Dialect names the engine behind a DB.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Querier runs statements; DB and Tx both are one.
type Querier interface {
	// Exec runs a statement and returns the number of rows it affected.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	QueryRow(ctx context.Context, query string, args ...any) Row
}

// Tx is a transaction. Raw returns the driver's own transaction (*sql.Tx for
// SQLite, pgx.Tx for PostgreSQL) for River's InsertTx.
type Tx interface {
	Querier
	Raw() any
	Dialect() Dialect
	// AfterCommit runs fn once the transaction has committed, and never if
	// it rolls back: how work that the change makes ready (deliveries to
	// send) is announced without being seen before it exists.
	AfterCommit(fn func())
}

// commitHooks collects a transaction's AfterCommit functions.
type commitHooks struct{ fns []func() }

func (h *commitHooks) add(fn func()) { h.fns = append(h.fns, fn) }

func (h *commitHooks) run() {
	for _, fn := range h.fns {
		fn()
	}
}

// Rows iterates over a result set.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Row is a single-row result; Scan returns ErrNoRows when there is none.
type Row interface {
	Scan(dest ...any) error
}

// DB is an open database.
type DB struct {
	dialect Dialect
	sqlDB   *sql.DB       // SQLite
	pool    *pgxpool.Pool // PostgreSQL
	schema  string        // PostgreSQL schema, empty for the search_path default
}

// Open connects to url: a postgres:// or postgresql:// URL for PostgreSQL,
// anything else (or empty) for SQLite in dataDir/herald.db.
func Open(ctx context.Context, url, dataDir string) (*DB, error) {
	if strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://") {
		return openPostgres(ctx, url)
	}
	path := strings.TrimPrefix(url, "sqlite://")
	if path == "" {
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("create data folder %s: %w", dataDir, err)
		}
		path = filepath.Join(dataDir, "herald.db")
	}
	return openSQLite(path)
}

func openSQLite(path string) (*DB, error) {
	// WAL lets readers work during a write; synchronous=NORMAL in WAL mode
	// loses nothing on a process crash (SIGKILL), only possibly the last
	// commits on a power loss, and is several times faster than FULL.
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)" +
		"&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_time_format=sqlite&_txlock=immediate"
	sqlDB, err := sql.Open(sqliteDriverName, dsn)
	if err != nil {
		return nil, fmt.Errorf("open SQLite database %s: %w", path, err)
	}
	// SQLite allows one writer; River's driver documentation recommends a
	// single connection so that its concurrent internals never see
	// SQLITE_BUSY. Everything in Herald therefore goes through one
	// connection, and no code may use the DB while it holds a Tx.
	sqlDB.SetMaxOpenConns(1)
	if err := sqlDB.Ping(); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("open SQLite database %s: %w", path, err)
	}
	return &DB{dialect: SQLite, sqlDB: sqlDB}, nil
}

func openPostgres(ctx context.Context, url string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse HERALD_DATABASE_URL: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to PostgreSQL at %s:%d: %w: check that the server runs and HERALD_DATABASE_URL is right",
			cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	return &DB{dialect: Postgres, pool: pool, schema: cfg.ConnConfig.RuntimeParams["search_path"]}, nil
}

// Dialect tells which engine this is.
func (d *DB) Dialect() Dialect { return d.dialect }

// Schema is the PostgreSQL schema from the URL's search_path, if any.
func (d *DB) Schema() string { return d.schema }

// SQL returns the SQLite handle (nil for PostgreSQL).
func (d *DB) SQL() *sql.DB { return d.sqlDB }

// Pool returns the PostgreSQL pool (nil for SQLite).
func (d *DB) Pool() *pgxpool.Pool { return d.pool }

// Close releases the connections.
func (d *DB) Close() {
	if d.sqlDB != nil {
		d.sqlDB.Close()
	}
	if d.pool != nil {
		d.pool.Close()
	}
}

// Ping checks that the database answers.
func (d *DB) Ping(ctx context.Context) error {
	if d.pool != nil {
		return d.pool.Ping(ctx)
	}
	return d.sqlDB.PingContext(ctx)
}

// InTx runs fn in a transaction, committed when fn returns nil.
func (d *DB) InTx(ctx context.Context, fn func(Tx) error) error {
	if d.pool != nil {
		ptx, err := d.pool.Begin(ctx)
		if err != nil {
			return fmt.Errorf("begin transaction: %w", err)
		}
		hooks := &commitHooks{}
		if err := fn(pgTx{ptx, hooks}); err != nil {
			_ = ptx.Rollback(context.WithoutCancel(ctx))
			return err
		}
		if err := ptx.Commit(ctx); err != nil {
			return mapErr(err)
		}
		hooks.run()
		return nil
	}
	stx, err := d.sqlDB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	hooks := &commitHooks{}
	if err := fn(sqliteTx{stx, hooks}); err != nil {
		_ = stx.Rollback()
		return err
	}
	if err := stx.Commit(); err != nil {
		return mapErr(err)
	}
	hooks.run()
	return nil
}

func (d *DB) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	if d.pool != nil {
		return pgExec(ctx, d.pool, q, args)
	}
	return sqlExec(ctx, d.sqlDB, q, args)
}

func (d *DB) Query(ctx context.Context, q string, args ...any) (Rows, error) {
	if d.pool != nil {
		return pgQuery(ctx, d.pool, q, args)
	}
	return sqlQuery(ctx, d.sqlDB, q, args)
}

func (d *DB) QueryRow(ctx context.Context, q string, args ...any) Row {
	if d.pool != nil {
		return pgRow{d.pool.QueryRow(ctx, q, args...)}
	}
	return sqlRow{d.sqlDB.QueryRowContext(ctx, q, args...)}
}

// --- SQLite (database/sql) ---

type sqlRunner interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

type sqliteTx struct {
	tx    *sql.Tx
	hooks *commitHooks
}

func (t sqliteTx) Raw() any              { return t.tx }
func (t sqliteTx) AfterCommit(fn func()) { t.hooks.add(fn) }
func (t sqliteTx) Dialect() Dialect      { return SQLite }
func (t sqliteTx) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	return sqlExec(ctx, t.tx, q, args)
}
func (t sqliteTx) Query(ctx context.Context, q string, args ...any) (Rows, error) {
	return sqlQuery(ctx, t.tx, q, args)
}
func (t sqliteTx) QueryRow(ctx context.Context, q string, args ...any) Row {
	return sqlRow{t.tx.QueryRowContext(ctx, q, args...)}
}

func sqlExec(ctx context.Context, r sqlRunner, q string, args []any) (int64, error) {
	res, err := r.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, mapErr(err)
	}
	return res.RowsAffected()
}

func sqlQuery(ctx context.Context, r sqlRunner, q string, args []any) (Rows, error) {
	rows, err := r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, mapErr(err)
	}
	return sqlRows{rows}, nil
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close()              { _ = r.Rows.Close() }
func (r sqlRows) Err() error          { return mapErr(r.Rows.Err()) }
func (r sqlRows) Scan(d ...any) error { return mapErr(r.Rows.Scan(d...)) }

type sqlRow struct{ row *sql.Row }

func (r sqlRow) Scan(dest ...any) error { return mapErr(r.row.Scan(dest...)) }

// --- PostgreSQL (pgx) ---

type pgRunner interface {
	Exec(ctx context.Context, q string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, q string, args ...any) (pgx.Rows, error)
}

type pgTx struct {
	tx    pgx.Tx
	hooks *commitHooks
}

func (t pgTx) Raw() any              { return t.tx }
func (t pgTx) AfterCommit(fn func()) { t.hooks.add(fn) }
func (t pgTx) Dialect() Dialect      { return Postgres }
func (t pgTx) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	return pgExec(ctx, t.tx, q, args)
}
func (t pgTx) Query(ctx context.Context, q string, args ...any) (Rows, error) {
	return pgQuery(ctx, t.tx, q, args)
}
func (t pgTx) QueryRow(ctx context.Context, q string, args ...any) Row {
	return pgRow{t.tx.QueryRow(ctx, q, args...)}
}

func pgExec(ctx context.Context, r pgRunner, q string, args []any) (int64, error) {
	tag, err := r.Exec(ctx, q, args...)
	if err != nil {
		return 0, mapErr(err)
	}
	return tag.RowsAffected(), nil
}

func pgQuery(ctx context.Context, r pgRunner, q string, args []any) (Rows, error) {
	rows, err := r.Query(ctx, q, args...)
	if err != nil {
		return nil, mapErr(err)
	}
	return pgRows{rows}, nil
}

type pgRows struct{ pgx.Rows }

func (r pgRows) Err() error          { return mapErr(r.Rows.Err()) }
func (r pgRows) Scan(d ...any) error { return mapErr(r.Rows.Scan(d...)) }

type pgRow struct{ row pgx.Row }

func (r pgRow) Scan(dest ...any) error { return mapErr(r.row.Scan(dest...)) }

// --- errors ---

var (
	// ErrNoRows: the row asked for does not exist.
	ErrNoRows = errors.New("no rows")
	// ErrUnique: a unique constraint refused the write.
	ErrUnique = errors.New("unique constraint violated")
	// ErrForeignKey: the write refers to a row that does not exist, or a
	// delete would orphan rows.
	ErrForeignKey = errors.New("foreign key constraint violated")
)

// sqliteCoder is implemented by modernc.org/sqlite errors.
type sqliteCoder interface{ Code() int }

func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) || errors.Is(err, pgx.ErrNoRows) {
		return ErrNoRows
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505":
			return fmt.Errorf("%w: %s", ErrUnique, pgErr.ConstraintName)
		case "23503":
			return fmt.Errorf("%w: %s", ErrForeignKey, pgErr.ConstraintName)
		}
		return err
	}
	var sc sqliteCoder
	if errors.As(err, &sc) {
		switch sc.Code() {
		case 2067, 1555: // SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY
			return fmt.Errorf("%w: %v", ErrUnique, err)
		case 787: // SQLITE_CONSTRAINT_FOREIGNKEY
			return fmt.Errorf("%w: %v", ErrForeignKey, err)
		}
	}
	return err
}

// Values returns rows tuples of cols placeholders, "($1, $2), ($3, $4)",
// numbered from first: the VALUES list of a multi-row statement.
func Values(first, cols, rows int) string {
	var b strings.Builder
	n := first
	for r := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c := range cols {
			if c > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			n++
		}
		b.WriteByte(')')
	}
	return b.String()
}

// Every returns n placeholders, "$1, $3, $5", from first, step apart: the
// first column of a Values list again, for an IN list an index can serve.
func Every(first, step, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(first + i*step))
	}
	return b.String()
}
