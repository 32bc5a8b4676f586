// Command herald is the Herald server and its tools.
//
//	herald serve     run the server (API, console, workers)
//	herald migrate   bring the database schema up to date and exit
//	herald version   print the version
//	herald task …    drive release tasks of a server (internal/cli)
//	herald plan …    drive release plans of a server (internal/cli)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/herald-release/herald/internal/app"
	"github.com/herald-release/herald/internal/buildinfo"
	"github.com/herald-release/herald/internal/cli"
	"github.com/herald-release/herald/internal/config"
	"github.com/herald-release/herald/internal/db"
)

const usage = `Herald: releases and the notifications about them.

Usage:
  herald serve [flags]     run the server
  herald migrate [flags]   migrate the database and exit
  herald version           print the version
  herald task <command>    create, follow, promote, cancel, retry release tasks of a server
  herald plan <command>    create, approve, execute, follow release plans of a server

Run "herald serve -h" for the settings; each is also an environment variable.
"herald task" and "herald plan" call the server at HERALD_URL with HERALD_TOKEN.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "herald", buildinfo.Version)
		return 0
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "migrate":
		return migrate(args[1:], stdout, stderr)
	case "task", "plan":
		return cli.Main(args, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "herald: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func loadConfig(name string, args []string, stderr io.Writer) (*config.Config, int) {
	cfg, err := config.Load("herald "+name, args, os.Getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil, 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "herald %s: %v\n", name, err)
		return nil, 2
	}
	return cfg, -1
}

func serve(args []string, stdout, stderr io.Writer) int {
	cfg, code := loadConfig("serve", args, stderr)
	if cfg == nil {
		return code
	}
	log := app.NewLogger(cfg, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	a, err := app.Open(ctx, cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "herald serve: %v\n", err)
		return 1
	}
	defer a.Close()
	if err := a.Serve(ctx, stdout); err != nil {
		fmt.Fprintf(stderr, "herald serve: %v\n", err)
		return 1
	}
	return 0
}

func migrate(args []string, stdout, stderr io.Writer) int {
	cfg, code := loadConfig("migrate", args, stderr)
	if cfg == nil {
		return code
	}
	ctx := context.Background()
	d, err := db.Open(ctx, cfg.DatabaseURL, cfg.DataDir)
	if err != nil {
		fmt.Fprintf(stderr, "herald migrate: %v\n", err)
		return 1
	}
	defer d.Close()
	applied, err := d.Migrate(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "herald migrate: %v\n", err)
		return 1
	}
	if len(applied) == 0 {
		fmt.Fprintf(stdout, "The %s database is up to date.\n", d.Dialect())
		return 0
	}
	for _, m := range applied {
		fmt.Fprintf(stdout, "applied %s\n", m)
	}
	return 0
}
