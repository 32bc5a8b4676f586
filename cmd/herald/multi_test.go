package main_test

// Two herald serve processes on one PostgreSQL database share the work
// (CONTRACT §1): deliveries are claimed by both and survive the death of
// one; the one-active-task-per-environment rule holds across processes;
// a scheduled plan execution fires once although both run the queue.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/db/dbtest"
)

func TestTwoServersShareTheWork(t *testing.T) {
	t.Parallel()
	if os.Getenv(dbtest.EnvURL) == "" {
		t.Skipf("%s is not set: two servers sharing one database need PostgreSQL", dbtest.EnvURL)
	}
	const token = "hrd_multi_test_token_0123456789a"
	rcv := newReceiver()
	held := &heldSink{next: rcv}
	sink := httptest.NewServer(held)
	t.Cleanup(sink.Close)

	s := newSetup(t, db.Postgres, "HERALD_ADMIN_TOKEN="+token, "HERALD_EGRESS_ALLOW=127.0.0.0/8")
	var procs [2]*proc
	var clients [2]*client
	for i := range procs {
		procs[i], clients[i] = s.serve(t, token)
	}
	names := [2]string{"A", "B"}

	// 1. Deliveries: both servers take writes and deliver; one is killed
	// with SIGKILL in the middle; every acknowledged event still arrives,
	// a duplicate always with the same webhook-id.
	victim := rand.IntN(2)
	t.Run("deliveries survive a kill", func(t *testing.T) {
		c := [2]*client{multiClient(t, clients[0]), multiClient(t, clients[1])}
		// Project and callback through A. B has routed nothing for this
		// project yet, so it reads the routes fresh at its first write
		// (another process's configuration changes apply within the
		// route cache's TTL, internal/notify/cache.go).
		c[0].must("POST", "/api/v1/release/projects", map[string]any{"name": "Shop"}, 201, nil)
		c[0].must("POST", "/api/v1/release/callbacks", map[string]any{
			"name": "sink", "events": []string{"version_created"},
			"channels": []any{map[string]any{"type": "custom", "config": map[string]any{
				"url": sink.URL + "/hook", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
				"retry_count": 10, "retry_interval": 1,
			}}},
		}, 201, nil)

		killAt := 40 + rand.IntN(160) // acknowledged writes before the kill
		extra := 40 + rand.IntN(80)   // acknowledged writes through the survivor after it
		var (
			mu      sync.Mutex
			acked   []string
			target  = -1 // acknowledged writes to reach after the kill
			reached = make(chan struct{})
			enough  = make(chan struct{})
			stop    = make(chan struct{})
			killed  atomic.Bool
			wg      sync.WaitGroup
		)
		for srv := range 2 {
			for w := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						name := fmt.Sprintf("%s-w%d-%d", names[srv], w, i)
						status, raw, err := c[srv].do("POST", "/api/v1/release/projects/shop/versions", map[string]any{"name": name})
						if err != nil {
							if srv == victim && killed.Load() {
								return // killed
							}
							t.Errorf("POST version %s through %s: %v", name, names[srv], err)
							return
						}
						if status != 201 {
							t.Errorf("POST version %s through %s: %d %s", name, names[srv], status, raw)
							return
						}
						mu.Lock()
						acked = append(acked, name)
						switch n := len(acked); {
						case n == killAt:
							close(reached)
						case target > 0 && n == target:
							close(enough)
						}
						mu.Unlock()
					}
				}()
			}
		}
		defer func() {
			select {
			case <-stop:
			default:
				close(stop)
			}
			wg.Wait()
		}()

		// Before the kill: killAt writes acknowledged, and each server has
		// made a successful delivery (its own process's metrics say so;
		// the API does not say which process sent). Woken by arrivals.
		deadline := time.After(90 * time.Second)
		reachedC := reached
		var before [2]float64
		for {
			if reachedC == nil {
				before = [2]float64{deliveredBy(t, c[0]), deliveredBy(t, c[1])}
				if before[0] > 0 && before[1] > 0 {
					break
				}
			}
			select {
			case <-reachedC:
				reachedC = nil
			case <-rcv.changed:
			case <-deadline:
				mu.Lock()
				n := len(acked)
				mu.Unlock()
				t.Fatalf("within 90s: %d of %d writes acknowledged, successful deliveries by A %v, by B %v", n, killAt, before[0], before[1])
			}
			if t.Failed() {
				return
			}
		}
		killed.Store(true)
		if err := procs[victim].cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		select {
		case <-procs[victim].exited:
		case <-time.After(15 * time.Second):
			t.Fatalf("server %s did not die within 15s of SIGKILL", names[victim])
		}
		mu.Lock()
		atKill := len(acked)
		target = atKill + extra
		mu.Unlock()

		select {
		case <-enough:
		case <-time.After(60 * time.Second):
			t.Fatalf("the survivor %s did not acknowledge %d more writes within a minute", names[1-victim], extra)
		}
		close(stop)
		wg.Wait()
		if t.Failed() {
			return
		}
		mu.Lock()
		written := append([]string(nil), acked...)
		mu.Unlock()

		// The deliveries the dead server had in flight were cut off (held
		// requests whose sender went away); they and the rest it had
		// claimed are due again when their lease (20s) runs out, and the
		// survivor takes them then.
		held.mu.Lock()
		cut := append([]string(nil), held.cut...)
		held.mu.Unlock()
		if len(cut) == 0 {
			t.Fatalf("no delivery was in flight from %s when it was killed: the takeover is not tested", names[victim])
		}
		began := time.Now()
		rcv.awaitAll(t, append(written, cut...), 120*time.Second)
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		if len(rcv.conflict) > 0 {
			t.Fatalf("events delivered twice under different webhook-ids: %v", rcv.conflict)
		}
		for _, n := range written {
			if rcv.ids[n] == "" {
				t.Fatalf("version %s arrived without a webhook-id", n)
			}
		}
		t.Logf("killed %s after %d acknowledged writes, cutting off %d deliveries in flight; %d acknowledged in all; "+
			"successful deliveries before the kill: A %v, B %v; %d arrivals, %d duplicates (same webhook-id); "+
			"the last arrived %s after the writes stopped",
			names[victim], atKill, len(cut), len(written), before[0], before[1], rcv.arrivals, rcv.dups, time.Since(began).Round(time.Millisecond))
	})

	// The victim comes back as a new process on the same database.
	select {
	case <-procs[victim].exited:
		procs[victim], clients[victim] = s.serve(t, token)
	default:
	}

	// 2. One active task per environment, across processes.
	t.Run("one active task per environment", func(t *testing.T) {
		a, b := multiClient(t, clients[0]), multiClient(t, clients[1])
		dir := t.TempDir()
		gate := filepath.Join(dir, "go")
		t.Cleanup(func() { _ = os.WriteFile(gate, nil, 0o644) }) // no script outlives the test
		script := fmt.Sprintf(`echo "$HERALD_TASK_ID $HERALD_HOST" >> %q; while [ ! -f %q ]; do sleep 0.05; done`,
			filepath.Join(dir, "runs"), gate)
		a.must("POST", "/api/v1/release/projects", map[string]any{"id": "app", "name": "App"}, 201, nil)
		a.must("POST", "/api/v1/release/projects/app/environments", map[string]any{"name": "prod",
			"executor": map[string]any{"type": "local", "script": script}}, 201, nil)
		a.must("POST", "/api/v1/release/projects/app/environments/prod/hosts", map[string]any{"hosts": []map[string]any{
			{"name": "h1", "address": "127.0.0.1"}, {"name": "h2", "address": "127.0.0.1"}}}, 201, nil)
		b.must("POST", "/api/v1/release/projects/app/versions", map[string]any{"name": "v1"}, 201, nil)
		body := map[string]any{"project_id": "app", "environment": "prod", "version": "v1", "strategy": "rolling", "batch_size": 1}

		var first struct{ ID, Status string }
		a.must("POST", "/api/v1/release/tasks", body, 201, &first)
		multiConflict(t, b, body, "a second task through B while the first is "+first.Status)
		multiAwaitTask(t, [2]*client{a, b}, first.ID, "running")
		// A burst through both while it runs: every one refused.
		for i, code := range multiBurst([2]*client{a, b}, body, 8) {
			if code != 409 {
				t.Fatalf("create %d of a burst through both servers while a task runs: %d, want 409", i, code)
			}
		}
		if err := os.WriteFile(gate, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		multiAwaitTask(t, [2]*client{a, b}, first.ID, "success")

		// The environment is free: of a burst through both, exactly one wins.
		var winners int
		for _, code := range multiBurst([2]*client{a, b}, body, 8) {
			switch code {
			case 201:
				winners++
			case 409:
			default:
				t.Fatalf("create in a burst through both servers: %d", code)
			}
		}
		if winners != 1 {
			t.Fatalf("%d of a burst of creates through both servers succeeded, want exactly one", winners)
		}
		var list struct {
			Items []struct{ ID, Status string }
		}
		b.must("GET", "/api/v1/release/tasks?project_id=app&environment=prod", nil, 200, &list)
		if len(list.Items) != 2 {
			t.Fatalf("tasks of the environment: %+v, want two", list.Items)
		}
		for _, it := range list.Items {
			if it.ID != first.ID {
				multiAwaitTask(t, [2]*client{a, b}, it.ID, "success")
			}
		}
		// Each task ran each host once, whichever process ran it.
		raw, err := os.ReadFile(filepath.Join(dir, "runs"))
		if err != nil {
			t.Fatal(err)
		}
		runs := map[string]int{}
		for _, l := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
			runs[l]++
		}
		if len(runs) != 4 {
			t.Fatalf("script runs %v, want each of two tasks on h1 and h2 once", runs)
		}
		for l, n := range runs {
			if n != 1 {
				t.Fatalf("script run %q %d times, want once; all runs %v", l, n, runs)
			}
		}
	})

	// 3. A scheduled plan execution fires once although both servers run
	// the queue.
	t.Run("a scheduled execution fires once", func(t *testing.T) {
		a, b := multiClient(t, clients[0]), multiClient(t, clients[1])
		dir := t.TempDir()
		runs := filepath.Join(dir, "runs")
		var me struct{ ID string }
		a.must("GET", "/api/v1/me", nil, 200, &me)
		a.must("POST", "/api/v1/release/projects", map[string]any{"id": "night", "name": "Night"}, 201, nil)
		a.must("POST", "/api/v1/release/projects/night/environments", map[string]any{"name": "prod",
			"executor": map[string]any{"type": "local", "script": fmt.Sprintf(`echo "$HERALD_TASK_ID" >> %q`, runs)}}, 201, nil)
		a.must("POST", "/api/v1/release/projects/night/environments/prod/hosts", map[string]any{"name": "h1", "address": "127.0.0.1"}, 201, nil)
		a.must("POST", "/api/v1/release/projects/night/versions", map[string]any{"name": "v1"}, 201, nil)

		now := time.Now()
		schedule := now.Add(5 * time.Second)
		var p struct {
			ID, Status string
			Jobs       []struct {
				ID, Name, Status, Error string
				ExecutedBy              *struct{ Name string } `json:"executed_by"`
			}
		}
		a.must("POST", "/api/v1/release/plans", map[string]any{"name": "tonight", "manager_id": me.ID,
			"start_time": now.Add(-time.Minute).UTC().Format(time.RFC3339), "end_time": now.Add(time.Hour).UTC().Format(time.RFC3339),
			"schedule_execute_time": schedule.UTC().Format(time.RFC3339Nano),
			"jobs": []map[string]any{{"name": "deploy", "type": "workflow", "spec": map[string]any{
				"workflow": map[string]any{"project_id": "night", "environment": "prod", "version": "v1"}}}},
		}, 201, &p)
		b.must("POST", "/api/v1/release/plans/"+p.ID+"/finish-planning", nil, 200, &p)
		a.must("POST", "/api/v1/release/plans/"+p.ID+"/execute", nil, 200, &p)
		if p.Status != "executing" || len(p.Jobs) != 1 || p.Jobs[0].Status != "todo" {
			t.Fatalf("after execute: %+v", p)
		}
		if time.Now().After(schedule) {
			t.Logf("the schedule time passed before execute answered: the execution ran at once, still raced by both servers")
		}

		// The plan's status is the observable: poll it through both.
		deadline := time.Now().Add(90 * time.Second)
		for i := 0; p.Status != "success"; i++ {
			if len(p.Jobs) == 1 && p.Jobs[0].Status == "failed" {
				t.Fatalf("the scheduled job failed: %+v", p.Jobs[0])
			}
			if time.Now().After(deadline) {
				t.Fatalf("the plan is %s 90s after execute: %+v", p.Status, p)
			}
			time.Sleep(100 * time.Millisecond)
			[2]*client{a, b}[i%2].must("GET", "/api/v1/release/plans/"+p.ID, nil, 200, &p)
		}
		if j := p.Jobs[0]; j.Status != "done" || j.ExecutedBy == nil || j.ExecutedBy.Name != "system" {
			t.Fatalf("the scheduled job: %+v", j)
		}

		// The queue itself: one schedule job, completed in one attempt. River
		// records the completion after the work, so the plan may be done
		// first: wait for the job (polling the database), then read the
		// record, which a second run would have written to.
		d, err := db.Open(context.Background(), envValue(s.env, "HERALD_DATABASE_URL"), "")
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		var jobs, attempts int
		var states string
		for end := time.Now().Add(60 * time.Second); ; {
			if err := d.QueryRow(context.Background(), `SELECT COUNT(*), COALESCE(SUM(attempt), 0), COALESCE(STRING_AGG(state::text, ','), '')
				FROM river_job WHERE kind = 'plan.schedule'`).Scan(&jobs, &attempts, &states); err != nil {
				t.Fatal(err)
			}
			if jobs != 1 || (states != "running" && states != "available") || time.Now().After(end) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if jobs != 1 || attempts != 1 || states != "completed" {
			t.Fatalf("plan.schedule River jobs: %d, attempts %d, states %q; want one completed in one attempt", jobs, attempts, states)
		}

		var logs struct {
			Items []struct{ Action, Detail string }
		}
		b.must("GET", "/api/v1/release/plans/"+p.ID+"/logs?limit=500", nil, 200, &logs)
		var scheduled []string
		for _, l := range logs.Items {
			if l.Action == "schedule_execute" {
				scheduled = append(scheduled, l.Detail)
			}
		}
		if len(scheduled) != 1 || !strings.Contains(scheduled[0], "1 workflow job(s) started") {
			t.Fatalf("scheduled executions in the operation record: %q, want one that started the job", scheduled)
		}
		var tasks struct {
			Items []struct{ ID, Status string }
		}
		a.must("GET", "/api/v1/release/tasks?project_id=night&environment=prod", nil, 200, &tasks)
		if len(tasks.Items) != 1 || tasks.Items[0].Status != "success" {
			t.Fatalf("tasks of the scheduled job's environment: %+v, want one that succeeded", tasks.Items)
		}
		if got := multiLines(t, runs); len(got) != 1 || got[0] != tasks.Items[0].ID {
			t.Fatalf("the job's script ran %q, want once for task %s", got, tasks.Items[0].ID)
		}
	})

	for i, p := range procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(20 * time.Second):
			t.Errorf("server %s did not stop within 20s of SIGTERM", names[i])
		}
	}
}

// heldSink holds each delivery a moment before next sees it, so that a
// server killed has deliveries in flight. A held request whose sender dies
// meanwhile never reaches next; its version is noted in cut.
type heldSink struct {
	next http.Handler
	mu   sync.Mutex
	cut  []string
}

func (h *heldSink) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	raw, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	// Once the body is read, the server notices a closed connection and
	// cancels the request's context.
	select {
	case <-req.Context().Done():
		var body struct {
			Version struct{ Name string } `json:"version"`
		}
		if json.Unmarshal(raw, &body) == nil && body.Version.Name != "" {
			h.mu.Lock()
			h.cut = append(h.cut, body.Version.Name)
			h.mu.Unlock()
		}
		return
	case <-time.After(time.Duration(20+rand.IntN(80)) * time.Millisecond):
	}
	req.Body = io.NopCloser(bytes.NewReader(raw))
	h.next.ServeHTTP(w, req)
}

// multiClient is c for a subtest: its failures are the subtest's.
func multiClient(t *testing.T, c *client) *client {
	return &client{t: t, base: c.base, token: c.token, http: c.http}
}

// deliveredBy is the number of successful custom deliveries the server's
// process has made, from its metrics.
func deliveredBy(t *testing.T, c *client) float64 {
	t.Helper()
	status, raw, err := c.do("GET", "/metrics", nil)
	if err != nil || status != 200 {
		t.Fatalf("GET %s/metrics: %d %v", c.base, status, err)
	}
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "herald_delivery_attempts_total{") ||
			!strings.Contains(line, `channel_type="custom"`) || !strings.Contains(line, `outcome="success"`) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

// multiConflict posts a task and wants 409 conflict.
func multiConflict(t *testing.T, c *client, body map[string]any, what string) {
	t.Helper()
	status, raw, err := c.do("POST", "/api/v1/release/tasks", body)
	var e struct{ Error struct{ Code string } }
	_ = json.Unmarshal(raw, &e)
	if err != nil || status != 409 || e.Error.Code != "conflict" {
		t.Fatalf("%s: %d %s %v, want 409 conflict", what, status, raw, err)
	}
}

// multiBurst posts n creates of body at once, alternating the servers, and
// returns their statuses (0 for a transport error).
func multiBurst(cs [2]*client, body map[string]any, n int) []int {
	codes := make([]int, n)
	startGun := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-startGun
			codes[i], _, _ = cs[i%2].do("POST", "/api/v1/release/tasks", body)
		}()
	}
	close(startGun)
	wg.Wait()
	return codes
}

// multiAwaitTask polls a task through both servers until it has status; a
// task that ends otherwise fails the test.
func multiAwaitTask(t *testing.T, cs [2]*client, id, status string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for i := 0; ; i++ {
		var task struct{ Status string }
		cs[i%2].must("GET", "/api/v1/release/tasks/"+id, nil, 200, &task)
		switch {
		case task.Status == status:
			return
		case task.Status == "failed" || task.Status == "cancelled" || (task.Status == "success" && status != "success"):
			t.Fatalf("task %s is %s, waiting for %s", id, task.Status, status)
		case time.Now().After(deadline):
			t.Fatalf("task %s is %s 90s on, waiting for %s", id, task.Status, status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func multiLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}
