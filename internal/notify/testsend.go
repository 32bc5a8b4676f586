package notify

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/id"
	"github.com/herald-release/herald/internal/notify/channel"
)

// TestResult is one channel's answer to the test button.
type TestResult struct {
	ChannelID   string `json:"channel_id"`
	ChannelType string `json:"channel_type"`
	Status      string `json:"status"`
	StatusCode  int    `json:"status_code,omitempty"`
	Error       string `json:"error,omitempty"`
	DurationMS  int64  `json:"duration_ms"`
	HistoryID   string `json:"history_id"`
}

// TestReport is the answer of POST /callbacks/{id}/test.
type TestReport struct {
	EventID string       `json:"event_id"`
	Results []TestResult `json:"results"`
}

// sampleEvent is a canary_started event as a real canary release of the
// configuration's project would send it.
func (h *Hub) sampleEvent(ctx context.Context, c *Config, actor event.Actor) *event.Envelope {
	project := &event.ProjectRef{ID: "sample-app", Name: "Sample App", Description: "A sample event from the Test button"}
	if c.ProjectID != "" {
		var p event.ProjectRef
		if err := h.db.QueryRow(ctx, `SELECT id, name, description FROM projects WHERE id = $1`, c.ProjectID).
			Scan(&p.ID, &p.Name, &p.Description); err == nil {
			project = &p
		}
	}
	taskID := "tsk_test_" + id.New("x")[2:]
	return &event.Envelope{
		EventType:   event.CanaryStarted,
		Project:     project,
		Version:     &event.VersionRef{ID: "ver_sample", Name: "v1.2.3", Description: "Sample version"},
		Task:        &event.TaskRef{ID: taskID, Type: "deploy", Strategy: "canary", Status: "running", Phase: "canary"},
		Deployment:  &event.Deployment{TotalCount: 10, CanaryCount: 1, Hosts: []string{"host-1"}},
		Environment: "production",
		Duration:    "0s",
		Actor:       &actor,
		URL:         h.deps.PublicURL + "/callbacks/" + c.ID,
	}
}

// Test sends a sample canary_started event through every enabled channel
// of a configuration at once, without retries, and reports each result.
// The attempts are recorded in history like any other.
func (h *Hub) Test(ctx context.Context, configID string, actor event.Actor) (*TestReport, error) {
	c, err := h.GetConfig(ctx, configID)
	if err != nil {
		return nil, err
	}
	ev := h.sampleEvent(ctx, c, actor)
	err = h.db.InTx(ctx, func(tx db.Tx) error {
		_, err := h.pub.Record(ctx, tx, ev, event.Options{ObjectID: ev.Task.ID, TaskID: ev.Task.ID})
		return err
	})
	if err != nil {
		return nil, err
	}
	report := &TestReport{EventID: ev.ID, Results: []TestResult{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, ch := range c.Channels {
		if !ch.Enabled {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := h.testOne(ctx, c, ch, ev)
			mu.Lock()
			report.Results = append(report.Results, res)
			mu.Unlock()
		}()
	}
	wg.Wait()
	// Present results in the configuration's channel order.
	order := map[string]int{}
	for i, ch := range c.Channels {
		order[ch.ID] = i
	}
	slices.SortFunc(report.Results, func(a, b TestResult) int { return order[a.ChannelID] - order[b.ChannelID] })
	return report, nil
}

func (h *Hub) testOne(ctx context.Context, c *Config, ch Channel, ev *event.Envelope) TestResult {
	rec := attemptRecord{
		args:        delivery{DeliveryID: id.New("dlv"), EventID: ev.ID, ConfigID: c.ID, ChannelID: ch.ID},
		ev:          ev,
		channelType: ch.Type,
		attempt:     1,
	}
	res := TestResult{ChannelID: ch.ID, ChannelType: ch.Type}
	cfg, err := c.sendConfig(&ch)
	var sender channel.Sender
	if err == nil {
		sender, err = kinds[ch.Type].New(cfg, h.deps)
	}
	switch {
	case err != nil:
		rec.status, rec.err = statusFailed, "the channel's configuration cannot be used: "+err.Error()
	default:
		key, limits := sender.RateLimits()
		if wait := h.limiter.reserve(key, limits); wait > 0 {
			rec.status = statusFailed
			rec.err = "not sent: this robot's rate limit is reached; try again in " + wait.Round(time.Second).String()
			break
		}
		actx, cancel := context.WithTimeout(ctx, 70*time.Second)
		start := time.Now()
		rec.result, err = sender.Send(actx, ev)
		cancel()
		rec.duration = time.Since(start)
		rec.status = statusSuccess
		if err != nil {
			rec.status, rec.err = statusFailed, channel.Classify(err).Error()
		}
	}
	entryID, ierr := h.history.write(context.WithoutCancel(ctx), h, outcome{rec: &rec})
	if ierr != nil {
		h.log.Error("record test attempt", "error", ierr)
	}
	res.Status, res.Error, res.StatusCode = rec.status, rec.err, rec.result.StatusCode
	res.DurationMS, res.HistoryID = rec.duration.Milliseconds(), entryID
	return res
}
