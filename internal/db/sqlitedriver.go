package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"reflect"
	"strings"
	"sync"

	"modernc.org/sqlite"
)

// sqliteDriverName is modernc's SQLite behind a statement cache.
const sqliteDriverName = "herald-sqlite"

func init() { sql.Register(sqliteDriverName, cachingDriver{base: &sqlite.Driver{}}) }

// cachingDriver keeps each connection's statements prepared. The pure-Go
// SQLite spends most of a short query's time parsing it, and database/sql
// (River's SQLite driver included) sends every query as text to be parsed
// again. Herald's and River's queries are a small fixed set, so each is
// prepared once per connection and reused: several times the throughput
// of the delivery path.
type cachingDriver struct{ base driver.Driver }

func (d cachingDriver) Open(name string) (driver.Conn, error) {
	c, err := d.base.Open(name)
	if err != nil {
		return nil, err
	}
	return &cachingConn{inner: c, stmts: map[string]*cachedStmt{}}, nil
}

// maxCachedStmts bounds a connection's cache; past it queries are parsed
// each time, as without the cache.
const maxCachedStmts = 512

type cachedStmt struct {
	stmt  driver.Stmt
	inUse bool // its rows are still open; a second use must not reset it
}

type cachingConn struct {
	inner driver.Conn
	mu    sync.Mutex
	stmts map[string]*cachedStmt
}

// acquire returns the statement for q, marked in use, or nil when it
// cannot be used from the cache (a script, a full cache, already in use).
func (c *cachingConn) acquire(ctx context.Context, q string) *cachedStmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.stmts[q]; st != nil {
		if st.inUse {
			return nil
		}
		st.inUse = true
		return st
	}
	if len(c.stmts) >= maxCachedStmts || strings.Contains(strings.TrimRight(strings.TrimSpace(q), ";"), ";") {
		return nil
	}
	prep, err := c.inner.(driver.ConnPrepareContext).PrepareContext(ctx, q)
	if err != nil {
		return nil // the uncached path reports the error
	}
	st := &cachedStmt{stmt: prep, inUse: true}
	c.stmts[q] = st
	return st
}

func (c *cachingConn) release(st *cachedStmt) {
	c.mu.Lock()
	st.inUse = false
	c.mu.Unlock()
}

func (c *cachingConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	if st := c.acquire(ctx, q); st != nil {
		defer c.release(st)
		return st.stmt.(driver.StmtExecContext).ExecContext(ctx, args)
	}
	return c.inner.(driver.ExecerContext).ExecContext(ctx, q, args)
}

func (c *cachingConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	if st := c.acquire(ctx, q); st != nil {
		rows, err := st.stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
		if err != nil {
			c.release(st)
			return nil, err
		}
		return &cachedRows{Rows: rows, release: func() { c.release(st) }}, nil
	}
	return c.inner.(driver.QueryerContext).QueryContext(ctx, q, args)
}

func (c *cachingConn) Prepare(q string) (driver.Stmt, error) { return c.inner.Prepare(q) }

func (c *cachingConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	return c.inner.(driver.ConnPrepareContext).PrepareContext(ctx, q)
}

func (c *cachingConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *cachingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.inner.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

func (c *cachingConn) Close() error {
	c.mu.Lock()
	for q, st := range c.stmts {
		_ = st.stmt.Close()
		delete(c.stmts, q)
	}
	c.mu.Unlock()
	return c.inner.Close()
}

func (c *cachingConn) Ping(ctx context.Context) error {
	if p, ok := c.inner.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *cachingConn) ResetSession(ctx context.Context) error {
	if r, ok := c.inner.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *cachingConn) IsValid() bool {
	if v, ok := c.inner.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

// cachedRows gives the statement back when the rows are closed, and passes
// column type questions through.
type cachedRows struct {
	driver.Rows
	release func()
	once    sync.Once
}

func (r *cachedRows) Close() error {
	err := r.Rows.Close()
	r.once.Do(r.release)
	return err
}

func (r *cachedRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *cachedRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}
