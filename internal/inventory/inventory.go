// Package inventory keeps what is released and where: projects, their
// environments (with the executor that deploys them), the hosts of each
// environment, and versions. Every change publishes its object event in
// the same transaction.
package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/secret"
)

// Service is the inventory's API for handlers and other domains.
type Service struct {
	db        *db.DB
	box       *secret.Box
	pub       *event.Publisher
	publicURL string
	now       func() time.Time

	deleteChecks []DeleteCheck
}

// DeleteCheck may refuse the deletion of a project (environment "") or an
// environment, inside the deleting transaction; the release engine refuses
// while a task is active there.
type DeleteCheck func(ctx context.Context, tx db.Tx, projectID, environment string) error

// OnDelete adds a check; call it during start-up.
func (s *Service) OnDelete(c DeleteCheck) { s.deleteChecks = append(s.deleteChecks, c) }

// New builds the service.
func New(d *db.DB, box *secret.Box, pub *event.Publisher, publicURL string) *Service {
	return &Service{db: d, box: box, pub: pub, publicURL: publicURL, now: time.Now}
}

// DB exposes the handle for other domains that join inventory rows.
func (s *Service) DB() *db.DB { return s.db }

func (s *Service) stamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// publishObject writes an object event about obj (already masked).
func (s *Service) publishObject(ctx context.Context, tx db.Tx, eventType string, actor event.Actor, p *Project, env string, objectID string, obj any) error {
	raw, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	ev := &event.Envelope{
		EventType:   eventType,
		Project:     &event.ProjectRef{ID: p.ID, Name: p.Name, Description: p.Description},
		Object:      raw,
		Environment: env,
		Actor:       &actor,
		URL:         s.publicURL + "/projects/" + p.ID,
	}
	_, err = s.pub.Publish(ctx, tx, ev, event.Options{ObjectID: objectID})
	if err != nil {
		return fmt.Errorf("publish %s: %w", eventType, err)
	}
	return nil
}
