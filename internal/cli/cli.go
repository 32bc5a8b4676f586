// Package cli is Herald's pipeline client: `herald task …` and
// `herald plan …` drive release tasks (CONTRACT §5) and release plans
// (CONTRACT §7) of a Herald server from a shell or a CI job.
//
// The server is HERALD_URL (or --url), the caller HERALD_TOKEN (or
// --token); the token is sent as a bearer token and never printed.
// Results go to stdout as JSON (the server's objects, indented) or, with
// --output text, as one line per object; progress and errors go to stderr.
//
// Exit status:
//
//	0  done; for wait: the task or plan succeeded
//	1  the server refused the request (its §2 error is printed), or the
//	   task or plan ended failed, cancelled, denied or timed out
//	2  usage: unknown command, bad flag or argument, no HERALD_URL or
//	   HERALD_TOKEN, unreadable body file
//	3  wait gave up after --timeout; the task or plan goes on
//	4  Herald could not be reached or failed (network error, 5xx)
//	130 interrupted
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Exit statuses.
const (
	ExitOK          = 0
	ExitFailed      = 1
	ExitUsage       = 2
	ExitTimeout     = 3
	ExitUnreachable = 4
	ExitInterrupted = 130
)

// Env is what a command sees of its process.
type Env struct {
	Getenv func(string) string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// Main runs a `herald task|plan …` command line in this process: the
// environment, standard streams, and SIGINT/SIGTERM to stop a wait.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return Run(ctx, args, Env{Getenv: os.Getenv, Stdin: os.Stdin, Stdout: stdout, Stderr: stderr})
}

// Run runs one command line; args[0] is "task" or "plan". It returns the
// exit status.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	if env.Stdin == nil {
		env.Stdin = strings.NewReader("")
	}
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, taskUsage, "\n", planUsage)
		return ExitUsage
	}
	var cmds map[string]command
	var usage string
	switch args[0] {
	case "task":
		cmds, usage = taskCommands(), taskUsage
	case "plan":
		cmds, usage = planCommands(), planUsage
	default:
		fmt.Fprintf(env.Stderr, "herald: %q is not a pipeline command: use task or plan\n", args[0])
		return ExitUsage
	}
	if len(args) < 2 {
		fmt.Fprint(env.Stderr, usage)
		return ExitUsage
	}
	switch args[1] {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(env.Stdout, usage)
		return ExitOK
	}
	cmd, ok := cmds[args[1]]
	if !ok {
		fmt.Fprintf(env.Stderr, "herald %s: unknown command %q\n\n%s", args[0], args[1], usage)
		return ExitUsage
	}
	name := "herald " + args[0] + " " + args[1]
	inv := &invocation{name: name, env: env}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	inv.common(fs)
	run := cmd.setup(inv, fs)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "Usage: %s %s\n\n%s\n\nFlags:\n", name, cmd.args, cmd.help)
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args[2:])
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if err != nil {
		// The flag package has printed the problem and the usage.
		return ExitUsage
	}
	if len(pos) < cmd.minArgs || (cmd.maxArgs >= 0 && len(pos) > cmd.maxArgs) {
		fmt.Fprintf(env.Stderr, "%s: %s\nUsage: %s %s\n", name, argCountMessage(cmd, len(pos)), name, cmd.args)
		return ExitUsage
	}
	inv.args = pos
	return inv.finish(run(ctx))
}

// command is one subcommand: its synopsis, and setup, which declares its
// flags and returns the function that runs it once they are parsed.
type command struct {
	args             string
	help             string
	minArgs, maxArgs int // maxArgs -1: any number
	setup            func(inv *invocation, fs *flag.FlagSet) func(ctx context.Context) error
}

func argCountMessage(c command, n int) string {
	switch {
	case c.maxArgs == 0:
		return fmt.Sprintf("takes no arguments, got %d", n)
	case c.minArgs == c.maxArgs:
		return fmt.Sprintf("wants %d argument(s) (%s), got %d", c.minArgs, c.args, n)
	case n < c.minArgs:
		return fmt.Sprintf("wants at least %d argument(s) (%s), got %d", c.minArgs, c.args, n)
	default:
		return fmt.Sprintf("wants at most %d argument(s) (%s), got %d", c.maxArgs, c.args, n)
	}
}

// parseInterspersed parses flags that may come before, between or after
// the positional arguments, which it returns; "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// invocation is one command being run: its name, process environment,
// common flags and positional arguments.
type invocation struct {
	name   string
	env    Env
	args   []string
	url    string
	token  string
	output string
}

func (inv *invocation) common(fs *flag.FlagSet) {
	fs.StringVar(&inv.url, "url", "", "Herald's base URL, e.g. https://herald.example.com (default $HERALD_URL)")
	fs.StringVar(&inv.token, "token", "", "API token (default $HERALD_TOKEN; prefer the variable: flags show in process lists)")
	fs.StringVar(&inv.output, "output", "json", "result format: json or text (one line per object)")
	fs.StringVar(&inv.output, "o", "json", "shorthand for --output")
}

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// exitError ends a command with a status and, unless empty, a message.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// finish prints err and turns it into the exit status.
func (inv *invocation) finish(err error) int {
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintf(inv.env.Stderr, "%s: %s\n", inv.name, ee.msg)
		}
		return ee.code
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(inv.env.Stderr, "%s: %s\n", inv.name, ue.msg)
		return ExitUsage
	}
	var ae *APIError
	if errors.As(err, &ae) {
		fmt.Fprintf(inv.env.Stderr, "%s: %s\n", inv.name, ae.Describe())
		if ae.Status >= 500 {
			return ExitUnreachable
		}
		return ExitFailed
	}
	if errors.Is(err, context.Canceled) {
		fmt.Fprintf(inv.env.Stderr, "%s: interrupted\n", inv.name)
		return ExitInterrupted
	}
	var te *transportError
	if errors.As(err, &te) {
		fmt.Fprintf(inv.env.Stderr, "%s: %v\n", inv.name, err)
		return ExitUnreachable
	}
	fmt.Fprintf(inv.env.Stderr, "%s: %v\n", inv.name, err)
	return ExitFailed
}

// client checks the output format and the connection settings and makes
// the API client.
func (inv *invocation) client() (*Client, error) {
	switch inv.output {
	case "json", "text":
	default:
		return nil, usagef("--output must be json or text, not %q", inv.output)
	}
	u := inv.url
	if u == "" {
		u = inv.env.Getenv("HERALD_URL")
	}
	tok := inv.token
	if tok == "" {
		tok = inv.env.Getenv("HERALD_TOKEN")
	}
	tok = strings.TrimSpace(tok)
	switch {
	case strings.TrimSpace(u) == "":
		return nil, usagef("no server: set HERALD_URL (or --url) to Herald's address, e.g. https://herald.example.com")
	case tok == "":
		return nil, usagef("no token: set HERALD_TOKEN (or --token) to an API token (POST /api/v1/users/{id}/tokens, or the console's account page)")
	}
	return NewClient(u, tok)
}

const taskUsage = `Usage: herald task <command> [flags] [arguments]

Release tasks (CONTRACT §5) of the Herald at $HERALD_URL, as $HERALD_TOKEN.

Commands:
  create     start a task from flags and/or -f body.json (-f - for stdin); --wait to follow it
  get        show a task
  list       list tasks (--project, --env, --status)
  promote    promote a task paused for promotion
  cancel     cancel a task
  retry      run a failed task's failed and skipped hosts again
  wait       follow a task until it ends: exit 0 on success, 1 failed or cancelled, 3 on --timeout
  logs       print a host's output (every host's without --host)

Every command takes --url, --token and --output json|text. Run "herald task <command> -h" for its flags.
Exit status: 0 ok, 1 refused or failed, 2 usage, 3 timeout, 4 Herald unreachable or erroring.
`

const planUsage = `Usage: herald plan <command> [flags] [arguments]

Release plans (CONTRACT §7) of the Herald at $HERALD_URL, as $HERALD_TOKEN.

Commands:
  create            create a plan from flags and/or -f plan.json (-f - for stdin)
  get               show a plan
  list              list plans (--status, --manager)
  finish-planning   planning → finish_planning
  submit-approval   → wait_for_approval
  approve           approve a plan waiting for approval (--comment)
  deny              deny a plan waiting for approval (--comment)
  execute           execute the plan, or with a JOB argument run or complete that job (--remark)
  skip              skip a job
  retry             run a failed workflow job again
  replan            back to planning
  cancel            cancel the plan
  logs              the plan's operation record
  wait              follow a plan until it ends: exit 0 on success, 1 denied, timed out, cancelled or check failed

Jobs are named by id or by name. Every command takes --url, --token and --output json|text.
Run "herald plan <command> -h" for its flags.
Exit status: 0 ok, 1 refused or failed, 2 usage, 3 timeout, 4 Herald unreachable or erroring.
`
