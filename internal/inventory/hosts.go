package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/herald-release/herald/internal/apperr"
	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/page"
	"github.com/herald-release/herald/internal/validate"
)

// Host is one machine of an environment.
type Host struct {
	Name      string            `json:"name"`
	Address   string            `json:"address"`
	Labels    map[string]string `json:"labels"`
	CreatedAt time.Time         `json:"created_at"`
}

// HostInput is one host to add.
type HostInput struct {
	Name    string            `json:"name"`
	Address string            `json:"address"`
	Labels  map[string]string `json:"labels"`
}

// MaxHostsPerRequest bounds one bulk add.
const MaxHostsPerRequest = 5000

var (
	hostNameRE  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]{0,252})$`)
	labelKeyRE  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._/-]{0,62})$`)
	addressBad  = regexp.MustCompile(`[\s'"\x60;|&$<>\\]`)
	groupValues = map[string]bool{"blue": true, "green": true}
)

func (in HostInput) validate() validate.Errors {
	var errs validate.Errors
	if in.Name == "" {
		errs.Add("name", "is required")
	} else if !hostNameRE.MatchString(in.Name) {
		errs.Add("name", "must be letters, digits, dots, dashes and underscores, at most 253")
	}
	if in.Address == "" {
		errs.Add("address", "is required: a host name or IP address, optionally with :port")
	} else if len(in.Address) > 255 || addressBad.MatchString(in.Address) {
		errs.Add("address", "must be a host name or IP address, optionally with :port")
	}
	for k, v := range in.Labels {
		if !labelKeyRE.MatchString(k) {
			errs.Add("labels."+k, "label names are letters, digits, dots, dashes, slashes and underscores, at most 63")
		}
		if len(v) > 255 {
			errs.Add("labels."+k, "must be at most 255 characters")
		}
		if k == "group" && !groupValues[v] {
			errs.Add("labels.group", "must be \"blue\" or \"green\" (blue-green releases use it)")
		}
	}
	return errs
}

// AddHosts adds hosts to an environment, all or none.
func (s *Service) AddHosts(ctx context.Context, actor event.Actor, projectID, envName string, in []HostInput) ([]*Host, error) {
	var errs validate.Errors
	if len(in) == 0 {
		errs.Add("hosts", "give at least one host")
	}
	if len(in) > MaxHostsPerRequest {
		errs.Add("hosts", "at most %d hosts per request", MaxHostsPerRequest)
	}
	seen := map[string]bool{}
	for i, h := range in {
		prefix := fmt.Sprintf("hosts[%d]", i)
		errs.Merge(prefix, h.validate())
		if seen[h.Name] {
			errs.Add(prefix+".name", "%q is given twice", h.Name)
		}
		seen[h.Name] = true
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	now := s.stamp()
	out := make([]*Host, 0, len(in))
	err := s.db.InTx(ctx, func(tx db.Tx) error {
		if _, err := s.getEnv(ctx, tx, projectID, envName); err != nil {
			return err
		}
		p, err := getProject(ctx, tx, projectID)
		if err != nil {
			return err
		}
		for _, h := range in {
			labels := h.Labels
			if labels == nil {
				labels = map[string]string{}
			}
			lb, _ := json.Marshal(labels)
			_, err := tx.Exec(ctx, `INSERT INTO hosts (project_id, environment, name, address, labels, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
				projectID, envName, h.Name, strings.TrimSpace(h.Address), string(lb), now)
			if errors.Is(err, db.ErrUnique) {
				return apperr.Conflict("host %q already exists in %s/%s", h.Name, projectID, envName)
			}
			if err != nil {
				return err
			}
			host := &Host{Name: h.Name, Address: strings.TrimSpace(h.Address), Labels: labels, CreatedAt: now}
			if err := s.publishObject(ctx, tx, event.HostCreated, actor, p, envName, projectID+"/"+envName+"/"+h.Name, host); err != nil {
				return err
			}
			out = append(out, host)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func scanHost(r interface{ Scan(...any) error }) (*Host, error) {
	var h Host
	var labels string
	if err := r.Scan(&h.Name, &h.Address, &labels, &h.CreatedAt); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(labels), &h.Labels); err != nil {
		return nil, fmt.Errorf("host %s labels are corrupt: %w", h.Name, err)
	}
	return &h, nil
}

// ListHosts lists an environment's hosts by name.
func (s *Service) ListHosts(ctx context.Context, projectID, envName string, p page.Params) (page.Page[*Host], error) {
	if _, err := s.getEnv(ctx, s.db, projectID, envName); err != nil {
		return page.Page[*Host]{}, err
	}
	rows, err := s.db.Query(ctx, `SELECT name, address, labels, created_at FROM hosts
		WHERE project_id = $1 AND environment = $2 AND name > $3 ORDER BY name LIMIT $4`, projectID, envName, p.After, p.Limit+1)
	if err != nil {
		return page.Page[*Host]{}, err
	}
	defer rows.Close()
	var out []*Host
	for rows.Next() {
		h, err := scanHost(rows)
		if err != nil {
			return page.Page[*Host]{}, err
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return page.Page[*Host]{}, err
	}
	return page.Make(out, p, func(h *Host) string { return h.Name }), nil
}

// AllHosts returns every host of an environment, for the engine.
func (s *Service) AllHosts(ctx context.Context, q db.Querier, projectID, envName string) ([]*Host, error) {
	rows, err := q.Query(ctx, `SELECT name, address, labels, created_at FROM hosts
		WHERE project_id = $1 AND environment = $2 ORDER BY name`, projectID, envName)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*Host{}
	for rows.Next() {
		h, err := scanHost(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// DeleteHost removes a host.
func (s *Service) DeleteHost(ctx context.Context, actor event.Actor, projectID, envName, name string) error {
	return s.db.InTx(ctx, func(tx db.Tx) error {
		h, err := scanHost(tx.QueryRow(ctx, `SELECT name, address, labels, created_at FROM hosts
			WHERE project_id = $1 AND environment = $2 AND name = $3`, projectID, envName, name))
		if errors.Is(err, db.ErrNoRows) {
			if _, err := s.getEnv(ctx, tx, projectID, envName); err != nil {
				return err
			}
			return apperr.NotFound("host %q not found in %s/%s", name, projectID, envName)
		}
		if err != nil {
			return err
		}
		p, err := getProject(ctx, tx, projectID)
		if err != nil {
			return err
		}
		if err := s.publishObject(ctx, tx, event.HostDeleted, actor, p, envName, projectID+"/"+envName+"/"+name, h); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM hosts WHERE project_id = $1 AND environment = $2 AND name = $3`, projectID, envName, name)
		return err
	})
}
