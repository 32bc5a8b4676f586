package notify_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-release/herald/internal/app/apptest"
	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/db/dbtest"
	"github.com/herald-release/herald/internal/event"
)

// sink is a loopback receiver that only counts and timestamps arrivals.
type sink struct {
	mu       sync.Mutex
	arrivals map[string]time.Time // webhook-id + path → first arrival
	dups     atomic.Int64
	count    atomic.Int64
	done     chan struct{}
	want     int64
	hang     string // path that hangs until the request's context ends
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.hang != "" && r.URL.Path == s.hang {
		<-r.Context().Done()
		return
	}
	_, _ = io.Copy(io.Discard, r.Body)
	key := r.Header.Get("webhook-id") + r.URL.Path
	now := time.Now()
	s.mu.Lock()
	if _, seen := s.arrivals[key]; seen {
		s.dups.Add(1)
	} else {
		s.arrivals[key] = now
	}
	s.mu.Unlock()
	if s.count.Add(1) == s.want {
		close(s.done)
	}
	w.WriteHeader(http.StatusNoContent)
}

// BenchmarkDeliveries pushes b.N events to M custom endpoints on loopback
// and reports deliveries/s and event-to-arrival latency. Run with
// -benchtime=10000x for the figures in the README.
func BenchmarkDeliveries(b *testing.B) {
	for _, dialect := range dbtest.Dialects() {
		for _, m := range []int{1, 10} {
			b.Run(fmt.Sprintf("%s/endpoints=%d", dialect, m), func(b *testing.B) { benchDeliveries(b, dialect, m, false) })
		}
		b.Run(fmt.Sprintf("%s/endpoints=10/one-hangs", dialect), func(b *testing.B) { benchDeliveries(b, dialect, 10, true) })
	}
}

func benchDeliveries(b *testing.B, dialect db.Dialect, endpoints int, oneHangs bool) {
	env := apptest.New(b, dialect)
	healthy := endpoints
	s := &sink{arrivals: map[string]time.Time{}, done: make(chan struct{})}
	if oneHangs {
		s.hang = "/hook/0"
		healthy = endpoints - 1
	}
	s.want = int64(b.N * healthy)
	srv := httptest.NewServer(s)
	b.Cleanup(srv.Close)

	var channels []map[string]any
	for i := range endpoints {
		channels = append(channels, map[string]any{"type": "custom", "config": map[string]any{
			"url": fmt.Sprintf("%s/hook/%d", srv.URL, i), "timeout": 2, "retry_count": 0,
			"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}})
	}
	env.JSON(b, "POST", "/api/v1/release/callbacks", map[string]any{"channels": channels}, 201, nil)

	ctx := context.Background()
	published := make(map[string]time.Time, b.N)
	b.ResetTimer()
	start := time.Now()
	const batch = 100
	for i := 0; i < b.N; i += batch {
		n := min(batch, b.N-i)
		var evs []*event.Envelope
		err := env.App.DB.InTx(ctx, func(tx db.Tx) error {
			for j := range n {
				ev := &event.Envelope{EventType: event.ProjectUpdated, Project: &event.ProjectRef{ID: "bench", Name: "Bench"}}
				if _, err := env.App.Publisher.Publish(ctx, tx, ev, event.Options{ObjectID: fmt.Sprintf("bench-%d", i+j)}); err != nil {
					return err
				}
				evs = append(evs, ev)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		for _, ev := range evs {
			published[ev.ID] = now
		}
	}
	ingest := time.Since(start)
	select {
	case <-s.done:
	case <-time.After(10 * time.Minute):
		b.Fatalf("only %d of %d deliveries arrived", s.count.Load(), s.want)
	}
	elapsed := time.Since(start)
	b.StopTimer()

	var lat []time.Duration
	s.mu.Lock()
	for key, at := range s.arrivals {
		id := key[:len(key)-len("/hook/")-1]
		for i := len(key) - 1; i >= 0; i-- {
			if key[i] == '/' && i >= 5 && key[i-5:i] == "/hook" {
				id = key[:i-5]
				break
			}
		}
		if p, ok := published[id]; ok {
			lat = append(lat, at.Sub(p))
		}
	}
	s.mu.Unlock()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[int(float64(len(lat)-1)*p)].Microseconds()) / 1000
	}
	b.ReportMetric(float64(s.want)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(b.N)/ingest.Seconds(), "events/s-ingest")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(s.dups.Load()), "duplicates")
	b.ReportMetric(0, "ns/op")
}
