package inventory

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/herald-release/herald/internal/apperr"
	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/page"
	"github.com/herald-release/herald/internal/validate"
)

// Project is a releasable service.
type Project struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// ProjectInput is the body of project create and update.
type ProjectInput struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

func (in *ProjectInput) normalize(creating bool) error {
	var errs validate.Errors
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" {
		errs.Add("name", "is required")
	} else if len(in.Name) > 200 {
		errs.Add("name", "must be at most 200 characters")
	}
	if len(in.Description) > 4000 {
		errs.Add("description", "must be at most 4000 characters")
	}
	if creating {
		if in.ID == "" && in.Name != "" {
			in.ID = validate.Slugify(in.Name)
			if in.ID == "" {
				errs.Add("id", "cannot be made from the name; give an id: lowercase letters, digits and dashes")
			}
		} else if in.ID != "" && !validate.IsSlug(in.ID) {
			errs.Add("id", "must be a slug: lowercase letters, digits and dashes, at most 63, not starting or ending with a dash")
		}
	}
	return errs.Err()
}

const projectCols = `id, name, description, created_at, updated_at`

func scanProject(r interface{ Scan(...any) error }) (*Project, error) {
	var p Project
	err := r.Scan(&p.ID, &p.Name, &p.Description, &p.CreatedAt, &p.UpdatedAt)
	return &p, err
}

// CreateProject adds a project.
func (s *Service) CreateProject(ctx context.Context, actor event.Actor, in ProjectInput) (*Project, error) {
	if err := in.normalize(true); err != nil {
		return nil, err
	}
	now := s.stamp()
	p := &Project{ID: in.ID, Name: in.Name, Description: in.Description, CreatedAt: now, UpdatedAt: now}
	err := s.db.InTx(ctx, func(tx db.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO projects (`+projectCols+`) VALUES ($1, $2, $3, $4, $5)`,
			p.ID, p.Name, p.Description, p.CreatedAt, p.UpdatedAt)
		if errors.Is(err, db.ErrUnique) {
			return apperr.Conflict("project %q already exists: choose another id", p.ID)
		}
		if err != nil {
			return err
		}
		return s.publishObject(ctx, tx, event.ProjectCreated, actor, p, "", p.ID, p)
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// GetProject reads a project.
func (s *Service) GetProject(ctx context.Context, id string) (*Project, error) {
	return getProject(ctx, s.db, id)
}

func getProject(ctx context.Context, q db.Querier, id string) (*Project, error) {
	p, err := scanProject(q.QueryRow(ctx, `SELECT `+projectCols+` FROM projects WHERE id = $1`, id))
	if errors.Is(err, db.ErrNoRows) {
		return nil, apperr.NotFound("project %q not found", id)
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// ListProjects lists projects by id.
func (s *Service) ListProjects(ctx context.Context, p page.Params) (page.Page[*Project], error) {
	rows, err := s.db.Query(ctx, `SELECT `+projectCols+` FROM projects WHERE id > $1 ORDER BY id LIMIT $2`, p.After, p.Limit+1)
	if err != nil {
		return page.Page[*Project]{}, err
	}
	defer rows.Close()
	var out []*Project
	for rows.Next() {
		pr, err := scanProject(rows)
		if err != nil {
			return page.Page[*Project]{}, err
		}
		out = append(out, pr)
	}
	if err := rows.Err(); err != nil {
		return page.Page[*Project]{}, err
	}
	return page.Make(out, p, func(p *Project) string { return p.ID }), nil
}

// UpdateProject changes a project's name and description; the id stays.
func (s *Service) UpdateProject(ctx context.Context, actor event.Actor, id string, in ProjectInput) (*Project, error) {
	if in.ID != "" && in.ID != id {
		return nil, apperr.Field("id", "cannot be changed")
	}
	if err := in.normalize(false); err != nil {
		return nil, err
	}
	var p *Project
	err := s.db.InTx(ctx, func(tx db.Tx) error {
		var err error
		if p, err = getProject(ctx, tx, id); err != nil {
			return err
		}
		p.Name, p.Description, p.UpdatedAt = in.Name, in.Description, s.stamp()
		if _, err := tx.Exec(ctx, `UPDATE projects SET name = $1, description = $2, updated_at = $3 WHERE id = $4`,
			p.Name, p.Description, p.UpdatedAt, id); err != nil {
			return err
		}
		return s.publishObject(ctx, tx, event.ProjectUpdated, actor, p, "", p.ID, p)
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// DeleteProject removes a project with its environments, hosts and versions.
func (s *Service) DeleteProject(ctx context.Context, actor event.Actor, id string) error {
	return s.db.InTx(ctx, func(tx db.Tx) error {
		p, err := getProject(ctx, tx, id)
		if err != nil {
			return err
		}
		for _, check := range s.deleteChecks {
			if err := check(ctx, tx, p.ID, ""); err != nil {
				return err
			}
		}
		if err := s.publishObject(ctx, tx, event.ProjectDeleted, actor, p, "", p.ID, p); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM projects WHERE id = $1`, id)
		return err
	})
}
