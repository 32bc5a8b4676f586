package identity

import (
	"context"

	"github.com/herald-release/herald/internal/db"
)

// AdminName is the user created on first start.
const AdminName = "admin"

// Bootstrapped tells what first start created; the secrets are to be shown
// once and never again.
type Bootstrapped struct {
	Created  bool
	Token    string // empty when HERALD_ADMIN_TOKEN was given
	Password string // empty when HERALD_ADMIN_PASSWORD was given
}

// Bootstrap creates the admin user with a token and a password when the
// database has no user. Given values are used; missing ones are generated
// and returned. Several processes may race here: one wins, the others see
// the admin already there.
func (s *Store) Bootstrap(ctx context.Context, token, password string) (Bootstrapped, error) {
	n, err := s.CountUsers(ctx)
	if err != nil || n > 0 {
		return Bootstrapped{}, err
	}
	out := Bootstrapped{Created: true}
	if password == "" {
		password = randomSecret("")[:20]
		out.Password = password
	}
	err = s.db.InTx(ctx, func(tx db.Tx) error {
		u, err := s.CreateUser(ctx, tx, NewUser{Name: AdminName, Role: RoleAdmin, Password: password})
		if err != nil {
			return err
		}
		_, secret, err := s.CreateToken(ctx, tx, u.ID, "bootstrap", token)
		if token == "" {
			out.Token = secret
		}
		return err
	})
	if err != nil {
		if n, cerr := s.CountUsers(ctx); cerr == nil && n > 0 {
			return Bootstrapped{}, nil // another process created the admin first
		}
		return Bootstrapped{}, err
	}
	return out, nil
}
