// Package app wires Herald together: configuration, database, queue,
// domains and the HTTP server; and takes them down again in order.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/riverqueue/river"

	"github.com/herald-release/herald/internal/api"
	"github.com/herald-release/herald/internal/buildinfo"
	"github.com/herald-release/herald/internal/config"
	"github.com/herald-release/herald/internal/db"
	"github.com/herald-release/herald/internal/egress"
	"github.com/herald-release/herald/internal/event"
	"github.com/herald-release/herald/internal/identity"
	"github.com/herald-release/herald/internal/inventory"
	"github.com/herald-release/herald/internal/notify"
	"github.com/herald-release/herald/internal/plan"
	"github.com/herald-release/herald/internal/queue"
	"github.com/herald-release/herald/internal/release/engine"
	"github.com/herald-release/herald/internal/secret"
)

// App is a configured Herald, ready to serve.
type App struct {
	Config    *config.Config
	Log       *slog.Logger
	DB        *db.DB
	Box       *secret.Box
	Egress    *egress.Policy
	Publisher *event.Publisher
	Identity  *identity.Store
	Inventory *inventory.Service
	Queue     *queue.Queue
	Notify    *notify.Hub
	Release   *engine.Engine
	Plan      *plan.Service
	API       *api.Server
	Registry  *prometheus.Registry

	// Bootstrapped holds what first start generated, to print once.
	Bootstrapped identity.Bootstrapped
	// KeyCreated tells that a new key file was written.
	KeyCreated bool
}

// NewLogger makes the process logger: JSON (or text) on stderr.
func NewLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// Open connects, migrates and builds every part, without serving.
func Open(ctx context.Context, cfg *config.Config, log *slog.Logger) (*App, error) {
	a := &App{Config: cfg, Log: log, Registry: prometheus.NewRegistry()}
	a.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	var err error
	if a.Egress, err = egress.New(cfg.EgressAllow); err != nil {
		return nil, err
	}
	if a.Box, a.KeyCreated, err = loadBox(cfg); err != nil {
		return nil, err
	}
	if a.DB, err = db.Open(ctx, cfg.DatabaseURL, cfg.DataDir); err != nil {
		return nil, err
	}
	applied, err := a.DB.Migrate(ctx)
	if err != nil {
		a.DB.Close()
		return nil, fmt.Errorf("migrate the database: %w", err)
	}
	if len(applied) > 0 {
		log.Info("database migrated", "applied", applied, "dialect", a.DB.Dialect())
	}

	a.Publisher = event.NewPublisher()
	a.Identity = identity.New(a.DB)
	a.Inventory = inventory.New(a.DB, a.Box, a.Publisher, cfg.PublicURL)
	if a.Bootstrapped, err = a.Identity.Bootstrap(ctx, cfg.AdminToken, cfg.AdminPassword); err != nil {
		a.DB.Close()
		return nil, fmt.Errorf("create the first admin: %w", err)
	}

	a.Queue = queue.New(a.DB, queue.Config{Logger: log.With("component", "river")})
	river.AddWorker(a.Queue.Workers(), &identity.PruneSessionsWorker{Store: a.Identity})
	a.Queue.AddPeriodic(identity.PruneSessionsJob())

	// Each domain wires itself in its own file: its services, workers and
	// subscribers before the queue is built, its routes after the API is.
	for _, wire := range []func(context.Context) error{a.wireNotify, a.wireRelease, a.wirePlan} {
		if err := wire(ctx); err != nil {
			a.DB.Close()
			return nil, err
		}
	}
	if err := a.Queue.Build(); err != nil {
		a.DB.Close()
		return nil, err
	}
	a.API = api.New(api.Deps{DB: a.DB, Identity: a.Identity, Inventory: a.Inventory, Registry: a.Registry,
		Log: log, Version: buildinfo.Version})
	a.routeNotify()
	a.routeRelease()
	a.routePlan()
	a.routeConsole()
	return a, nil
}

func loadBox(cfg *config.Config) (*secret.Box, bool, error) {
	if cfg.SecretKey != "" {
		key, err := secret.ParseKey(cfg.SecretKey)
		if err != nil {
			return nil, false, err
		}
		b, err := secret.NewBox(key)
		return b, false, err
	}
	key, created, err := secret.LoadOrCreateKeyFile(cfg.DataDir)
	if err != nil {
		return nil, false, err
	}
	b, err := secret.NewBox(key)
	return b, created, err
}

// Serve listens and serves until ctx ends, then stops gracefully: the
// server stops taking requests, running jobs get ShutdownGrace to finish,
// and whatever is left is picked up by the next start.
func (a *App) Serve(ctx context.Context, out io.Writer) error {
	ln, err := net.Listen("tcp", a.Config.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w: choose another address with HERALD_ADDR", a.Config.Addr, err)
	}
	if err := a.StartWork(ctx); err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(a.Log.Handler(), slog.LevelWarn),
	}
	a.announce(out, ln.Addr().String())

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	select {
	case err := <-serveErr:
		_ = a.StopWork(a.Config.ShutdownGrace)
		return err
	case <-ctx.Done():
	}
	a.Log.Info("shutting down", "grace", a.Config.ShutdownGrace.String())
	sctx, cancel := context.WithTimeout(context.Background(), a.Config.ShutdownGrace)
	defer cancel()
	httpErr := srv.Shutdown(sctx)
	qErr := a.StopWork(a.Config.ShutdownGrace)
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return errors.Join(httpErr, qErr)
}

// StartWork starts the background work: the job queue and the delivery
// dispatcher.
func (a *App) StartWork(ctx context.Context) error {
	if err := a.Queue.Start(ctx); err != nil {
		return fmt.Errorf("start the job queue: %w", err)
	}
	if err := a.Notify.Start(ctx); err != nil {
		_ = a.Queue.Stop(ctx, 0)
		return fmt.Errorf("start delivering notifications: %w", err)
	}
	return nil
}

// StopWork stops the background work; running jobs and attempts get grace
// to finish (the two run side by side), and what is left is taken up by the
// next start.
func (a *App) StopWork(grace time.Duration) error {
	done := make(chan struct{})
	go func() {
		a.Notify.Stop(grace)
		close(done)
	}()
	err := a.Queue.Stop(context.Background(), grace)
	<-done
	return err
}

// announce prints, once, what a person starting Herald needs: where it is,
// and the credentials generated on first start. This goes to stdout, never
// to the log.
func (a *App) announce(out io.Writer, addr string) {
	fmt.Fprintf(out, "Herald %s listening on http://%s (database: %s)\n", buildinfo.Version, addr, a.DB.Dialect())
	fmt.Fprintf(out, "Console: http://%s/\n", addr)
	if a.KeyCreated {
		fmt.Fprintf(out, "Generated the secret key %s/%s: back it up, stored secrets cannot be read without it.\n",
			a.Config.DataDir, secret.KeyFile)
	}
	if b := a.Bootstrapped; b.Created {
		fmt.Fprintln(out, "First start: created the admin user \"admin\".")
		if b.Token != "" {
			fmt.Fprintf(out, "  Admin API token (shown once): %s\n", b.Token)
		}
		if b.Password != "" {
			fmt.Fprintf(out, "  Admin console password (shown once): %s\n", b.Password)
		}
	}
	if f, ok := out.(*os.File); ok {
		_ = f.Sync()
	}
}

// Handler is everything Herald serves over HTTP.
func (a *App) Handler() http.Handler { return a.API.Handler() }

// Close releases the database.
func (a *App) Close() { a.DB.Close() }
