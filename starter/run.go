package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"chorus/provider/board"
)

const usage = `Usage: starter <command> [flags]

The chorus operator CLI.

Commands:
  submit       add a task to the board and start its workflow
  list         list tasks on the board
  status       show one task: board state, workflow, result
  watch        follow task progress live
  cancel       cancel a task's workflow (kills its sandbox)
  peers        list the gossip peers a worker knows
  escalations  list coordination sessions escalated to humans
  election     show the admin election (status) or start one (trigger)
  audit        verify or query this node's audit log
  license      issue, revoke and inspect licenses (KACHING)
  license-server
               run a license authority

Common flags (every command):
  --temporal HOST:PORT   Temporal frontend (default 127.0.0.1:7233, env CHORUS_TEMPORAL)
  --namespace NAME       Temporal namespace (default "default")
  --board URL            task board API (default http://127.0.0.1:9090, env CHORUS_BOARD)
  --json                 machine-readable output

Run "starter <command> --help" for a command's flags.
`

// env is what every command gets.
type env struct {
	ctx      context.Context
	getenv   func(string) string
	stdout   io.Writer
	stderr   io.Writer
	temporal string
	ns       string
	boardURL string
	json     bool
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmds := map[string]func(*env, []string) error{
		"submit":      cmdSubmit,
		"list":        cmdList,
		"status":      cmdStatus,
		"watch":       cmdWatch,
		"cancel":      cmdCancel,
		"peers":       cmdPeers,
		"audit":       cmdAudit,
		"escalations": cmdEscalations,
		"election":    cmdElection,
		// Licensing (KACHING): license.go.
		"license":        cmdLicense,
		"license-server": cmdLicenseServer,
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "starter: unknown command %q (see starter --help)\n", args[0])
		return 2
	}
	e := &env{ctx: ctx, getenv: getenv, stdout: stdout, stderr: stderr}
	err := cmd(e, args[1:])
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintln(stderr, "starter:", ee.msg)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "starter:", oneLine(err))
	return 1
}

// flags returns a flag set with the common flags bound to e.
func (e *env) flags(name, args, help string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: starter %s %s\n\n%s\n\nFlags:\n", name, args, help)
		fs.PrintDefaults()
	}
	def := func(key, d string) string {
		if v := e.getenv(key); v != "" {
			return v
		}
		return d
	}
	fs.StringVar(&e.temporal, "temporal", def("CHORUS_TEMPORAL", "127.0.0.1:7233"), "Temporal frontend host:port (env CHORUS_TEMPORAL)")
	fs.StringVar(&e.ns, "namespace", "default", "Temporal namespace")
	fs.StringVar(&e.boardURL, "board", def("CHORUS_BOARD", "http://127.0.0.1:9090"), "task board API URL (env CHORUS_BOARD)")
	fs.BoolVar(&e.json, "json", false, "print JSON")
	return fs
}

func (e *env) getenvOr(key, def string) string {
	if v := e.getenv(key); v != "" {
		return v
	}
	return def
}

func (e *env) board() *board.Client {
	return board.NewClient(e.boardURL, &http.Client{Timeout: 30 * time.Second})
}

func (e *env) dial() (client.Client, error) {
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{
		HostPort:  e.temporal,
		Namespace: e.ns,
		Logger:    sdklog.NewStructuredLogger(discardLogger()),
	})
	if err != nil {
		return nil, fmt.Errorf("connect to temporal at %s: %v (is `worker --dev` running? see --temporal)", e.temporal, oneLine(err))
	}
	return c, nil
}

func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// parse parses flags that may come before or after the positional
// arguments (starter status KEY --json) and returns the positionals.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// oneLine keeps errors to one line for the terminal.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
