// Command herald-bench measures Herald's delivery path on this machine:
// it starts Herald (SQLite, or PostgreSQL with -database-url) and a
// loopback sink, pushes events, and prints ingest and delivery rates,
// event-to-arrival latency, lost and duplicated deliveries and peak RSS,
// beside the raw loopback HTTP POST rate measured in the same run.
//
//	go run ./cmd/herald-bench -events 10000 -endpoints 10
//	go run ./cmd/herald-bench -database-url postgres://postgres@127.0.0.1:5432/herald_bench -events 10000 -endpoints 10
//	go run ./cmd/herald-bench -events 10000 -endpoints 10 -hang   # one endpoint hangs until its timeout
//	go run ./cmd/herald-bench -events 1000 -rate 500              # latency at a steady 500 events/s
//	go run ./cmd/herald-bench -events 10000 -endpoints 10 -queued # RSS with 100,000 deliveries queued
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"time"

	"github.com/herald-release/herald/internal/bench"
)

func main() {
	var o bench.Options
	flag.StringVar(&o.DatabaseURL, "database-url", "", "postgres:// URL of an empty database; empty: SQLite in a temporary folder")
	flag.IntVar(&o.Events, "events", 10000, "events to push")
	flag.IntVar(&o.Endpoints, "endpoints", 1, "custom endpoints subscribed to every event")
	flag.IntVar(&o.Rate, "rate", 0, "events per second; 0: as fast as they commit")
	flag.IntVar(&o.Batch, "batch", 1, "events per transaction (1: one per API request)")
	flag.IntVar(&o.Pushers, "pushers", 4, "goroutines publishing at once, like concurrent API requests")
	flag.BoolVar(&o.Hang, "hang", false, "the first endpoint hangs until each request times out (2s)")
	flag.BoolVar(&o.Queued, "queued", false, "push every event before deliveries start, and report RSS with all of them queued")
	flag.DurationVar(&o.Timeout, "timeout", 10*time.Minute, "give up waiting for deliveries after this")
	flag.DurationVar(&o.RawFor, "raw", 3*time.Second, "how long to measure the raw loopback POST rate; 0 skips it")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "herald-bench:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "herald-bench:", err)
			os.Exit(1)
		}
	}
	o.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	code := run(ctx, o)
	pprof.StopCPUProfile()
	os.Exit(code)
}

func run(ctx context.Context, o bench.Options) int {
	res, err := bench.Run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "herald-bench:", err)
		return 1
	}
	fmt.Print(res)
	if res.Lost > 0 {
		return 1
	}
	return 0
}
