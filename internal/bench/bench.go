// Package bench measures the delivery path end to end: it starts Herald on
// SQLite or PostgreSQL with a loopback sink, pushes events, and reports
// ingest and delivery rates, event-to-arrival latency, lost and duplicated
// deliveries and peak memory, next to the machine's raw loopback HTTP POST
// rate measured in the same run. cmd/herald-bench and the notify package's
// benchmark both run it.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-release/herald/internal/app"
	"github.com/herald-release/herald/internal/config"
	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/event"
)

// Options describe one run.
type Options struct {
	// DatabaseURL is a postgres:// URL, or empty for SQLite in DataDir.
	DatabaseURL string
	// DataDir holds the SQLite database; empty: a temporary folder.
	DataDir string
	// Events is how many events to push; Endpoints how many custom
	// endpoints subscribe to each (deliveries = Events × healthy ones).
	Events, Endpoints int
	// Rate is events per second; 0 pushes as fast as the database takes them.
	Rate int
	// Batch is how many events one transaction publishes (1: one per
	// request, as the API does).
	Batch int
	// Pushers is how many publish at once, as concurrent API requests
	// would; 0 means 4.
	Pushers int
	// Hang makes the first endpoint hang until each request times out.
	Hang bool
	// Queued pushes every event before deliveries start, to measure the
	// memory held with the whole backlog queued.
	Queued bool
	// Timeout bounds the wait for the last delivery.
	Timeout time.Duration
	// RawFor is how long the raw loopback POST rate is measured; 0 skips it.
	RawFor time.Duration
	// Log receives Herald's warnings and errors; nil discards them.
	Log *slog.Logger
}

// Result is what a run measured.
type Result struct {
	Database        string
	Events          int
	Endpoints       int
	Expected        int64 // deliveries to healthy endpoints
	Arrived         int64 // distinct deliveries that arrived
	Duplicates      int64
	Lost            int64
	IngestPerSec    float64
	DeliveryPerSec  float64
	P50, P99, Max   time.Duration
	PeakRSSBytes    int64
	QueuedRSSBytes  int64 // with Options.Queued: RSS with the whole backlog queued
	RawPostsPerSec  float64
	RatioToRaw      float64
	Elapsed         time.Duration
	HealthyEndpoint int
}

// String is the report cmd/herald-bench prints.
func (r Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "database          %s\n", r.Database)
	fmt.Fprintf(&b, "events            %d × %d endpoints (%d healthy) = %d deliveries expected\n", r.Events, r.Endpoints, r.HealthyEndpoint, r.Expected)
	fmt.Fprintf(&b, "ingest            %.0f events/s\n", r.IngestPerSec)
	fmt.Fprintf(&b, "deliveries        %.0f /s (%d arrived in %s)\n", r.DeliveryPerSec, r.Arrived, r.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(&b, "latency           p50 %s  p99 %s  max %s (event committed → arrival)\n", ms(r.P50), ms(r.P99), ms(r.Max))
	fmt.Fprintf(&b, "lost              %d\n", r.Lost)
	fmt.Fprintf(&b, "duplicates        %d\n", r.Duplicates)
	fmt.Fprintf(&b, "peak RSS          %.1f MB\n", float64(r.PeakRSSBytes)/(1<<20))
	if r.QueuedRSSBytes > 0 {
		fmt.Fprintf(&b, "RSS, all queued   %.1f MB (%d deliveries waiting)\n", float64(r.QueuedRSSBytes)/(1<<20), r.Expected)
	}
	if r.RawPostsPerSec > 0 {
		fmt.Fprintf(&b, "raw loopback POST %.0f /s on this machine; deliveries are %.1f%% of it\n", r.RawPostsPerSec, 100*r.RatioToRaw)
	}
	return b.String()
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64) + "ms"
}

// Run performs one measurement.
func Run(ctx context.Context, o Options) (Result, error) {
	if o.Events <= 0 || o.Endpoints <= 0 {
		return Result{}, errors.New("bench: events and endpoints must be positive")
	}
	if o.Hang && o.Endpoints < 2 {
		return Result{}, errors.New("bench: a hanging endpoint needs at least one healthy one beside it")
	}
	o.Batch = max(o.Batch, 1)
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Minute
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	var res Result
	if o.RawFor > 0 {
		res.RawPostsPerSec = rawPostRate(o.RawFor)
	}

	dir := o.DataDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "herald-bench-")
		if err != nil {
			return res, err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	cfg, err := config.Load("herald-bench", []string{
		"--database-url", o.DatabaseURL, "--data-dir", dir,
		"--secret-key", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
		"--admin-token", benchToken, "--admin-password", "bench-password",
		"--egress-allow", "127.0.0.0/8",
	}, func(string) string { return "" }, io.Discard)
	if err != nil {
		return res, err
	}
	a, err := app.Open(ctx, cfg, o.Log)
	if err != nil {
		return res, err
	}
	defer a.Close()
	res.Database = string(a.DB.Dialect())

	healthy := o.Endpoints
	s := newSink(o.Hang)
	if o.Hang {
		healthy--
	}
	res.Events, res.Endpoints, res.HealthyEndpoint = o.Events, o.Endpoints, healthy
	res.Expected = int64(o.Events * healthy)
	s.want = res.Expected
	srv := httptest.NewServer(s)
	defer srv.Close()
	if err := subscribe(a, srv.URL, o.Endpoints); err != nil {
		return res, err
	}

	if !o.Queued {
		if err := a.StartWork(ctx); err != nil {
			return res, err
		}
	}
	start := time.Now()
	published, err := push(ctx, a, o)
	if err != nil {
		_ = a.StopWork(time.Second)
		return res, err
	}
	ingest := time.Since(start)
	res.IngestPerSec = float64(o.Events) / ingest.Seconds()
	if o.Queued {
		// What the publishing left behind is garbage, not the queue.
		runtime.GC()
		debug.FreeOSMemory()
		res.QueuedRSSBytes = procStatus("VmRSS")
		start = time.Now()
		if err := a.StartWork(ctx); err != nil {
			return res, err
		}
	}
	select {
	case <-s.done:
	case <-time.After(o.Timeout):
	case <-ctx.Done():
	}
	res.Elapsed = time.Since(start)
	_ = a.StopWork(2 * time.Second)
	res.PeakRSSBytes = procStatus("VmHWM")

	s.mu.Lock()
	defer s.mu.Unlock()
	res.Arrived = int64(len(s.arrivals))
	res.Duplicates = s.dups
	res.Lost = res.Expected - res.Arrived
	res.DeliveryPerSec = float64(res.Arrived) / res.Elapsed.Seconds()
	if res.RawPostsPerSec > 0 {
		res.RatioToRaw = res.DeliveryPerSec / res.RawPostsPerSec
	}
	lat := make([]time.Duration, 0, len(s.arrivals))
	for k, at := range s.arrivals {
		if p, ok := published[k.event]; ok {
			lat = append(lat, at.Sub(p))
		}
	}
	slices.Sort(lat)
	if n := len(lat); n > 0 {
		res.P50, res.P99, res.Max = lat[(n-1)/2], lat[(n-1)*99/100], lat[n-1]
	}
	return res, nil
}

const benchToken = "hrd_bench_token_0123456789abcdef"

// subscribe adds one global configuration with n custom endpoints on the
// sink, through the API as a user would.
func subscribe(a *app.App, base string, n int) error {
	var channels []map[string]any
	for i := range n {
		channels = append(channels, map[string]any{"type": "custom", "config": map[string]any{
			"url": fmt.Sprintf("%s/hook/%d", base, i), "timeout": 2, "retry_count": 0,
			"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}})
	}
	body, _ := json.Marshal(map[string]any{"name": "bench", "channels": channels})
	req := httptest.NewRequest("POST", "/api/v1/release/callbacks", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+benchToken)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusCreated {
		return fmt.Errorf("bench: create the callback configuration: %d %s", rec.Code, rec.Body)
	}
	return nil
}

// push publishes the events from o.Pushers goroutines, o.Batch per
// transaction, paced to o.Rate in all, and returns when each was committed.
func push(ctx context.Context, a *app.App, o Options) (map[string]time.Time, error) {
	pushers := o.Pushers
	if pushers <= 0 {
		pushers = 4
	}
	var interval time.Duration
	if o.Rate > 0 {
		interval = time.Second * time.Duration(o.Batch*pushers) / time.Duration(o.Rate)
	}
	var (
		mu        sync.Mutex
		published = make(map[string]time.Time, o.Events)
		nextBatch atomic.Int64
		firstErr  error
		wg        sync.WaitGroup
	)
	for p := range pushers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := time.Now().Add(interval * time.Duration(p) / time.Duration(pushers))
			for {
				i := int(nextBatch.Add(1)-1) * o.Batch
				if i >= o.Events {
					return
				}
				if interval > 0 {
					if d := time.Until(next); d > 0 {
						time.Sleep(d) // pacing the load generator, not awaiting an event
					}
					next = next.Add(interval)
				}
				n := min(o.Batch, o.Events-i)
				evs := make([]*event.Envelope, 0, n)
				err := a.DB.InTx(ctx, func(tx db.Tx) error {
					for j := range n {
						ev := &event.Envelope{EventType: event.ProjectUpdated, Project: &event.ProjectRef{ID: "bench", Name: "Bench"}}
						if _, err := a.Publisher.Publish(ctx, tx, ev, event.Options{ObjectID: "bench-" + strconv.Itoa(i+j)}); err != nil {
							return err
						}
						evs = append(evs, ev)
					}
					return nil
				})
				now := time.Now()
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("bench: publish: %w", err)
				}
				for _, ev := range evs {
					published[ev.ID] = now
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	return published, firstErr
}

// sink is the loopback receiver: it counts first arrivals per event and
// endpoint, and duplicates.
type sink struct {
	mu       sync.Mutex
	arrivals map[arrival]time.Time
	dups     int64
	want     int64
	count    atomic.Int64
	done     chan struct{}
	hang     bool
}

type arrival struct{ event, path string }

func newSink(hang bool) *sink {
	return &sink{arrivals: map[arrival]time.Time{}, done: make(chan struct{}), hang: hang}
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The body is read first: only then does the server watch the
	// connection, and see the client give up at its timeout.
	_, _ = io.Copy(io.Discard, r.Body)
	if s.hang && r.URL.Path == "/hook/0" {
		<-r.Context().Done()
		return
	}
	now := time.Now()
	k := arrival{r.Header.Get("webhook-id"), r.URL.Path}
	s.mu.Lock()
	_, seen := s.arrivals[k]
	if seen {
		s.dups++
	} else {
		s.arrivals[k] = now
	}
	s.mu.Unlock()
	if !seen && s.count.Add(1) == s.want {
		close(s.done)
	}
	w.WriteHeader(http.StatusNoContent)
}

// rawClients matches Herald's delivery workers (notify.Options.Workers).
const rawClients = 100

// rawPostRate is how many small POSTs per second this machine serves over
// loopback with keep-alive, from as many concurrent clients as Herald's
// delivery slots: the ceiling any delivery rate is measured against.
func rawPostRate(d time.Duration) float64 {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: rawClients}}
	body := bytes.Repeat([]byte("x"), 600) // about a standard message
	var n atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for range rawClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				resp, err := client.Post(srv.URL, "application/json", bytes.NewReader(body))
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / d.Seconds()
}
