package config_test

import (
	"errors"
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/herald-release/herald/internal/config"
)

const testKey = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func load(args []string, vars map[string]string) (*config.Config, error) {
	return config.Load("herald serve", args, env(vars), io.Discard)
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := load(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := config.Config{
		Addr:          "127.0.0.1:8080",
		DataDir:       "./herald-data",
		PublicURL:     "http://127.0.0.1:8080",
		RetrySchedule: []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour},
		LogLevel:      "info",
		LogFormat:     "json",
		ShutdownGrace: 30 * time.Second,
	}
	if !reflect.DeepEqual(*c, want) {
		t.Fatalf("defaults:\n got %+v\nwant %+v", *c, want)
	}
	if c.IsPostgres() {
		t.Fatal("the default database is PostgreSQL")
	}
}

// Every CONTRACT §1 setting (and the extra ones) works as a flag and as an
// environment variable, and the flag wins when both are given.
func TestEverySettingAsFlagAndEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		flag, env string
		value     string // what the user sets
		other     string // a different valid value, for the losing side
		get       func(*config.Config) any
		want      any
		extraEnv  map[string]string // settings needed alongside
	}{
		{flag: "addr", env: "HERALD_ADDR", value: "0.0.0.0:9999", other: "127.0.0.1:1",
			get: func(c *config.Config) any { return c.Addr }, want: "0.0.0.0:9999"},
		{flag: "database-url", env: "HERALD_DATABASE_URL", value: "postgres://u@db.example:5432/herald", other: "postgresql://x@y/z",
			get: func(c *config.Config) any { return c.DatabaseURL }, want: "postgres://u@db.example:5432/herald",
			extraEnv: map[string]string{"HERALD_SECRET_KEY": testKey}},
		{flag: "data-dir", env: "HERALD_DATA_DIR", value: "/var/lib/herald", other: "/tmp/other",
			get: func(c *config.Config) any { return c.DataDir }, want: "/var/lib/herald"},
		{flag: "secret-key", env: "HERALD_SECRET_KEY", value: testKey, other: "b3RoZXI=",
			get: func(c *config.Config) any { return c.SecretKey }, want: testKey},
		{flag: "admin-token", env: "HERALD_ADMIN_TOKEN", value: "hrd_0123456789abcdef", other: "hrd_other_token_value",
			get: func(c *config.Config) any { return c.AdminToken }, want: "hrd_0123456789abcdef"},
		{flag: "admin-password", env: "HERALD_ADMIN_PASSWORD", value: "s3cret-pass", other: "other-pass",
			get: func(c *config.Config) any { return c.AdminPassword }, want: "s3cret-pass"},
		{flag: "public-url", env: "HERALD_PUBLIC_URL", value: "https://herald.example.com/", other: "https://other.example",
			get: func(c *config.Config) any { return c.PublicURL }, want: "https://herald.example.com"},
		{flag: "retry-schedule", env: "HERALD_RETRY_SCHEDULE", value: "1s, 1m30s,2h", other: "9s",
			get:  func(c *config.Config) any { return c.RetrySchedule },
			want: []time.Duration{time.Second, 90 * time.Second, 2 * time.Hour}},
		{flag: "egress-allow", env: "HERALD_EGRESS_ALLOW", value: "127.0.0.0/8, ::1/128,169.254.169.254", other: "10.9.0.0/16",
			get:  func(c *config.Config) any { return c.EgressAllow },
			want: []string{"127.0.0.0/8", "::1/128", "169.254.169.254"}},
		{flag: "log-level", env: "HERALD_LOG_LEVEL", value: "debug", other: "error",
			get: func(c *config.Config) any { return c.LogLevel }, want: "debug"},
		{flag: "log-format", env: "HERALD_LOG_FORMAT", value: "text", other: "json",
			get: func(c *config.Config) any { return c.LogFormat }, want: "text"},
		{flag: "shutdown-grace", env: "HERALD_SHUTDOWN_GRACE", value: "5s", other: "1m",
			get: func(c *config.Config) any { return c.ShutdownGrace }, want: 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			t.Parallel()
			vars := func(kv ...string) map[string]string {
				m := map[string]string{}
				for k, v := range tt.extraEnv {
					m[k] = v
				}
				for i := 0; i < len(kv); i += 2 {
					m[kv[i]] = kv[i+1]
				}
				return m
			}
			cases := []struct {
				name string
				args []string
				env  map[string]string
			}{
				{"flag", []string{"--" + tt.flag, tt.value}, vars()},
				{"flag=", []string{"-" + tt.flag + "=" + tt.value}, vars()},
				{"env", nil, vars(tt.env, tt.value)},
				{"flag beats env", []string{"--" + tt.flag, tt.value}, vars(tt.env, tt.other)},
			}
			for _, c := range cases {
				cfg, err := load(c.args, c.env)
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				if got := tt.get(cfg); !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("%s: got %#v, want %#v", c.name, got, tt.want)
				}
			}
		})
	}
}

func TestPublicURLDefaultsToAddr(t *testing.T) {
	t.Parallel()
	c, err := load([]string{"--addr", "10.1.2.3:8181"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.PublicURL != "http://10.1.2.3:8181" {
		t.Fatalf("PublicURL = %q", c.PublicURL)
	}
}

func TestBadSettingsNameTheVariable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		names []string // every variable the error must name
	}{
		{name: "retry not a duration", env: map[string]string{"HERALD_RETRY_SCHEDULE": "5s,banana"}, names: []string{"HERALD_RETRY_SCHEDULE", "banana"}},
		{name: "retry zero", args: []string{"--retry-schedule", "0s"}, names: []string{"HERALD_RETRY_SCHEDULE"}},
		{name: "retry negative", args: []string{"--retry-schedule", "5s,-1m"}, names: []string{"HERALD_RETRY_SCHEDULE"}},
		{name: "retry empty list", env: map[string]string{"HERALD_RETRY_SCHEDULE": " , ,"}, names: []string{"HERALD_RETRY_SCHEDULE"}},
		{name: "retry bare number", env: map[string]string{"HERALD_RETRY_SCHEDULE": "5"}, names: []string{"HERALD_RETRY_SCHEDULE"}},
		{name: "egress bad prefix", env: map[string]string{"HERALD_EGRESS_ALLOW": "10.0.0.0/33"}, names: []string{"HERALD_EGRESS_ALLOW"}},
		{name: "egress not an address", args: []string{"--egress-allow", "10.0.0.0/8,intranet"}, names: []string{"HERALD_EGRESS_ALLOW", "intranet"}},
		{name: "log level", env: map[string]string{"HERALD_LOG_LEVEL": "verbose"}, names: []string{"HERALD_LOG_LEVEL"}},
		{name: "log level case", args: []string{"--log-level", "INFO"}, names: []string{"HERALD_LOG_LEVEL"}},
		{name: "log format", env: map[string]string{"HERALD_LOG_FORMAT": "xml"}, names: []string{"HERALD_LOG_FORMAT"}},
		{name: "shutdown grace", env: map[string]string{"HERALD_SHUTDOWN_GRACE": "soon"}, names: []string{"HERALD_SHUTDOWN_GRACE"}},
		{name: "shutdown grace negative", args: []string{"--shutdown-grace", "-1s"}, names: []string{"HERALD_SHUTDOWN_GRACE"}},
		{name: "postgres without key (env)", env: map[string]string{"HERALD_DATABASE_URL": "postgres://u@h/db"}, names: []string{"HERALD_SECRET_KEY"}},
		{name: "postgresql without key (flag)", args: []string{"--database-url", "postgresql://u@h/db"}, names: []string{"HERALD_SECRET_KEY"}},
		{name: "several at once", env: map[string]string{"HERALD_LOG_LEVEL": "loud", "HERALD_RETRY_SCHEDULE": "x"},
			names: []string{"HERALD_LOG_LEVEL", "HERALD_RETRY_SCHEDULE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := load(tt.args, tt.env)
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			for _, n := range tt.names {
				if !strings.Contains(err.Error(), n) {
					t.Errorf("error %q does not name %s", err, n)
				}
			}
		})
	}
}

func TestPostgresWithKeyIsFine(t *testing.T) {
	t.Parallel()
	c, err := load(nil, map[string]string{"HERALD_DATABASE_URL": "postgres://u@h/db", "HERALD_SECRET_KEY": testKey})
	if err != nil {
		t.Fatal(err)
	}
	if !c.IsPostgres() {
		t.Fatal("IsPostgres is false for a postgres:// URL")
	}
	c, err = load([]string{"--database-url", "sqlite:///tmp/x.db"}, nil)
	if err != nil || c.IsPostgres() {
		t.Fatalf("a sqlite URL: %+v, %v", c, err)
	}
}

func TestCommandLineMistakes(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--no-such-flag"},
		{"--addr"},
		{"serve"}, // a stray positional argument
		{"--addr", "127.0.0.1:1", "extra"},
	} {
		if c, err := load(args, nil); err == nil {
			t.Errorf("Load(%q) = %+v, want an error", args, c)
		}
	}
	var out strings.Builder
	_, err := config.Load("herald serve", []string{"-h"}, env(nil), &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v, want flag.ErrHelp", err)
	}
	for _, v := range []string{"HERALD_ADDR", "HERALD_DATABASE_URL", "HERALD_DATA_DIR", "HERALD_SECRET_KEY", "HERALD_ADMIN_TOKEN",
		"HERALD_ADMIN_PASSWORD", "HERALD_PUBLIC_URL", "HERALD_RETRY_SCHEDULE", "HERALD_EGRESS_ALLOW"} {
		if !strings.Contains(out.String(), v) {
			t.Errorf("-h output does not mention %s", v)
		}
	}
}

func TestParseRetrySchedule(t *testing.T) {
	t.Parallel()
	got, err := config.ParseRetrySchedule(config.DefaultRetrySchedule)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 7 || got[0] != 5*time.Second || got[6] != 2*time.Hour {
		t.Fatalf("default schedule = %v", got)
	}
	for _, bad := range []string{"", "1x", "5s,,oops", "-5s"} {
		if _, err := config.ParseRetrySchedule(bad); err == nil {
			t.Errorf("ParseRetrySchedule(%q) accepted", bad)
		}
	}
}
