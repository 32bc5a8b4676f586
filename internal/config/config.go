// Package config reads Herald's settings (CONTRACT §1): every setting is a
// flag and an environment variable; a flag wins over the variable.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/herald-release/herald/internal/egress"
)

// Config is the server's configuration.
type Config struct {
	Addr          string
	DatabaseURL   string
	DataDir       string
	SecretKey     string
	AdminToken    string
	AdminPassword string
	PublicURL     string
	RetrySchedule []time.Duration
	EgressAllow   []string
	LogLevel      string
	LogFormat     string
	// ShutdownGrace is how long running jobs may take to finish on SIGTERM
	// before they are cancelled and left for the next start.
	ShutdownGrace time.Duration
}

// DefaultRetrySchedule is HERALD_RETRY_SCHEDULE's default.
const DefaultRetrySchedule = "5s,30s,2m,10m,30m,1h,2h"

type setting struct {
	flag, env, def, usage string
	dst                   *string
}

// Load parses args (without the program and subcommand names) with getenv
// supplying the environment.
func Load(name string, args []string, getenv func(string) string, out io.Writer) (*Config, error) {
	var c Config
	var retry, egressAllow, grace string
	settings := []setting{
		{"addr", "HERALD_ADDR", "127.0.0.1:8080", "listen address", &c.Addr},
		{"database-url", "HERALD_DATABASE_URL", "", "postgres:// URL; empty for SQLite in the data folder", &c.DatabaseURL},
		{"data-dir", "HERALD_DATA_DIR", "./herald-data", "data folder: SQLite file and generated key", &c.DataDir},
		{"secret-key", "HERALD_SECRET_KEY", "", "base64 of 32 bytes; encrypts stored secrets (required with PostgreSQL)", &c.SecretKey},
		{"admin-token", "HERALD_ADMIN_TOKEN", "", "API token of the admin user created on first start", &c.AdminToken},
		{"admin-password", "HERALD_ADMIN_PASSWORD", "", "console password of the admin user created on first start", &c.AdminPassword},
		{"public-url", "HERALD_PUBLIC_URL", "", "URL used in links inside messages (default http://<addr>)", &c.PublicURL},
		{"retry-schedule", "HERALD_RETRY_SCHEDULE", DefaultRetrySchedule, "retry delays of IM channels, comma-separated Go durations", &retry},
		{"egress-allow", "HERALD_EGRESS_ALLOW", "", "extra CIDRs allowed as outgoing targets, comma-separated", &egressAllow},
		{"log-level", "HERALD_LOG_LEVEL", "info", "debug, info, warn or error", &c.LogLevel},
		{"log-format", "HERALD_LOG_FORMAT", "json", "json or text", &c.LogFormat},
		{"shutdown-grace", "HERALD_SHUTDOWN_GRACE", "30s", "how long running work may finish on SIGTERM", &grace},
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	for _, s := range settings {
		def := s.def
		if v := getenv(s.env); v != "" {
			def = v
		}
		fs.StringVar(s.dst, s.flag, def, s.usage+" ($"+s.env+")")
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}

	var errs []error
	sched, err := ParseRetrySchedule(retry)
	if err != nil {
		errs = append(errs, fmt.Errorf("HERALD_RETRY_SCHEDULE: %w", err))
	}
	c.RetrySchedule = sched
	for _, a := range strings.Split(egressAllow, ",") {
		if a = strings.TrimSpace(a); a != "" {
			c.EgressAllow = append(c.EgressAllow, a)
		}
	}
	if _, err := egress.New(c.EgressAllow); err != nil {
		errs = append(errs, fmt.Errorf("HERALD_EGRESS_ALLOW: %w", err))
	}
	if c.ShutdownGrace, err = time.ParseDuration(grace); err != nil || c.ShutdownGrace < 0 {
		errs = append(errs, fmt.Errorf("HERALD_SHUTDOWN_GRACE: %q is not a duration such as \"30s\"", grace))
	}
	if c.IsPostgres() && c.SecretKey == "" {
		errs = append(errs, errors.New("HERALD_SECRET_KEY is required with PostgreSQL, so that every Herald process shares it: generate one with `openssl rand -base64 32`"))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("HERALD_LOG_LEVEL: %q is not debug, info, warn or error", c.LogLevel))
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("HERALD_LOG_FORMAT: %q is not json or text", c.LogFormat))
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.Addr
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &c, nil
}

// IsPostgres tells whether the database is PostgreSQL.
func (c *Config) IsPostgres() bool {
	return strings.HasPrefix(c.DatabaseURL, "postgres://") || strings.HasPrefix(c.DatabaseURL, "postgresql://")
}

// ParseRetrySchedule reads "5s,30s,2m".
func ParseRetrySchedule(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		d, err := time.ParseDuration(part)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%q is not a positive duration such as \"30s\"", part)
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil, errors.New("give at least one delay, e.g. \"5s,30s,2m\"")
	}
	return out, nil
}
