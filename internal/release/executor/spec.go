package executor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/herald-release/herald/internal/duration"
	"github.com/herald-release/herald/internal/release/executor/hostkeys"
	"github.com/herald-release/herald/internal/validate"
)

// Executor types of CONTRACT §4.
const (
	TypeLocal = "local"
	TypeSSH   = "ssh"
)

const (
	// DefaultTimeout applies when the spec gives none: long enough for a
	// real deploy, short enough that a hung script does not hold a task
	// (and its environment's lock) for ever.
	DefaultTimeout = 10 * time.Minute
	// MaxTimeout bounds a single host's run; longer is a mistake in units.
	MaxTimeout  = 24 * time.Hour
	DefaultPort = 22
)

// WithDefaults returns s with the defaults filled in: the timeout, and the
// port for ssh. Executors call it themselves; the API may call it to show
// the effective values.
func (s Spec) WithDefaults() Spec {
	if s.Timeout == 0 {
		s.Timeout = duration.Duration(DefaultTimeout)
	}
	if s.Type == TypeSSH && s.Port == 0 {
		s.Port = DefaultPort
	}
	return s
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// IsEnvName reports whether k can be exported by a POSIX shell. Executors
// check it again at run time because an unchecked name would be shell
// injection on the ssh command line.
func IsEnvName(k string) bool { return identRE.MatchString(k) }

// Validate checks s as it would be stored. Field names are relative to the
// executor object, so callers Merge them under "executor".
func Validate(s Spec) validate.Errors {
	var errs validate.Errors
	switch s.Type {
	case TypeLocal, TypeSSH:
	case "":
		errs.Add("type", "is required: local or ssh")
	default:
		errs.Add("type", "must be local or ssh, not %q", s.Type)
	}
	if strings.TrimSpace(s.Script) == "" {
		errs.Add("script", "is required")
	} else if strings.ContainsRune(s.Script, 0) {
		errs.Add("script", "must not contain NUL bytes")
	}
	switch {
	case s.Timeout < 0:
		errs.Add("timeout", "must not be negative")
	case s.Timeout.D() > MaxTimeout:
		errs.Add("timeout", "must be at most %s", MaxTimeout)
	}
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		field := "env." + k
		switch {
		case !IsEnvName(k):
			errs.Add(field, "is not a valid shell variable name (letters, digits and _, not starting with a digit)")
		case strings.HasPrefix(k, "HERALD_"):
			errs.Add(field, "HERALD_ variables are set by Herald for each run; choose another name")
		}
		if strings.ContainsRune(s.Env[k], 0) {
			errs.Add(field, "must not contain NUL bytes")
		}
	}
	if s.Type == TypeSSH {
		validateSSH(s, &errs)
	}
	return errs
}

func validateSSH(s Spec, errs *validate.Errors) {
	if strings.TrimSpace(s.User) == "" {
		errs.Add("user", "is required for ssh")
	} else if strings.ContainsAny(s.User, " \t\r\n@") {
		errs.Add("user", "must be a plain user name")
	}
	if s.Port < 0 || s.Port > 65535 {
		errs.Add("port", "must be between 1 and 65535 (0 or absent means 22)")
	}
	if strings.TrimSpace(s.PrivateKey) == "" {
		errs.Add("private_key", "is required for ssh")
	} else if err := CheckPrivateKey(s.PrivateKey); err != nil {
		errs.Add("private_key", "%v", err)
	}
	if s.KnownHosts != "" {
		if _, err := hostkeys.Parse(s.KnownHosts); err != nil {
			errs.Add("known_hosts", "%v", err)
		}
	}
}

// CheckPrivateKey parses key and explains a failure without quoting any of
// it: parse errors of some key formats carry fragments of the input.
func CheckPrivateKey(key string) error {
	_, err := ssh.ParsePrivateKey([]byte(key))
	if err == nil {
		return nil
	}
	var pp *ssh.PassphraseMissingError
	if errors.As(err, &pp) {
		return errors.New("is protected by a passphrase; Herald needs an unencrypted key (ssh-keygen -p -N '' -f KEY removes it from a copy)")
	}
	return errors.New("cannot be parsed: paste the whole private key, including the -----BEGIN … PRIVATE KEY----- and -----END … PRIVATE KEY----- lines")
}

// TimeoutError is returned, with ExitCode -1, when a run outlived its
// timeout. Its text is shown per host, so it says what to do.
type TimeoutError struct {
	After time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("timed out after %s: raise the executor timeout or speed up the script", e.After)
}

// Cancelled wraps the cause of a cancelled run (task cancelled, Herald
// shutting down) so that errors.Is(err, context.Canceled) still holds.
func Cancelled(ctx context.Context) error {
	return fmt.Errorf("cancelled before the script finished: %w", context.Cause(ctx))
}

// ByType dispatches to an executor by Spec.Type, so the engine holds one
// Executor for every environment.
type ByType map[string]Executor

// Run implements Executor.
func (b ByType) Run(ctx context.Context, spec Spec, run Run) (Result, error) {
	e, ok := b[spec.Type]
	if !ok {
		return Result{ExitCode: -1}, fmt.Errorf("executor type %q is not available", spec.Type)
	}
	return e.Run(ctx, spec, run)
}

// MergedEnv is what a script sees besides the base environment: spec.Env
// overlaid by run.Vars (Vars win, so a stored env cannot fake HERALD_*).
// Names are checked again here: Validate may have been bypassed by an old
// stored spec, and an unchecked name is shell injection over ssh.
func MergedEnv(spec Spec, run Run) (map[string]string, error) {
	env := make(map[string]string, len(spec.Env)+len(run.Vars))
	for _, m := range []map[string]string{spec.Env, run.Vars} {
		for k, v := range m {
			if !IsEnvName(k) {
				return nil, fmt.Errorf("variable name %q is not a valid shell identifier", k)
			}
			if strings.ContainsRune(v, 0) {
				return nil, fmt.Errorf("variable %s contains a NUL byte", k)
			}
			env[k] = v
		}
	}
	return env, nil
}
