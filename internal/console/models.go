package console

import (
	"encoding/json"
	"time"
)

// The API's objects as the console reads them (CONTRACT §3–§8). The
// console keeps its own copies of the shapes so that it depends on the
// public contract only, not on the domain packages' Go types.

type user struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

type token struct {
	ID         string     `json:"id"`
	UserID     string     `json:"user_id"`
	Name       string     `json:"name"`
	Token      string     `json:"token"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

type project struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

type executorSpec struct {
	Type       string            `json:"type"`
	Script     string            `json:"script"`
	Timeout    string            `json:"timeout,omitempty"`
	Env        map[string]string `json:"env,omitempty"`
	User       string            `json:"user,omitempty"`
	Port       int               `json:"port,omitempty"`
	PrivateKey string            `json:"private_key,omitempty"`
	KnownHosts string            `json:"known_hosts,omitempty"`
}

type environment struct {
	ProjectID   string       `json:"project_id"`
	Name        string       `json:"name"`
	Production  bool         `json:"production"`
	Description string       `json:"description"`
	Executor    executorSpec `json:"executor"`
	LiveGroup   string       `json:"live_group"`
	CreatedAt   time.Time    `json:"created_at"`
	UpdatedAt   time.Time    `json:"updated_at"`
}

type host struct {
	Name      string            `json:"name"`
	Address   string            `json:"address"`
	Labels    map[string]string `json:"labels"`
	CreatedAt time.Time         `json:"created_at"`
}

type version struct {
	ID          string         `json:"id"`
	ProjectID   string         `json:"project_id"`
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Artifact    string         `json:"artifact"`
	Metadata    map[string]any `json:"metadata"`
	CreatedBy   string         `json:"created_by"`
	CreatedAt   time.Time      `json:"created_at"`
}

type callbackConfig struct {
	ID        string            `json:"id"`
	ProjectID string            `json:"project_id"`
	Name      string            `json:"name"`
	Enabled   bool              `json:"enabled"`
	Channels  []callbackChannel `json:"channels"`
	Events    []string          `json:"events"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
}

type callbackChannel struct {
	ID             string         `json:"id,omitempty"`
	Type           string         `json:"type"`
	Enabled        bool           `json:"enabled"`
	Config         map[string]any `json:"config"`
	DisabledReason string         `json:"disabled_reason,omitempty"`
}

type historyEntry struct {
	ID            string          `json:"id"`
	DeliveryID    string          `json:"delivery_id"`
	ConfigID      string          `json:"config_id"`
	ChannelID     string          `json:"channel_id"`
	EventID       string          `json:"event_id"`
	TaskID        string          `json:"task_id"`
	PlanID        string          `json:"plan_id"`
	ProjectID     string          `json:"project_id"`
	EventType     string          `json:"event_type"`
	ChannelType   string          `json:"channel_type"`
	Status        string          `json:"status"`
	Attempt       int             `json:"attempt"`
	Request       json.RawMessage `json:"request"`
	Response      string          `json:"response"`
	StatusCode    int             `json:"status_code"`
	Error         string          `json:"error"`
	DurationMS    int64           `json:"duration_ms"`
	NextAttemptAt *time.Time      `json:"next_attempt_at"`
	CreatedAt     time.Time       `json:"created_at"`
}

type testResult struct {
	ChannelID   string `json:"channel_id"`
	ChannelType string `json:"channel_type"`
	Status      string `json:"status"`
	StatusCode  int    `json:"status_code"`
	Error       string `json:"error"`
	DurationMS  int64  `json:"duration_ms"`
	HistoryID   string `json:"history_id"`
}

type testReport struct {
	EventID string       `json:"event_id"`
	Results []testResult `json:"results"`
}

type taskCounts struct {
	Total     int `json:"total"`
	Canary    int `json:"canary"`
	Completed int `json:"completed"`
	Failed    int `json:"failed"`
}

type taskHost struct {
	Name       string     `json:"name"`
	Address    string     `json:"address"`
	Group      string     `json:"group"`
	Canary     bool       `json:"canary"`
	Status     string     `json:"status"`
	Batch      int        `json:"batch"`
	Phase      string     `json:"phase"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	ExitCode   *int       `json:"exit_code"`
	Error      string     `json:"error"`
}

type taskBatch struct {
	Number     int        `json:"number"`
	Phase      string     `json:"phase"`
	Status     string     `json:"status"`
	Hosts      []string   `json:"hosts"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
}

type task struct {
	ID             string      `json:"id"`
	ProjectID      string      `json:"project_id"`
	Environment    string      `json:"environment"`
	VersionID      string      `json:"version_id"`
	Version        string      `json:"version"`
	Type           string      `json:"type"`
	Strategy       string      `json:"strategy"`
	Status         string      `json:"status"`
	Phase          string      `json:"phase"`
	TargetGroup    string      `json:"target_group"`
	AutoPromoteAt  *time.Time  `json:"auto_promote_at"`
	Error          string      `json:"error"`
	RollbackOf     string      `json:"rollback_of"`
	RollbackTaskID string      `json:"rollback_task_id"`
	Counts         taskCounts  `json:"counts"`
	Hosts          []taskHost  `json:"hosts"`
	Batches        []taskBatch `json:"batches"`
	CreatedBy      struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	Duration   string     `json:"duration"`
}

// Active tells whether the task may still change.
func (t task) Active() bool {
	return t.Status == "pending" || t.Status == "running" || t.Status == "paused"
}

// batchView is a batch with its hosts, for the task page.
type batchView struct {
	taskBatch
	HostRows []taskHost
}

// BatchViews groups the task's hosts by batch, in batch order; hosts the
// batches do not list (before the engine has planned them) come last.
func (t task) BatchViews() []batchView {
	byName := map[string]taskHost{}
	for _, h := range t.Hosts {
		byName[h.Name] = h
	}
	seen := map[string]bool{}
	var out []batchView
	for _, b := range t.Batches {
		bv := batchView{taskBatch: b}
		for _, n := range b.Hosts {
			if h, ok := byName[n]; ok {
				bv.HostRows = append(bv.HostRows, h)
				seen[n] = true
			}
		}
		out = append(out, bv)
	}
	var rest []taskHost
	for _, h := range t.Hosts {
		if !seen[h.Name] {
			rest = append(rest, h)
		}
	}
	if len(rest) > 0 {
		out = append(out, batchView{HostRows: rest})
	}
	return out
}
