// Package identity keeps users, their API tokens and console sessions.
// Tokens and session ids are stored only as SHA-256 hashes: they are long
// random strings, so a hash is enough, and a database copy cannot be used to
// log in.
package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/herald-release/herald/internal/apperr"
	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/id"
	"github.com/herald-release/herald/internal/page"
	"github.com/herald-release/herald/internal/validate"
)

// Roles.
const (
	RoleAdmin  = "admin"
	RoleMember = "member"
)

// TokenPrefix starts every API token, so that secret scanners can find them.
const TokenPrefix = "hrd_"

// User is a person or a robot account.
type User struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

// IsAdmin tells whether u may administer Herald.
func (u *User) IsAdmin() bool { return u != nil && u.Role == RoleAdmin }

// Token is an API token as listed; the secret itself is shown only once.
type Token struct {
	ID         string     `json:"id"`
	UserID     string     `json:"user_id"`
	Name       string     `json:"name"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

// Store reads and writes identities.
type Store struct {
	db  *db.DB
	now func() time.Time
}

// New returns a Store on d.
func New(d *db.DB) *Store { return &Store{db: d, now: time.Now} }

// NewUser is the input of CreateUser.
type NewUser struct {
	Name     string `json:"name"`
	Email    string `json:"email"`
	Role     string `json:"role"`
	Password string `json:"password"`
}

// Validate checks a new user.
func (n NewUser) Validate() error {
	var errs validate.Errors
	if strings.TrimSpace(n.Name) == "" {
		errs.Add("name", "is required")
	} else if len(n.Name) > 100 {
		errs.Add("name", "must be at most 100 characters")
	}
	if n.Email != "" {
		if a, err := mail.ParseAddress(n.Email); err != nil || a.Address != n.Email {
			errs.Add("email", "is not an email address")
		}
	}
	if n.Role != RoleAdmin && n.Role != RoleMember {
		errs.Add("role", "must be %q or %q", RoleAdmin, RoleMember)
	}
	if n.Password != "" && len(n.Password) < 8 {
		errs.Add("password", "must be at least 8 characters")
	}
	if len(n.Password) > 72 {
		errs.Add("password", "must be at most 72 bytes")
	}
	return errs.Err()
}

// CreateUser adds a user.
func (s *Store) CreateUser(ctx context.Context, q db.Querier, n NewUser) (*User, error) {
	if err := n.Validate(); err != nil {
		return nil, err
	}
	hash := ""
	if n.Password != "" {
		b, err := bcrypt.GenerateFromPassword([]byte(n.Password), bcrypt.DefaultCost)
		if err != nil {
			return nil, err
		}
		hash = string(b)
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	u := &User{ID: id.New("usr"), Name: strings.TrimSpace(n.Name), Email: n.Email, Role: n.Role, CreatedAt: now}
	_, err := q.Exec(ctx, `INSERT INTO users (id, name, email, role, password_hash, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6)`, u.ID, u.Name, u.Email, u.Role, hash, now)
	if errors.Is(err, db.ErrUnique) {
		return nil, apperr.Conflict("a user named %q already exists: choose another name", u.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("create user: %w", err)
	}
	return u, nil
}

const userCols = `id, name, email, role, created_at`

func scanUser(r interface{ Scan(...any) error }) (*User, error) {
	var u User
	if err := r.Scan(&u.ID, &u.Name, &u.Email, &u.Role, &u.CreatedAt); err != nil {
		return nil, err
	}
	return &u, nil
}

// GetUser reads a user by id.
func (s *Store) GetUser(ctx context.Context, userID string) (*User, error) {
	u, err := scanUser(s.db.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE id = $1`, userID))
	if errors.Is(err, db.ErrNoRows) {
		return nil, apperr.NotFound("user %q not found", userID)
	}
	return u, err
}

// ListUsers lists users by id.
func (s *Store) ListUsers(ctx context.Context, p page.Params) (page.Page[*User], error) {
	rows, err := s.db.Query(ctx, `SELECT `+userCols+` FROM users WHERE id > $1 ORDER BY id LIMIT $2`, p.After, p.Limit+1)
	if err != nil {
		return page.Page[*User]{}, err
	}
	defer rows.Close()
	var out []*User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return page.Page[*User]{}, err
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return page.Page[*User]{}, err
	}
	return page.Make(out, p, func(u *User) string { return u.ID }), nil
}

// CountUsers tells whether the database is new.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM users`).Scan(&n)
	return n, err
}

// CheckPassword returns the user when name and password match. The
// comparison costs the same whether or not the user exists.
func (s *Store) CheckPassword(ctx context.Context, name, password string) (*User, error) {
	var hash string
	var u User
	err := s.db.QueryRow(ctx, `SELECT id, name, email, role, created_at, password_hash FROM users WHERE name = $1`, name).
		Scan(&u.ID, &u.Name, &u.Email, &u.Role, &u.CreatedAt, &hash)
	if err != nil && !errors.Is(err, db.ErrNoRows) {
		return nil, err
	}
	if hash == "" {
		// Burn the same time as a real check so timing tells nothing.
		_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return nil, apperr.Unauthorized("wrong user name or password")
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		return nil, apperr.Unauthorized("wrong user name or password")
	}
	return &u, nil
}

var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("not a password anyone has"), bcrypt.DefaultCost)
	return h
})

// randomSecret returns prefix + 32 random bytes in lower-case base32.
func randomSecret(prefix string) string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// Hash is how tokens and session ids are stored.
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// CreateToken makes a token for a user and returns it with its secret,
// which is not stored and cannot be shown again. A fixed secret (the
// HERALD_ADMIN_TOKEN of first start) may be given.
func (s *Store) CreateToken(ctx context.Context, q db.Querier, userID, name, fixed string) (*Token, string, error) {
	var errs validate.Errors
	if strings.TrimSpace(name) == "" {
		errs.Add("name", "is required")
	} else if len(name) > 100 {
		errs.Add("name", "must be at most 100 characters")
	}
	if fixed != "" && len(fixed) < 16 {
		errs.Add("token", "must be at least 16 characters")
	}
	if err := errs.Err(); err != nil {
		return nil, "", err
	}
	secret := fixed
	if secret == "" {
		secret = randomSecret(TokenPrefix)
	}
	t := &Token{ID: id.New("tok"), UserID: userID, Name: strings.TrimSpace(name), CreatedAt: s.now().UTC().Truncate(time.Microsecond)}
	_, err := q.Exec(ctx, `INSERT INTO api_tokens (id, user_id, name, token_hash, created_at) VALUES ($1, $2, $3, $4, $5)`,
		t.ID, t.UserID, t.Name, Hash(secret), t.CreatedAt)
	if errors.Is(err, db.ErrForeignKey) {
		return nil, "", apperr.NotFound("user %q not found", userID)
	}
	if err != nil {
		return nil, "", fmt.Errorf("create token: %w", err)
	}
	return t, secret, nil
}

// GetToken reads a token's listing.
func (s *Store) GetToken(ctx context.Context, tokenID string) (*Token, error) {
	var t Token
	err := s.db.QueryRow(ctx, `SELECT id, user_id, name, created_at, last_used_at, revoked_at FROM api_tokens WHERE id = $1`, tokenID).
		Scan(&t.ID, &t.UserID, &t.Name, &t.CreatedAt, &t.LastUsedAt, &t.RevokedAt)
	if errors.Is(err, db.ErrNoRows) {
		return nil, apperr.NotFound("token %q not found", tokenID)
	}
	return &t, err
}

// ListTokens lists a user's tokens, newest last.
func (s *Store) ListTokens(ctx context.Context, userID string) ([]*Token, error) {
	rows, err := s.db.Query(ctx, `SELECT id, user_id, name, created_at, last_used_at, revoked_at FROM api_tokens WHERE user_id = $1 ORDER BY id`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*Token{}
	for rows.Next() {
		var t Token
		if err := rows.Scan(&t.ID, &t.UserID, &t.Name, &t.CreatedAt, &t.LastUsedAt, &t.RevokedAt); err != nil {
			return nil, err
		}
		out = append(out, &t)
	}
	return out, rows.Err()
}

// RevokeToken makes a token unusable; revoking twice is harmless.
func (s *Store) RevokeToken(ctx context.Context, tokenID string) error {
	n, err := s.db.Exec(ctx, `UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL`, s.now().UTC().Truncate(time.Microsecond), tokenID)
	if err != nil {
		return err
	}
	if n == 0 {
		if _, err := s.GetToken(ctx, tokenID); err != nil {
			return err
		}
	}
	return nil
}

// Authenticate returns the user owning a live token.
func (s *Store) Authenticate(ctx context.Context, secret string) (*User, error) {
	if !strings.HasPrefix(secret, TokenPrefix) && len(secret) < 16 {
		return nil, apperr.Unauthorized("invalid API token")
	}
	var tokenID string
	var revoked *time.Time
	var lastUsed *time.Time
	var u User
	err := s.db.QueryRow(ctx, `SELECT t.id, t.revoked_at, t.last_used_at, u.id, u.name, u.email, u.role, u.created_at
		FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1`, Hash(secret)).
		Scan(&tokenID, &revoked, &lastUsed, &u.ID, &u.Name, &u.Email, &u.Role, &u.CreatedAt)
	if errors.Is(err, db.ErrNoRows) || (err == nil && revoked != nil) {
		return nil, apperr.Unauthorized("invalid or revoked API token: create a new one")
	}
	if err != nil {
		return nil, err
	}
	// Record use at most once a minute: a write per request would make
	// every read a write.
	now := s.now().UTC().Truncate(time.Microsecond)
	if lastUsed == nil || now.Sub(*lastUsed) > time.Minute {
		_, _ = s.db.Exec(ctx, `UPDATE api_tokens SET last_used_at = $1 WHERE id = $2`, now, tokenID)
	}
	return &u, nil
}

// Session is a logged-in console session.
type Session struct {
	User      *User
	CSRFToken string
	ExpiresAt time.Time
}

// SessionTTL is how long a console login lasts.
const SessionTTL = 12 * time.Hour

// CreateSession logs a user in; the returned id goes into the cookie.
func (s *Store) CreateSession(ctx context.Context, userID string) (string, *Session, error) {
	sid := randomSecret("")
	csrf := randomSecret("")
	now := s.now().UTC().Truncate(time.Microsecond)
	exp := now.Add(SessionTTL)
	_, err := s.db.Exec(ctx, `INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		Hash(sid), userID, csrf, now, exp)
	if err != nil {
		return "", nil, err
	}
	u, err := s.GetUser(ctx, userID)
	if err != nil {
		return "", nil, err
	}
	return sid, &Session{User: u, CSRFToken: csrf, ExpiresAt: exp}, nil
}

// GetSession returns a live session.
func (s *Store) GetSession(ctx context.Context, sid string) (*Session, error) {
	var sess Session
	var u User
	err := s.db.QueryRow(ctx, `SELECT s.csrf_token, s.expires_at, u.id, u.name, u.email, u.role, u.created_at
		FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = $1`, Hash(sid)).
		Scan(&sess.CSRFToken, &sess.ExpiresAt, &u.ID, &u.Name, &u.Email, &u.Role, &u.CreatedAt)
	if errors.Is(err, db.ErrNoRows) || (err == nil && !sess.ExpiresAt.After(s.now())) {
		return nil, apperr.Unauthorized("session expired: log in again")
	}
	if err != nil {
		return nil, err
	}
	sess.User = &u
	return &sess, nil
}

// DeleteSession logs out.
func (s *Store) DeleteSession(ctx context.Context, sid string) error {
	_, err := s.db.Exec(ctx, `DELETE FROM sessions WHERE id_hash = $1`, Hash(sid))
	return err
}

// PruneSessions deletes expired sessions.
func (s *Store) PruneSessions(ctx context.Context) (int64, error) {
	return s.db.Exec(ctx, `DELETE FROM sessions WHERE expires_at < $1`, s.now().UTC())
}

// SameToken compares two secrets in constant time.
func SameToken(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
