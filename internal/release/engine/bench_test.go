package engine_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/db/dbtest"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/release/engine/enginetest"
)

// BenchmarkRolling1000Hosts releases 1,000 hosts with the local executor
// and the script `true`, rolling in batches of 50 (so 50 scripts at once),
// and reports per release:
//
//   - wall_s: from the create request to the task being success;
//   - overhead_s = wall − S/P, where S is the summed time of every host
//     (from being marked running to its result; a fork and exec of
//     /bin/sh here) and P = 50 the parallelism: S/P is the least wall time
//     the scripts alone could take, the rest is the engine's;
//   - critpath_overhead_s = wall − Σ over batches of the slowest host of
//     the batch: the same, but charging the engine nothing for waiting on
//     a batch's slowest host, which batches must do;
//   - batch_gap_ms: mean time from a batch's last host finishing to the
//     next batch's first host starting;
//   - event_latency_ms: from the last host finishing to full_completed
//     being written (the event's timestamp, set inside the transaction
//     that commits it).
func BenchmarkRolling1000Hosts(b *testing.B) {
	for _, dialect := range dbtest.Dialects() {
		b.Run(string(dialect), func(b *testing.B) { benchRolling(b, dialect) })
	}
}

func benchRolling(b *testing.B, dialect db.Dialect) {
	const hosts, batch = 1000, 50
	e := enginetest.New(b, dialect)
	v1, v2 := e.Setup(b, "prod", enginetest.Local("true"), enginetest.Hosts(hosts, "127.0.0.1"))
	ctx := context.Background()
	var wall, overhead, critOverhead, gaps, latency time.Duration
	n := 0
	for b.Loop() {
		version := v1
		if n%2 == 1 {
			version = v2
		}
		start := time.Now()
		task := e.Create(b, map[string]any{"project_id": "app", "environment": "prod", "version_id": version,
			"strategy": "rolling", "batch_size": batch})
		var status string
		for {
			if err := e.App.DB.QueryRow(ctx, `SELECT status FROM release_tasks WHERE id = $1`, task.ID).Scan(&status); err != nil {
				b.Fatal(err)
			}
			if status != "pending" && status != "running" {
				break
			}
			time.Sleep(time.Millisecond)
		}
		w := time.Since(start)
		if status != "success" {
			b.Fatalf("task %s ended %s", task.ID, status)
		}
		b.StopTimer()
		m := measure(b, e, task.ID, batch)
		wall += w
		overhead += w - m.sum/batch
		critOverhead += w - m.critPath
		gaps += m.meanGap
		latency += m.eventLatency
		n++
		b.StartTimer()
	}
	f := float64(n)
	b.ReportMetric(wall.Seconds()/f, "wall_s")
	b.ReportMetric(overhead.Seconds()/f, "overhead_s")
	b.ReportMetric(critOverhead.Seconds()/f, "critpath_overhead_s")
	b.ReportMetric(float64(gaps.Microseconds())/1000/f, "batch_gap_ms")
	b.ReportMetric(float64(latency.Microseconds())/1000/f, "event_latency_ms")
	b.ReportMetric(0, "ns/op")
}

type measured struct {
	sum, critPath, meanGap, eventLatency time.Duration
}

func measure(b *testing.B, e *enginetest.Env, taskID string, batchSize int) measured {
	task := e.Task(b, taskID)
	var m measured
	type span struct{ first, last, slowest time.Duration }
	var lastFinish time.Time
	byBatch := map[int]*struct {
		start, end time.Time
		slowest    time.Duration
	}{}
	for _, h := range task.Hosts {
		if h.StartedAt == nil || h.FinishedAt == nil {
			b.Fatalf("host %s has no times", h.Name)
		}
		d := h.FinishedAt.Sub(*h.StartedAt)
		m.sum += d
		bb := byBatch[h.Batch]
		if bb == nil {
			bb = &struct {
				start, end time.Time
				slowest    time.Duration
			}{start: *h.StartedAt, end: *h.FinishedAt}
			byBatch[h.Batch] = bb
		}
		if h.StartedAt.Before(bb.start) {
			bb.start = *h.StartedAt
		}
		if h.FinishedAt.After(bb.end) {
			bb.end = *h.FinishedAt
		}
		bb.slowest = max(bb.slowest, d)
		if h.FinishedAt.After(lastFinish) {
			lastFinish = *h.FinishedAt
		}
	}
	nums := make([]int, 0, len(byBatch))
	for k := range byBatch {
		nums = append(nums, k)
	}
	slices.Sort(nums)
	for i, k := range nums {
		m.critPath += byBatch[k].slowest
		if i > 0 {
			m.meanGap += byBatch[k].start.Sub(byBatch[nums[i-1]].end)
		}
	}
	if len(nums) > 1 {
		m.meanGap /= time.Duration(len(nums) - 1)
	}
	for _, ev := range e.Events(b, taskID) {
		if ev.EventType == event.FullCompleted {
			m.eventLatency = ev.Timestamp.Sub(lastFinish)
		}
	}
	if testing.Verbose() {
		fmt.Printf("task %s: %d hosts, summed host time %s, critical path %s, mean batch gap %s, event latency %s\n",
			taskID, len(task.Hosts), m.sum, m.critPath, m.meanGap, m.eventLatency)
	}
	_ = batchSize
	return m
}
