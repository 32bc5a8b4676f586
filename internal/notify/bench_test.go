package notify_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/herald-release/herald/internal/bench"
	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/db/dbtest"
)

// BenchmarkDeliveries pushes b.N events to M custom endpoints on loopback
// and reports deliveries/s and event-to-arrival latency (cmd/herald-bench
// runs the same measurement with more to tune). Run with
// -benchtime=10000x for the figures in the README.
func BenchmarkDeliveries(b *testing.B) {
	for _, dialect := range dbtest.Dialects() {
		for _, m := range []int{1, 10} {
			b.Run(fmt.Sprintf("%s/endpoints=%d", dialect, m), func(b *testing.B) { benchDeliveries(b, dialect, m, false) })
		}
		b.Run(fmt.Sprintf("%s/endpoints=10/one-hangs", dialect), func(b *testing.B) { benchDeliveries(b, dialect, 10, true) })
	}
}

func benchDeliveries(b *testing.B, dialect db.Dialect, endpoints int, hang bool) {
	o := bench.Options{Events: b.N, Endpoints: endpoints, Hang: hang, Batch: 100}
	if dialect == db.Postgres {
		o.DatabaseURL = dbtest.URL(b, dialect)
	}
	b.ResetTimer()
	res, err := bench.Run(context.Background(), o)
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if res.Lost > 0 {
		b.Fatalf("%d of %d deliveries never arrived", res.Lost, res.Expected)
	}
	b.ReportMetric(res.DeliveryPerSec, "deliveries/s")
	b.ReportMetric(res.IngestPerSec, "events/s-ingest")
	b.ReportMetric(float64(res.P50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(res.P99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(res.Duplicates), "duplicates")
	b.ReportMetric(0, "ns/op")
}
