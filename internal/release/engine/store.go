package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/herald-release/herald/internal/apperr"
	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/event"
)

// taskRow is a release_tasks row.
type taskRow struct {
	ID, ProjectID, Environment    string
	Type, Strategy, Status, Phase string
	VersionID, VersionName        string
	VersionDescription, Artifact  string
	Options                       TaskOptions
	Executor                      string // sealed override, '' for none
	TargetGroup                   string
	Run, PauseSeq                 int
	PromoteAt                     *time.Time
	CancelRequested               bool
	Error                         string
	RollbackOf, RollbackTaskID    string
	CreatedByID, CreatedByName    string
	ActorID, ActorName            string
	LeaseNode, LeaseToken         string
	LeaseUntil                    int64
	CreatedAt, UpdatedAt          time.Time
	StartedAt, FinishedAt         *time.Time
}

const taskCols = `id, project_id, environment, type, strategy, status, phase,
	version_id, version_name, version_description, artifact, options, executor, target_group,
	run, pause_seq, promote_at, cancel_requested, error, rollback_of, rollback_task_id,
	created_by_id, created_by_name, actor_id, actor_name, lease_node, lease_token, lease_until,
	created_at, updated_at, started_at, finished_at`

func scanTask(r interface{ Scan(...any) error }) (*taskRow, error) {
	var t taskRow
	var opts string
	err := r.Scan(&t.ID, &t.ProjectID, &t.Environment, &t.Type, &t.Strategy, &t.Status, &t.Phase,
		&t.VersionID, &t.VersionName, &t.VersionDescription, &t.Artifact, &opts, &t.Executor, &t.TargetGroup,
		&t.Run, &t.PauseSeq, &t.PromoteAt, &t.CancelRequested, &t.Error, &t.RollbackOf, &t.RollbackTaskID,
		&t.CreatedByID, &t.CreatedByName, &t.ActorID, &t.ActorName, &t.LeaseNode, &t.LeaseToken, &t.LeaseUntil,
		&t.CreatedAt, &t.UpdatedAt, &t.StartedAt, &t.FinishedAt)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(opts), &t.Options); err != nil {
		return nil, fmt.Errorf("task %s options are corrupt: %w", t.ID, err)
	}
	return &t, nil
}

// activeKey is the value of active_env while a task holds its environment.
func (t *taskRow) activeKey() string { return t.ProjectID + "/" + t.Environment }

func (t *taskRow) actor() event.Actor { return event.Actor{ID: t.ActorID, Name: t.ActorName} }

func insertTask(ctx context.Context, tx db.Tx, t *taskRow) error {
	opts, err := json.Marshal(t.Options)
	if err != nil {
		return err
	}
	var active any
	if Active(t.Status) {
		active = t.activeKey()
	}
	_, err = tx.Exec(ctx, `INSERT INTO release_tasks (`+taskCols+`, active_env) VALUES
		($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21,
		 $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33)`,
		t.ID, t.ProjectID, t.Environment, t.Type, t.Strategy, t.Status, t.Phase,
		t.VersionID, t.VersionName, t.VersionDescription, t.Artifact, string(opts), t.Executor, t.TargetGroup,
		t.Run, t.PauseSeq, t.PromoteAt, t.CancelRequested, t.Error, t.RollbackOf, t.RollbackTaskID,
		t.CreatedByID, t.CreatedByName, t.ActorID, t.ActorName, t.LeaseNode, t.LeaseToken, t.LeaseUntil,
		t.CreatedAt, t.UpdatedAt, t.StartedAt, t.FinishedAt, active)
	return err
}

// loadTask reads a task; lock takes the row lock on PostgreSQL so that
// state changes of one task (runner steps, API actions) happen one at a
// time.
func loadTask(ctx context.Context, q db.Querier, taskID string, lock string) (*taskRow, error) {
	t, err := scanTask(q.QueryRow(ctx, `SELECT `+taskCols+` FROM release_tasks WHERE id = $1`+lock, taskID))
	if errors.Is(err, db.ErrNoRows) {
		return nil, apperr.NotFound("task %q not found", taskID)
	}
	return t, err
}

func lockTask(ctx context.Context, tx db.Tx, taskID string) (*taskRow, error) {
	return loadTask(ctx, tx, taskID, forUpdate(tx))
}

// hostRow is a release_task_hosts row without its output.
type hostRow struct {
	Name       string
	Position   int
	Address    string
	Group      string
	Canary     bool
	PlanBatch  int
	Batch      int
	Phase      string
	Status     string
	StartedAt  *time.Time
	FinishedAt *time.Time
	ExitCode   *int
	Error      string
}

const hostCols = `name, position, address, host_group, canary, plan_batch, batch, phase, status, started_at, finished_at, exit_code, error`

func scanHost(r interface{ Scan(...any) error }) (*hostRow, error) {
	var h hostRow
	err := r.Scan(&h.Name, &h.Position, &h.Address, &h.Group, &h.Canary, &h.PlanBatch, &h.Batch, &h.Phase, &h.Status,
		&h.StartedAt, &h.FinishedAt, &h.ExitCode, &h.Error)
	return &h, err
}

func insertHost(ctx context.Context, tx db.Tx, taskID string, h *hostRow) error {
	_, err := tx.Exec(ctx, `INSERT INTO release_task_hosts (task_id, `+hostCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		taskID, h.Name, h.Position, h.Address, h.Group, h.Canary, h.PlanBatch, h.Batch, h.Phase, h.Status,
		h.StartedAt, h.FinishedAt, h.ExitCode, h.Error)
	return err
}

// loadHosts reads a task's hosts in plan order; batch > 0 keeps one batch.
func loadHosts(ctx context.Context, q db.Querier, taskID string, batch int) ([]*hostRow, error) {
	rows, err := q.Query(ctx, `SELECT `+hostCols+` FROM release_task_hosts
		WHERE task_id = $1 AND ($2 = 0 OR batch = $2) ORDER BY batch, position`, taskID, batch)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*hostRow
	for rows.Next() {
		h, err := scanHost(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// batchRow is a release_task_batches row.
type batchRow struct {
	Number     int
	Phase      string
	Status     string
	StartedAt  *time.Time
	FinishedAt *time.Time
}

func loadBatches(ctx context.Context, q db.Querier, taskID string) ([]*batchRow, error) {
	rows, err := q.Query(ctx, `SELECT number, phase, status, started_at, finished_at FROM release_task_batches
		WHERE task_id = $1 ORDER BY number`, taskID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*batchRow
	for rows.Next() {
		var b batchRow
		if err := rows.Scan(&b.Number, &b.Phase, &b.Status, &b.StartedAt, &b.FinishedAt); err != nil {
			return nil, err
		}
		out = append(out, &b)
	}
	return out, rows.Err()
}

// countHosts reads the counts of CONTRACT §5 for a task.
func countHosts(ctx context.Context, q db.Querier, taskID string) (Counts, error) {
	m, err := countMany(ctx, q, []string{taskID})
	return m[taskID], err
}

// countMany reads the counts of several tasks in one query.
func countMany(ctx context.Context, q db.Querier, taskIDs []string) (map[string]Counts, error) {
	out := make(map[string]Counts, len(taskIDs))
	if len(taskIDs) == 0 {
		return out, nil
	}
	ph := make([]string, len(taskIDs))
	args := make([]any, len(taskIDs))
	for i, id := range taskIDs {
		ph[i] = fmt.Sprintf("$%d", i+1)
		args[i] = id
	}
	rows, err := q.Query(ctx, `SELECT task_id, status, canary, COUNT(*) FROM release_task_hosts
		WHERE task_id IN (`+strings.Join(ph, ", ")+`) GROUP BY task_id, status, canary`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, status string
		var canary bool
		var n int
		if err := rows.Scan(&id, &status, &canary, &n); err != nil {
			return nil, err
		}
		c := out[id]
		c.Total += n
		if canary {
			c.Canary += n
		}
		switch status {
		case HostSuccess:
			c.Completed += n
		case HostFailed:
			c.Failed += n
		}
		out[id] = c
	}
	return out, rows.Err()
}

// hostNames lists a task's host names in plan order, only the canary's
// when canaryOnly.
func hostNames(ctx context.Context, q db.Querier, taskID string, canaryOnly bool) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT name FROM release_task_hosts WHERE task_id = $1 AND ($2 = FALSE OR canary)
		ORDER BY position`, taskID, canaryOnly)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// previousVersion is the version an environment goes back to: the latest
// successfully released version other than notVersion.
func previousVersion(ctx context.Context, q db.Querier, projectID, env, notVersion string) (string, error) {
	var v string
	err := q.QueryRow(ctx, `SELECT version_id FROM release_tasks
		WHERE project_id = $1 AND environment = $2 AND status = 'success' AND type IN ('deploy', 'rollback')
		  AND version_id <> '' AND version_id <> $3
		ORDER BY finished_at DESC, id DESC LIMIT 1`, projectID, env, notVersion).Scan(&v)
	if errors.Is(err, db.ErrNoRows) {
		return "", nil
	}
	return v, err
}

// lastReleasedVersion is the version of the environment's latest finished
// deploy or rollback, whatever its outcome: what a rollback undoes.
func lastReleasedVersion(ctx context.Context, q db.Querier, projectID, env string) (string, error) {
	var v string
	err := q.QueryRow(ctx, `SELECT version_id FROM release_tasks
		WHERE project_id = $1 AND environment = $2 AND finished_at IS NOT NULL AND type IN ('deploy', 'rollback')
		  AND status IN ('success', 'failed', 'cancelled')
		ORDER BY finished_at DESC, id DESC LIMIT 1`, projectID, env).Scan(&v)
	if errors.Is(err, db.ErrNoRows) {
		return "", nil
	}
	return v, err
}

// currentVersion is the environment's latest successfully released
// version, for the information of stop tasks.
func currentVersion(ctx context.Context, q db.Querier, projectID, env string) (string, error) {
	return previousVersion(ctx, q, projectID, env, "")
}

// cleanText makes script output storable: PostgreSQL refuses NUL bytes and
// invalid UTF-8 in TEXT, and scripts print whatever they like.
func cleanText(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	return s
}

func nowMS(t time.Time) int64 { return t.UnixMilli() }
