package identity_test

import (
	"context"
	"strings"
	"testing"

	"github.com/herald-release/herald/internal/apperr"
	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/db/dbtest"
	"github.com/herald-release/herald/internal/identity"
	"github.com/herald-release/herald/internal/page"
)

func TestBootstrapTokensAndSessions(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := identity.New(d)
		b, err := s.Bootstrap(ctx, "", "correct-horse")
		if err != nil || !b.Created || b.Token == "" || b.Password != "" {
			t.Fatalf("first bootstrap = %+v, %v", b, err)
		}
		again, err := s.Bootstrap(ctx, "", "")
		if err != nil || again.Created {
			t.Fatalf("second bootstrap created again: %+v, %v", again, err)
		}
		admin, err := s.Authenticate(ctx, b.Token)
		if err != nil || admin.Name != identity.AdminName || !admin.IsAdmin() {
			t.Fatalf("bootstrap token authenticates as %+v, %v", admin, err)
		}
		var stored int
		if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM api_tokens WHERE token_hash = $1`, b.Token).Scan(&stored); err != nil || stored != 0 {
			t.Fatalf("a token is stored in clear (%d rows, %v)", stored, err)
		}

		if _, err := s.CheckPassword(ctx, "admin", "wrong-password"); apperr.From(err) == nil || apperr.From(err).Status != 401 {
			t.Fatalf("wrong password: %v", err)
		}
		if _, err := s.CheckPassword(ctx, "nobody", "whatever1"); apperr.From(err) == nil {
			t.Fatalf("unknown user logged in: %v", err)
		}
		if u, err := s.CheckPassword(ctx, "admin", "correct-horse"); err != nil || u.ID != admin.ID {
			t.Fatalf("right password refused: %v", err)
		}

		m, err := s.CreateUser(ctx, d, identity.NewUser{Name: "mia", Email: "mia@example.com", Role: identity.RoleMember})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.CreateUser(ctx, d, identity.NewUser{Name: "mia", Role: identity.RoleMember})
		if e := apperr.From(err); e == nil || e.Status != 409 || e.Code != "conflict" {
			t.Fatalf("duplicate name: %v", err)
		}
		_, err = s.CreateUser(ctx, d, identity.NewUser{Name: "x", Role: "owner", Email: "nope"})
		if e := apperr.From(err); e == nil || len(e.Details) != 2 {
			t.Fatalf("bad role and email should give two field errors: %v", err)
		}

		tok, secret, err := s.CreateToken(ctx, d, m.ID, "ci", "")
		if err != nil || !strings.HasPrefix(secret, identity.TokenPrefix) {
			t.Fatalf("CreateToken = %q, %v", secret, err)
		}
		if u, err := s.Authenticate(ctx, secret); err != nil || u.ID != m.ID {
			t.Fatalf("member token: %v", err)
		}
		if err := s.RevokeToken(ctx, tok.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Authenticate(ctx, secret); apperr.From(err) == nil || apperr.From(err).Status != 401 {
			t.Fatalf("revoked token still works: %v", err)
		}
		if err := s.RevokeToken(ctx, "tok_missing"); apperr.From(err) == nil || apperr.From(err).Status != 404 {
			t.Fatalf("revoking a missing token: %v", err)
		}

		sid, sess, err := s.CreateSession(ctx, m.ID)
		if err != nil || sess.CSRFToken == "" {
			t.Fatal(err)
		}
		got, err := s.GetSession(ctx, sid)
		if err != nil || got.User.ID != m.ID || got.CSRFToken != sess.CSRFToken {
			t.Fatalf("GetSession = %+v, %v", got, err)
		}
		if err := s.DeleteSession(ctx, sid); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetSession(ctx, sid); apperr.From(err) == nil {
			t.Fatal("a deleted session still works")
		}

		p1, err := s.ListUsers(ctx, page.Params{Limit: 1})
		if err != nil || len(p1.Items) != 1 || p1.NextCursor == "" {
			t.Fatalf("first page = %+v, %v", p1, err)
		}
		after, _ := page.Parse(map[string][]string{"cursor": {p1.NextCursor}})
		p2, err := s.ListUsers(ctx, page.Params{Limit: 1, After: after.After})
		if err != nil || len(p2.Items) != 1 || p2.Items[0].ID == p1.Items[0].ID || p2.NextCursor != "" {
			t.Fatalf("second page = %+v, %v", p2, err)
		}
	})
}
