package cli

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// listFlag is a repeatable flag whose values may also be comma-separated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// durationFlag is a Go duration kept as the user wrote it, checked.
type durationFlag struct {
	s string
	d time.Duration
}

func (f *durationFlag) String() string { return f.s }

func (f *durationFlag) Set(v string) error {
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		return fmt.Errorf("must be a duration such as 30s, 10m or 1h30m")
	}
	if d < 0 {
		return fmt.Errorf("must not be negative")
	}
	f.s, f.d = strings.TrimSpace(v), d
	return nil
}

// setFlags returns the names of the flags given on the command line.
func setFlags(fs *flag.FlagSet) map[string]bool {
	m := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { m[f.Name] = true })
	return m
}

// readBody reads the JSON object of -f: a file, or stdin for "-".
func (inv *invocation) readBody(path string) (map[string]any, error) {
	if path == "" {
		return map[string]any{}, nil
	}
	var (
		raw  []byte
		err  error
		name = path
	)
	if path == "-" {
		name = "stdin"
		raw, err = io.ReadAll(io.LimitReader(inv.env.Stdin, 1<<20+1))
	} else {
		raw, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, usagef("-f: cannot read %s: %v", name, err)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, usagef("-f: %s is empty: it must hold a JSON object", name)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var body map[string]any
	if err := dec.Decode(&body); err != nil {
		return nil, usagef("-f: %s is not a JSON object: %v", name, err)
	}
	if body == nil {
		return nil, usagef("-f: %s must hold a JSON object, not null", name)
	}
	if dec.More() {
		return nil, usagef("-f: %s holds more than one JSON value", name)
	}
	return body, nil
}

// countOrPercent reads "3" as a count and "25%" as a percent.
func countOrPercent(flagName, v string) (n int, percent bool, err error) {
	s := strings.TrimSpace(v)
	if p, ok := strings.CutSuffix(s, "%"); ok {
		percent, s = true, strings.TrimSpace(p)
	}
	n, err = strconv.Atoi(s)
	if err != nil || n < 1 || (percent && n > 100) {
		return 0, false, usagef("--%s must be a host count such as 2 or a percent such as 25%%, not %q", flagName, v)
	}
	return n, percent, nil
}

// parseWhen reads a time for a plan: RFC 3339, "now", or an offset from
// now such as "+2h", "-30m" or "now+1h". It returns RFC 3339 in UTC.
func parseWhen(flagName, v string, now time.Time) (string, error) {
	s := strings.TrimSpace(v)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC().Format(time.RFC3339), nil
	}
	rest, isNow := strings.CutPrefix(s, "now")
	if isNow && rest == "" {
		return now.UTC().Format(time.RFC3339), nil
	}
	if strings.HasPrefix(rest, "+") || strings.HasPrefix(rest, "-") {
		if d, err := time.ParseDuration(rest); err == nil {
			return now.Add(d).UTC().Format(time.RFC3339), nil
		}
	}
	return "", usagef("--%s must be an RFC 3339 time (2026-01-06T20:00:00Z), now, or an offset such as +2h or now-30m; not %q", flagName, v)
}
