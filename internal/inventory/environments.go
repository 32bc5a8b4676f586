package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/herald-release/herald/internal/apperr"
	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/release/executor"
	"github.com/herald-release/herald/internal/secret"
	"github.com/herald-release/herald/internal/validate"
)

// Environment is where a project runs: a set of hosts and how to deploy them.
type Environment struct {
	ProjectID   string        `json:"project_id"`
	Name        string        `json:"name"`
	Production  bool          `json:"production"`
	Description string        `json:"description"`
	Executor    executor.Spec `json:"executor"`
	// LiveGroup is the blue-green group serving traffic ("blue", "green"),
	// empty before the first blue-green release.
	LiveGroup string    `json:"live_group"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Masked returns a copy safe to show: the private key is replaced.
func (e *Environment) Masked() *Environment {
	c := *e
	c.Executor = MaskExecutor(e.Executor)
	return &c
}

// MaskExecutor hides an executor's secrets.
func MaskExecutor(s executor.Spec) executor.Spec {
	if s.PrivateKey != "" {
		s.PrivateKey = secret.Masked
	}
	return s
}

// EnvironmentInput is the body of environment create and update.
type EnvironmentInput struct {
	Name        string         `json:"name"`
	Production  bool           `json:"production"`
	Description string         `json:"description"`
	Executor    *executor.Spec `json:"executor"`
}

func (in *EnvironmentInput) validate(creating bool) error {
	var errs validate.Errors
	if creating {
		if in.Name == "" {
			errs.Add("name", "is required")
		} else if !validate.IsSlug(in.Name) {
			errs.Add("name", "must be a slug: lowercase letters, digits and dashes, at most 63")
		}
	}
	if len(in.Description) > 4000 {
		errs.Add("description", "must be at most 4000 characters")
	}
	if in.Executor == nil {
		errs.Add("executor", "is required: how hosts of this environment are deployed, e.g. {\"type\":\"local\",\"script\":\"./deploy.sh\"}")
	} else {
		errs.Merge("executor", executor.Validate(*in.Executor))
	}
	return errs.Err()
}

const envCols = `project_id, name, production, description, executor, live_group, created_at, updated_at`

func (s *Service) scanEnv(r interface{ Scan(...any) error }) (*Environment, error) {
	var e Environment
	var sealed string
	if err := r.Scan(&e.ProjectID, &e.Name, &e.Production, &e.Description, &sealed, &e.LiveGroup, &e.CreatedAt, &e.UpdatedAt); err != nil {
		return nil, err
	}
	plain, err := s.box.Open(sealed)
	if err != nil {
		return nil, fmt.Errorf("environment %s/%s executor: %w", e.ProjectID, e.Name, err)
	}
	if err := json.Unmarshal(plain, &e.Executor); err != nil {
		return nil, fmt.Errorf("environment %s/%s executor is corrupt: %w", e.ProjectID, e.Name, err)
	}
	return &e, nil
}

func (s *Service) sealExecutor(spec executor.Spec) (string, error) {
	b, err := json.Marshal(spec)
	if err != nil {
		return "", err
	}
	return s.box.Seal(b)
}

// CreateEnvironment adds an environment to a project.
func (s *Service) CreateEnvironment(ctx context.Context, actor event.Actor, projectID string, in EnvironmentInput) (*Environment, error) {
	in.Name = strings.TrimSpace(in.Name)
	if err := in.validate(true); err != nil {
		return nil, err
	}
	sealed, err := s.sealExecutor(*in.Executor)
	if err != nil {
		return nil, err
	}
	now := s.stamp()
	e := &Environment{ProjectID: projectID, Name: in.Name, Production: in.Production, Description: in.Description,
		Executor: *in.Executor, CreatedAt: now, UpdatedAt: now}
	err = s.db.InTx(ctx, func(tx db.Tx) error {
		p, err := getProject(ctx, tx, projectID)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO environments (`+envCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			e.ProjectID, e.Name, e.Production, e.Description, sealed, e.LiveGroup, e.CreatedAt, e.UpdatedAt)
		if errors.Is(err, db.ErrUnique) {
			return apperr.Conflict("environment %q already exists in project %q", e.Name, projectID)
		}
		if err != nil {
			return err
		}
		return s.publishObject(ctx, tx, event.EnvironmentCreated, actor, p, e.Name, p.ID+"/"+e.Name, e.Masked())
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// GetEnvironment reads an environment with its executor in clear, for the
// engine; handlers must show Masked().
func (s *Service) GetEnvironment(ctx context.Context, projectID, name string) (*Environment, error) {
	return s.getEnv(ctx, s.db, projectID, name)
}

func (s *Service) getEnv(ctx context.Context, q db.Querier, projectID, name string) (*Environment, error) {
	e, err := s.scanEnv(q.QueryRow(ctx, `SELECT `+envCols+` FROM environments WHERE project_id = $1 AND name = $2`, projectID, name))
	if errors.Is(err, db.ErrNoRows) {
		if _, perr := getProject(ctx, q, projectID); perr != nil {
			return nil, perr
		}
		return nil, apperr.NotFound("environment %q not found in project %q", name, projectID)
	}
	return e, err
}

// ListEnvironments lists a project's environments by name.
func (s *Service) ListEnvironments(ctx context.Context, projectID string) ([]*Environment, error) {
	if _, err := s.GetProject(ctx, projectID); err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, `SELECT `+envCols+` FROM environments WHERE project_id = $1 ORDER BY name`, projectID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*Environment{}
	for rows.Next() {
		e, err := s.scanEnv(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// UpdateEnvironment replaces an environment's settings. An executor
// private_key sent back as "******" keeps the stored key.
func (s *Service) UpdateEnvironment(ctx context.Context, actor event.Actor, projectID, name string, in EnvironmentInput) (*Environment, error) {
	if in.Name != "" && in.Name != name {
		return nil, apperr.Field("name", "cannot be changed; create a new environment instead")
	}
	var e *Environment
	err := s.db.InTx(ctx, func(tx db.Tx) error {
		var err error
		if e, err = s.getEnv(ctx, tx, projectID, name); err != nil {
			return err
		}
		if in.Executor != nil && secret.IsMasked(in.Executor.PrivateKey) {
			in.Executor.PrivateKey = e.Executor.PrivateKey
		}
		if err := in.validate(false); err != nil {
			return err
		}
		sealed, err := s.sealExecutor(*in.Executor)
		if err != nil {
			return err
		}
		e.Production, e.Description, e.Executor, e.UpdatedAt = in.Production, in.Description, *in.Executor, s.stamp()
		if _, err := tx.Exec(ctx, `UPDATE environments SET production = $1, description = $2, executor = $3, updated_at = $4
			WHERE project_id = $5 AND name = $6`, e.Production, e.Description, sealed, e.UpdatedAt, projectID, name); err != nil {
			return err
		}
		p, err := getProject(ctx, tx, projectID)
		if err != nil {
			return err
		}
		return s.publishObject(ctx, tx, event.EnvironmentUpdated, actor, p, name, projectID+"/"+name, e.Masked())
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// SetLiveGroup records the blue-green group now serving, in the engine's
// transaction.
func (s *Service) SetLiveGroup(ctx context.Context, tx db.Tx, projectID, name, group string) error {
	_, err := tx.Exec(ctx, `UPDATE environments SET live_group = $1, updated_at = $2 WHERE project_id = $3 AND name = $4`,
		group, s.stamp(), projectID, name)
	return err
}

// DeleteEnvironment removes an environment and its hosts.
func (s *Service) DeleteEnvironment(ctx context.Context, actor event.Actor, projectID, name string) error {
	return s.db.InTx(ctx, func(tx db.Tx) error {
		e, err := s.getEnv(ctx, tx, projectID, name)
		if err != nil {
			return err
		}
		for _, check := range s.deleteChecks {
			if err := check(ctx, tx, projectID, name); err != nil {
				return err
			}
		}
		p, err := getProject(ctx, tx, projectID)
		if err != nil {
			return err
		}
		if err := s.publishObject(ctx, tx, event.EnvironmentDeleted, actor, p, name, projectID+"/"+name, e.Masked()); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM environments WHERE project_id = $1 AND name = $2`, projectID, name)
		return err
	})
}
