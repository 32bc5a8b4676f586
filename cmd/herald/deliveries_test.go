package main_test

// Deliveries across crashes: events flood a receiver while the real binary
// is killed with SIGKILL at random moments and started again. In the end
// every acknowledged event has arrived at least once, and a duplicate is
// always the same event (the same webhook-id).

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/herald-release/herald/internal/db"
)

// receiver counts what arrives, by version name, and remembers the
// webhook-id each version came with.
type receiver struct {
	mu       sync.Mutex
	ids      map[string]string // version name → webhook-id
	arrivals int
	dups     int
	conflict []string // versions that came with two different webhook-ids
	changed  chan struct{}
}

func newReceiver() *receiver {
	return &receiver{ids: map[string]string{}, changed: make(chan struct{}, 1)}
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	raw, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	var body struct {
		Version struct{ Name string } `json:"version"`
	}
	if err := json.Unmarshal(raw, &body); err != nil || body.Version.Name == "" {
		http.Error(w, "not a version event", http.StatusBadRequest)
		return
	}
	id := req.Header.Get("webhook-id")
	r.mu.Lock()
	r.arrivals++
	if prev, seen := r.ids[body.Version.Name]; seen {
		r.dups++
		if prev != id {
			r.conflict = append(r.conflict, body.Version.Name)
		}
	} else {
		r.ids[body.Version.Name] = id
	}
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
	w.WriteHeader(http.StatusNoContent)
}

// missing lists the names that have not arrived.
func (r *receiver) missing(names []string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, n := range names {
		if _, ok := r.ids[n]; !ok {
			out = append(out, n)
		}
	}
	return out
}

// awaitAll waits until every name has arrived, woken by each arrival.
func (r *receiver) awaitAll(t *testing.T, names []string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		miss := r.missing(names)
		if len(miss) == 0 {
			return
		}
		select {
		case <-r.changed:
		case <-deadline:
			t.Fatalf("%d of %d acknowledged events never arrived, e.g. %v", len(miss), len(names), miss[:min(5, len(miss))])
		}
	}
}

func TestDeliveriesSurviveKills(t *testing.T) {
	t.Parallel()
	// CI runs the short form; HERALD_CRASH_ROUNDS=20 runs a longer one.
	rounds := 3
	if n, err := strconv.Atoi(os.Getenv("HERALD_CRASH_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	const token = "hrd_crash_test_token_0123456789a"
	rcv := newReceiver()
	sink := httptest.NewServer(rcv)
	t.Cleanup(sink.Close)

	s := newSetup(t, db.SQLite, "HERALD_ADMIN_TOKEN="+token, "HERALD_EGRESS_ALLOW=127.0.0.0/8")
	p, c := s.serve(t, token)
	c.must("POST", "/api/v1/release/projects", map[string]any{"name": "Shop"}, 201, nil)
	c.must("POST", "/api/v1/release/callbacks", map[string]any{
		"name": "sink", "events": []string{"version_created"},
		"channels": []any{map[string]any{"type": "custom", "config": map[string]any{
			"url": sink.URL + "/hook", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
			"retry_count": 10, "retry_interval": 1,
		}}},
	}, 201, nil)

	var acked []string
	for round := range rounds {
		// Four writers post versions; the kill comes after a random
		// number of acknowledged writes, with deliveries in flight.
		killAt := len(acked) + 40 + rand.IntN(160)
		var mu sync.Mutex
		reached := make(chan struct{})
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					name := fmt.Sprintf("r%d-w%d-%d", round, w, i)
					status, _, err := c.do("POST", "/api/v1/release/projects/shop/versions", map[string]any{"name": name})
					if err != nil {
						return // killed
					}
					if status != 201 {
						t.Errorf("POST version %s: %d", name, status)
						return
					}
					mu.Lock()
					acked = append(acked, name)
					if len(acked) == killAt {
						close(reached)
					}
					mu.Unlock()
				}
			}()
		}
		select {
		case <-reached:
		case <-time.After(60 * time.Second):
			t.Fatalf("round %d: no %d acknowledged writes within a minute", round, killAt)
		}
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		p.wait(15 * time.Second)
		wg.Wait()
		if t.Failed() {
			return
		}
		p, c = s.serve(t, token)
	}
	rcv.awaitAll(t, acked, 90*time.Second)

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.conflict) > 0 {
		t.Fatalf("events delivered twice under different webhook-ids: %v", rcv.conflict)
	}
	t.Logf("%d rounds: %d events acknowledged, %d arrivals, %d duplicates (same webhook-id)",
		rounds, len(acked), rcv.arrivals, rcv.dups)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
}
