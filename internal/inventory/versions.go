package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/herald-release/herald/internal/apperr"
	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/id"
	"github.com/herald-release/herald/internal/page"
	"github.com/herald-release/herald/internal/validate"
)

// Version is a releasable build of a project.
type Version struct {
	ID          string         `json:"id"`
	ProjectID   string         `json:"project_id"`
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Artifact    string         `json:"artifact"`
	Metadata    map[string]any `json:"metadata"`
	CreatedBy   string         `json:"created_by"`
	CreatedAt   time.Time      `json:"created_at"`
}

// VersionInput is the body of version create.
type VersionInput struct {
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Artifact    string         `json:"artifact"`
	Metadata    map[string]any `json:"metadata"`
}

func (in VersionInput) validate() error {
	var errs validate.Errors
	switch {
	case in.Name == "":
		errs.Add("name", "is required, e.g. \"v1.2.3\"")
	case len(in.Name) > 128:
		errs.Add("name", "must be at most 128 characters")
	case strings.IndexFunc(in.Name, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		errs.Add("name", "must not contain spaces or control characters")
	}
	if len(in.Description) > 4000 {
		errs.Add("description", "must be at most 4000 characters")
	}
	if len(in.Artifact) > 2000 {
		errs.Add("artifact", "must be at most 2000 characters")
	}
	if b, _ := json.Marshal(in.Metadata); len(b) > 64<<10 {
		errs.Add("metadata", "must be at most 64 KiB as JSON")
	}
	return errs.Err()
}

const versionCols = `id, project_id, name, description, artifact, metadata, created_by, created_at`

func scanVersion(r interface{ Scan(...any) error }) (*Version, error) {
	var v Version
	var md string
	if err := r.Scan(&v.ID, &v.ProjectID, &v.Name, &v.Description, &v.Artifact, &md, &v.CreatedBy, &v.CreatedAt); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(md), &v.Metadata); err != nil {
		return nil, fmt.Errorf("version %s metadata is corrupt: %w", v.ID, err)
	}
	return &v, nil
}

// CreateVersion records a version; names are unique in a project.
func (s *Service) CreateVersion(ctx context.Context, actor event.Actor, projectID string, in VersionInput) (*Version, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	if in.Metadata == nil {
		in.Metadata = map[string]any{}
	}
	md, _ := json.Marshal(in.Metadata)
	v := &Version{ID: id.New("ver"), ProjectID: projectID, Name: in.Name, Description: in.Description,
		Artifact: in.Artifact, Metadata: in.Metadata, CreatedBy: actor.ID, CreatedAt: s.stamp()}
	err := s.db.InTx(ctx, func(tx db.Tx) error {
		p, err := getProject(ctx, tx, projectID)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO versions (`+versionCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			v.ID, v.ProjectID, v.Name, v.Description, v.Artifact, string(md), v.CreatedBy, v.CreatedAt)
		if errors.Is(err, db.ErrUnique) {
			return apperr.Conflict("version %q already exists in project %q", v.Name, projectID)
		}
		if err != nil {
			return err
		}
		ev := &event.Envelope{
			EventType: event.VersionCreated,
			Project:   &event.ProjectRef{ID: p.ID, Name: p.Name, Description: p.Description},
			Version:   &event.VersionRef{ID: v.ID, Name: v.Name, Description: v.Description},
			Actor:     &actor,
			URL:       s.publicURL + "/projects/" + p.ID,
		}
		ev.Object, _ = json.Marshal(v)
		_, err = s.pub.Publish(ctx, tx, ev, event.Options{ObjectID: v.ID})
		return err
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// GetVersion reads a version of a project.
func (s *Service) GetVersion(ctx context.Context, projectID, versionID string) (*Version, error) {
	return s.getVersion(ctx, s.db, `id`, projectID, versionID)
}

// GetVersionByName reads a version by its name.
func (s *Service) GetVersionByName(ctx context.Context, q db.Querier, projectID, name string) (*Version, error) {
	return s.getVersion(ctx, q, `name`, projectID, name)
}

func (s *Service) getVersion(ctx context.Context, q db.Querier, col, projectID, key string) (*Version, error) {
	v, err := scanVersion(q.QueryRow(ctx, `SELECT `+versionCols+` FROM versions WHERE project_id = $1 AND `+col+` = $2`, projectID, key))
	if errors.Is(err, db.ErrNoRows) {
		if _, err := getProject(ctx, q, projectID); err != nil {
			return nil, err
		}
		return nil, apperr.NotFound("version %q not found in project %q", key, projectID)
	}
	return v, err
}

// ListVersions lists a project's versions, newest first.
func (s *Service) ListVersions(ctx context.Context, projectID string, p page.Params) (page.Page[*Version], error) {
	if _, err := s.GetProject(ctx, projectID); err != nil {
		return page.Page[*Version]{}, err
	}
	rows, err := s.db.Query(ctx, `SELECT `+versionCols+` FROM versions WHERE project_id = $1 AND ($2 = '' OR id < $2)
		ORDER BY id DESC LIMIT $3`, projectID, p.After, p.Limit+1)
	if err != nil {
		return page.Page[*Version]{}, err
	}
	defer rows.Close()
	var out []*Version
	for rows.Next() {
		v, err := scanVersion(rows)
		if err != nil {
			return page.Page[*Version]{}, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return page.Page[*Version]{}, err
	}
	return page.Make(out, p, func(v *Version) string { return v.ID }), nil
}
