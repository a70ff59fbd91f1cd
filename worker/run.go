package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"golang.org/x/sync/errgroup"

	"chorus"
	"chorus/activities"
	"chorus/ai"
	"chorus/audit"
	"chorus/budget"
	"chorus/config"
	"chorus/devserver"
	"chorus/election"
	"chorus/intake"
	"chorus/ops"
	"chorus/ops/temporalmetrics"
	"chorus/provider/board"
	"chorus/sandbox"
	"chorus/sandbox/docker"
	"chorus/shhh"
	"chorus/workflows"
)

var errHelp = errors.New("help requested")

// options are the command line.
type options struct {
	dev                  bool
	dataDir              string
	opsAddr              string
	opsAddrSet           bool
	dataDirSet           bool
	temporal             string
	namespace            string
	temporalPort         int
	uiPort               int
	bind                 string
	configPath           string
	agentID              string
	role                 string
	expertise            string
	maxTasks             int
	boardURL             string
	noAgent              bool
	image                string
	busybox              string
	taskTimeout          time.Duration
	warmPool             int
	p2pListen            string
	bootstrap            string
	mdns                 bool
	availabilityInterval time.Duration
	helpWindow           time.Duration
	dhtMode              string
	heartbeatTimeout     time.Duration
	queueTimeout         time.Duration
	sweepInterval        time.Duration
	electionProfile      string
	electionHeartbeat    time.Duration
	electionTimeout      time.Duration
	logLevel             string
	logFormat            string
	backbeat             backbeatOptions
	lic                  licenseOptions
	drainFailures        int
	drainTimeout         time.Duration
}

const usage = `Usage: worker [flags]

Runs one chorus agent node: a Temporal worker that claims tasks, executes them
in a Docker sandbox and reports completion, plus the ops HTTP server.

  worker --dev                          everything in one process: Temporal server
                                        (SQLite under --data-dir), Web UI, task board,
                                        license authority and a dev license for itself
  worker --temporal HOST:PORT --agent-id b --license ID
                                        join an existing cluster as another agent
                                        (starter license issue prints an ID)

No valid license, no start: a worker without --dev needs --license.

Flags:
`

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	fs.BoolVar(&o.dev, "dev", false, "run the embedded Temporal server, Web UI and task board in this process")
	fs.StringVar(&o.dataDir, "data-dir", envOr(getenv, "CHORUS_DATA_DIR", "./.chorus"), "directory for the SQLite files, workspaces, logs and the node's keys (env CHORUS_DATA_DIR); without --dev the default is ./.chorus/agents/<agent-id>, so workers on one machine never share one")
	fs.StringVar(&o.opsAddr, "ops-addr", "127.0.0.1:9090", "ops HTTP server address (health, task board API); when not given and busy, the next free port up to :9099 is used")
	fs.StringVar(&o.temporal, "temporal", envOr(getenv, "CHORUS_TEMPORAL", "127.0.0.1:7233"), "Temporal frontend host:port to join (ignored with --dev) (env CHORUS_TEMPORAL)")
	fs.StringVar(&o.namespace, "namespace", "default", "Temporal namespace")
	fs.IntVar(&o.temporalPort, "temporal-port", 7233, "with --dev: Temporal frontend port")
	fs.IntVar(&o.uiPort, "ui-port", 8233, "with --dev: Temporal Web UI port (-1 disables the UI)")
	fs.StringVar(&o.bind, "bind", "127.0.0.1", "with --dev: IP the Temporal server and UI listen on")
	fs.StringVar(&o.configPath, "config", envOr(getenv, "CHORUS_CONFIG", ""), "agent YAML file (env CHORUS_CONFIG)")
	fs.StringVar(&o.agentID, "agent-id", envOr(getenv, "CHORUS_AGENT_ID", ""), "agent id (overrides the config; default: the host name) (env CHORUS_AGENT_ID)")
	fs.StringVar(&o.role, "role", "", "agent role (overrides the config)")
	fs.StringVar(&o.expertise, "expertise", "", "agent expertise, comma separated (overrides the config)")
	fs.IntVar(&o.maxTasks, "max-tasks", 0, "tasks executed at once (overrides the config)")
	fs.StringVar(&o.boardURL, "board", envOr(getenv, "CHORUS_BOARD", ""), "task board URL to use instead of a local board (default: local with --dev, else http://127.0.0.1:9090) (env CHORUS_BOARD)")
	fs.BoolVar(&o.noAgent, "no-agent", false, "with --dev: run only the server, UI and board, no agent")
	fs.StringVar(&o.image, "sandbox-image", "", "sandbox image (overrides the config; built locally when it is the default and missing)")
	fs.StringVar(&o.busybox, "sandbox-busybox", "/bin/busybox", "static busybox used to build the default sandbox image")
	fs.IntVar(&o.warmPool, "warm-pool", -1, "sandbox containers kept started for fast starts (overrides the config; 0 = off); pooled containers carry no chorus.task label")
	fs.DurationVar(&o.taskTimeout, "task-timeout", 0, "execution timeout per task (overrides the config; default 10m)")
	fs.DurationVar(&o.heartbeatTimeout, "heartbeat-timeout", 30*time.Second, "time without a heartbeat after which an execution is retried")
	fs.DurationVar(&o.queueTimeout, "queue-timeout", 10*time.Minute, "time an execution may wait for this agent before the task is placed again")
	fs.DurationVar(&o.sweepInterval, "sweep-interval", 10*time.Second, "how often open board tasks without a workflow are started")
	fs.StringVar(&o.p2pListen, "p2p-listen", "", "gossip listen multiaddrs, comma separated (default: every interface, a free TCP and QUIC port)")
	fs.StringVar(&o.bootstrap, "bootstrap", envOr(getenv, "CHORUS_BOOTSTRAP", ""), "gossip bootstrap peers, comma-separated multiaddrs with /p2p/<id> (env CHORUS_BOOTSTRAP); a worker joining with --board also bootstraps from that worker")
	fs.BoolVar(&o.mdns, "mdns", true, "discover gossip peers on the LAN with mDNS")
	fs.StringVar(&o.dhtMode, "dht", "auto", "Kademlia DHT mode: auto, client, server or off (private to chorus, bootstrapped from --bootstrap)")
	fs.DurationVar(&o.availabilityInterval, "availability-interval", 30*time.Second, "how often the agent broadcasts its availability")
	fs.DurationVar(&o.helpWindow, "help-window", 30*time.Second, "how long a task of this agent collects help offers after asking its peers")
	fs.StringVar(&o.electionProfile, "election-profile", election.ProfileDefault, "admin election timing: default (heartbeat 5s, timeout 15s, stability 30s) or fast (1s, 3s, 10s)")
	fs.DurationVar(&o.electionHeartbeat, "election-heartbeat", 0, "admin heartbeat interval (0: the profile's, 5s by default)")
	fs.DurationVar(&o.electionTimeout, "election-timeout", 0, "time without an admin heartbeat before an election (0: the profile's, 15s by default; at least two heartbeats)")
	fs.IntVar(&o.drainFailures, "drain-failures", ops.DefaultFailureThreshold, "consecutive failed runs of a critical health check (temporal, worker) after which the worker drains and exits 1")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 20*time.Second, "on drain or stop, how long running executions may take to finish before they are cancelled (and retried elsewhere); below the 30 s a supervisor such as Kubernetes waits after SIGTERM")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "", "text or json (default: text on a terminal, else json)")
	addLicenseFlags(fs, &o.lic, getenv)
	o.backbeat.register(fs, getenv)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, errHelp
		}
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0))
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "ops-addr":
			o.opsAddrSet = true
		case "data-dir":
			o.dataDirSet = true
		case "backbeat-tempo":
			o.backbeat.tempoSet = true
		}
	})
	o.dataDirSet = o.dataDirSet || getenv("CHORUS_DATA_DIR") != ""
	if o.noAgent && !o.dev {
		return o, errors.New("--no-agent needs --dev")
	}
	if o.heartbeatTimeout <= 0 {
		return o, errors.New("--heartbeat-timeout must be positive")
	}
	if o.availabilityInterval <= 0 {
		return o, errors.New("--availability-interval must be positive")
	}
	if err := o.backbeat.resolve(o.dev); err != nil {
		return o, err
	}
	if _, err := electionConfig(o); err != nil {
		return o, err
	}
	if o.drainFailures < 1 {
		return o, errors.New("--drain-failures must be at least 1")
	}
	if o.drainTimeout < 0 {
		return o, errors.New("--drain-timeout must not be negative")
	}
	return o, nil
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

func newLogger(o options, stderr io.Writer, redactor *shhh.Redactor) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %q is not debug, info, warn or error", o.logLevel)
	}
	format := o.logFormat
	if format == "" {
		format = "json"
		if f, ok := stderr.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	hopts := &slog.HandlerOptions{Level: level}
	switch format {
	case "text":
		return slog.New(shhh.NewHandler(slog.NewTextHandler(stderr, hopts), redactor)), nil
	case "json":
		return slog.New(shhh.NewHandler(slog.NewJSONHandler(stderr, hopts), redactor)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is not text or json", format)
}

// run is the whole worker; main only adds signals and the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	o, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	// Every log line, audit entry and AI transcript passes SHHH first; the
	// config file may add rules, so the file is read before anything logs.
	cfg := config.Default()
	if o.configPath != "" {
		if cfg, err = config.Load(o.configPath); err != nil {
			return err
		}
	}
	// One registry for every metric of this worker, served on /metrics.
	reg := prometheus.NewRegistry()
	scfg := shhh.DefaultConfig()
	scfg.Metrics = reg
	for _, r := range cfg.Redaction.Rules {
		scfg.Rules = append(scfg.Rules, shhh.Rule{Name: r.Name, Pattern: r.Pattern, Severity: r.Severity, Tags: r.Tags})
	}
	redactor, err := shhh.New(scfg)
	if err != nil {
		return fmt.Errorf("config: redaction: %w", err)
	}
	logger, err := newLogger(o, stderr, redactor)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	agent, limits, err := agentFrom(cfg, o)
	if err != nil {
		return err
	}
	if !o.dev && !o.dataDirSet {
		o.dataDir = filepath.Join(o.dataDir, "agents", agent.ID)
	}
	if err := os.MkdirAll(o.dataDir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	dataDir, err := filepath.Abs(o.dataDir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if err := registerProcessMetrics(reg, dataDir); err != nil {
		return err
	}
	// One worker per data dir: its keys, audit log and ledgers are the
	// node's own.
	unlock, err := lockDataDir(dataDir)
	if err != nil {
		return err
	}
	defer unlock()
	// The license before anything that works (the AI provider, the mesh,
	// the Temporal workers): no valid license, no start (license.go).
	lic, err := startLicense(ctx, o, dataDir, agent.ID, getenv, reg, logger)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, lic.Close()) }()
	aiMetrics, err := ai.NewMetrics(reg)
	if err != nil {
		return err
	}
	rung, err := newAIRung(cfg, agent, getenv, aiMetrics)
	if err != nil {
		return err
	}
	agent.Models = rung.order
	// The node's audit log: task lifecycle and network events, redacted,
	// chained and signed.
	redactBytes := func(b []byte) []byte { out, _ := redactor.RedactBytes(b); return out }
	auditLog, err := openAudit(dataDir, agent.ID, redactBytes)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, auditLog.Close()) }()
	recorder := auditRecorder{auditLog}

	// The ops port first: a busy port is the most common start-up error
	// and must not leave a half-started server behind.
	ln, err := listenOps(o)
	if err != nil {
		return err
	}
	defer ln.Close()
	opsURL := "http://" + ln.Addr().String()

	health, drained, err := newHealth(o, logger, reg)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	health.Routes(mux)
	lic.serve(mux, opsURL, stdout)
	if err := health.Register(ops.Check{Name: "license", Critical: true, Interval: 5 * time.Second, Func: lic.check}); err != nil {
		return err
	}
	mux.Handle("GET /metrics", ops.MetricsHandler(reg, reg))

	temporalAddr := o.temporal
	if o.dev {
		dcfg := devserver.DefaultConfig()
		dcfg.DataDir = dataDir
		dcfg.Host = o.bind
		dcfg.FrontendPort = o.temporalPort
		dcfg.UIPort = o.uiPort
		dcfg.Namespace = o.namespace
		dcfg.Logger = logger.With("component", "temporal")
		logger.Info("starting embedded temporal server", "data_dir", dataDir, "port", o.temporalPort)
		srv, err := devserver.Start(ctx, dcfg)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, srv.Stop()) }()
		temporalAddr = srv.FrontendAddr()
		logger.Info("temporal server ready", "frontend", temporalAddr, "ui", srv.UIURL())
	}

	// The task board: local with --dev (served on the ops port), remote
	// otherwise. The admin's intake lists it under its term; the board this
	// worker serves refuses calls of a deposed admin's term (the fence
	// knows the newest term from the election).
	fence := &election.Fence{}
	var tracker activities.Tracker
	var intakeLister func(term uint64) intake.Lister
	var listTasks listFunc
	boardURL := o.boardURL
	if o.dev && boardURL == "" {
		b, err := board.Open(filepath.Join(dataDir, "board.db"))
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, b.Close()) }()
		mux.Handle("/api/", fence.Guard(b.Handler()))
		tracker, intakeLister, listTasks = b, localLister(b, fence), b.List
		if err := registerProviderCheck(health, b); err != nil {
			return err
		}
		boardURL = opsURL
	} else {
		if boardURL == "" {
			boardURL = "http://127.0.0.1:9090"
		}
		c := board.NewClient(boardURL, &http.Client{Timeout: 30 * time.Second})
		tracker, intakeLister, listTasks = c, remoteLister(boardURL, fence), c.List
		if err := registerProviderCheck(health, c); err != nil {
			return err
		}
	}
	// The issue trackers of providers:, routed by the key's provider.
	fg, err := newForges(cfg.Providers, getenv, func(s string) string { out, _ := redactor.Redact(s); return out }, logger)
	if err != nil {
		return err
	}
	if tracker, err = fg.router(tracker); err != nil {
		return err
	}

	g, gctx := errgroup.WithContext(ctx)
	// On a start-up error, stop what the group runs before returning.
	defer func() {
		cancel()
		if werr := g.Wait(); err == nil {
			err = werr
		}
	}()
	g.Go(func() error { return lic.gate.Run(gctx) })
	// The gossip mesh: peers, their broadcasts, and ours.
	running := newCountingRunner()
	var meshAgent *activities.AgentInfo
	if !o.noAgent {
		meshAgent = &agent
	}
	bootstrapFrom := ""
	if !o.dev || o.boardURL != "" {
		bootstrapFrom = boardURL
	}
	m, err := startMesh(ctx, o, dataDir, meshAgent, running, bootstrapFrom, redactBytes, recorder, reg, logger.With("component", "gossip"))
	if err != nil {
		return err
	}
	if err := registerMeshChecks(health, m.node); err != nil {
		return errors.Join(err, m.Close())
	}
	mux.HandleFunc("GET /api/v1/peers", m.servePeers)
	mux.HandleFunc("GET /api/v1/rooms/{issue}", m.serveRoom)
	// The admin election over the mesh; its duties (intake) need the
	// Temporal client, so it runs from further down.
	ecfg, err := electionConfig(o)
	if err != nil {
		return err
	}
	src := scoreSource{agent: !o.noAgent, expertise: len(agent.Expertise), capabilities: len(cfg.Agent.Capabilities), maxTasks: agent.MaxTasks, running: running}
	// The election's metrics need the worker's Prometheus registry, which
	// this worker does not build yet: nil registers none.
	el, err := newElector(ecfg, m, dataDir, src, fence, reg, logger.With("component", "election"))
	if err != nil {
		return errors.Join(err, m.Close())
	}
	if err := el.register(health, mux); err != nil {
		return errors.Join(err, m.Close())
	}
	// Not in the group: the broadcasts must stop before the node closes.
	meshDone := make(chan error, 1)
	go func() { meshDone <- m.Run(gctx) }()
	defer func() {
		cancel()
		err = errors.Join(err, <-meshDone, m.Close())
	}()
	// Meta-coordination on the same node (worker/coordination.go); it
	// stops before the node closes.
	coord, err := startCoordination(cfg.Coordination, agent.ID, el.leading, dataDir, m, listTasks, rung, recorder, reg, logger.With("component", "coordination"))
	if err != nil {
		return err
	}
	coord.routes(mux)
	coordDone := make(chan error, 1)
	go func() { coordDone <- coord.driver.Run(gctx) }()
	defer func() {
		cancel()
		err = errors.Join(err, <-coordDone)
	}()
	// BACKBEAT: the pulse (while this worker is the admin), this node's
	// beat clock, and the claims of the operations it drives. Its metrics
	// registerer is nil until the worker has a metrics registry.
	beat, err := startBackbeat(o, m.node, agent, el.leading, mux, health, reg, logger.With("component", "backbeat"))
	if err != nil {
		return err
	}
	// The operations this node takes part in, fed to BACKBEAT from the
	// mesh, the sandbox runs and the agent's activities (phases.go).
	phaseAgent := agent.ID
	if o.noAgent {
		phaseAgent = ""
	}
	phases := newOpPhases(phaseAgent, beat, logger.With("component", "backbeat"))
	m.phases.Store(phases)
	running.phases.Store(phases)
	phaseHooks := []interceptor.WorkerInterceptor{&phaseInterceptor{phases: phases}}
	// Not in the group either: it must stop before the mesh closes.
	beatDone := make(chan error, 1)
	go func() { beatDone <- beat.Run(gctx) }()
	defer func() {
		cancel()
		err = errors.Join(err, <-beatDone)
	}()
	g.Go(func() error { return ops.Serve(gctx, ln, mux, logger) })

	sdkMetrics, err := temporalmetrics.New(reg)
	if err != nil {
		return err
	}
	c, err := client.DialContext(ctx, client.Options{
		MetricsHandler: sdkMetrics,
		HostPort:       temporalAddr,
		Namespace:      o.namespace,
		Logger:         sdklog.NewStructuredLogger(logger.With("component", "sdk")),
	})
	if err != nil {
		return fmt.Errorf("connect to temporal at %s: %w", temporalAddr, err)
	}
	defer c.Close()
	deliver := func(ctx context.Context, key string, offer activities.HelpOffer) error {
		return c.SignalWorkflow(ctx, key, "", workflows.SignalHelpOffer, offer)
	}
	m.offer.Store(&deliver)
	if err := health.Register(ops.Check{Name: "temporal", Critical: true, Interval: 10 * time.Second, Func: func(ctx context.Context) error {
		_, err := c.CheckHealth(ctx, &client.CheckHealthRequest{})
		return err
	}}); err != nil {
		return err
	}

	// The issue trackers' intake (webhooks now, pollers while admin)
	// starts workflows as the admin of the current term.
	runForges, err := forgeIntake(mux, fg, el.startTask, logger)
	if err != nil {
		return err
	}
	el.forges = runForges
	// Every worker takes part in the election; only the admin runs intake
	// (OnStartLeading starts it, OnStopLeading stops it). Not in the group:
	// intake must stop before the Temporal client closes.
	el.temporal, el.lister, el.interval, el.score = c, intakeLister, o.sweepInterval, m.bestScore
	electionDone := make(chan error, 1)
	go func() { electionDone <- el.Run(gctx) }()
	defer func() {
		cancel()
		err = errors.Join(err, <-electionDone)
	}()

	var polling atomic.Bool
	if err := health.Register(ops.Check{Name: "worker", Critical: true, Interval: 5 * time.Second, Func: func(context.Context) error {
		if o.noAgent {
			return nil
		}
		if !polling.Load() {
			if err := lic.gate.Allowed(); err != nil {
				return fmt.Errorf("worker is not polling: %w", err)
			}
			return errors.New("worker is not polling yet")
		}
		return nil
	}}); err != nil {
		return err
	}

	if !o.noAgent {
		dcfg := docker.Config{AgentID: agent.ID, Logger: logger.With("component", "sandbox"), Metrics: reg}
		warm := cfg.Execution.WarmPool
		if o.warmPool >= 0 {
			warm = o.warmPool
		}
		if warm > 0 {
			dcfg.Pool = docker.PoolConfig{Size: warm, Dir: filepath.Join(dataDir, "pool"), Spec: limits}
		}
		runner, err := docker.New(dcfg)
		if err != nil {
			return err
		}
		// Close waits for the background removal of finished containers
		// and reports the ones that failed.
		defer func() { err = errors.Join(err, runner.Close()) }()
		if err := runner.Ping(ctx); err != nil {
			return fmt.Errorf("docker: %w", err)
		}
		if limits.Image == docker.DefaultImage {
			built, err := runner.EnsureImage(ctx, limits.Image, o.busybox, &logWriter{logger: logger, msg: "building sandbox image"})
			if err != nil {
				return err
			}
			if built {
				logger.Info("sandbox image built", "image", limits.Image)
			}
		}
		if n, err := runner.Reap(ctx); err != nil {
			logger.Warn("reaping orphan containers failed", "error", err)
		} else if n > 0 {
			logger.Info("reaped orphan containers", "count", n)
		}
		if err := health.Register(ops.Check{Name: "docker", Interval: 30 * time.Second, Func: runner.Ping}); err != nil {
			return err
		}
		if warm > 0 {
			// Not in the group: the pool must be drained (idle containers
			// removed) before the runner closes, and the deferred Close
			// runs before the group is waited for.
			warmDone := make(chan error, 1)
			go func() { warmDone <- runner.KeepWarm(gctx) }()
			defer func() {
				cancel()
				err = errors.Join(err, <-warmDone)
			}()
			logger.Info("keeping sandbox containers warm", "size", warm)
			if err := health.Register(ops.Check{Name: "warm_pool", Interval: 2 * time.Second, Timeout: time.Second, Func: func(ctx context.Context) error {
				if err := runner.WaitWarm(ctx, warm); err != nil {
					return fmt.Errorf("the warm pool is not full (%d wanted): %w", warm, err)
				}
				return nil
			}}); err != nil {
				return err
			}
		}

		am, err := activities.NewMetrics(reg)
		if err != nil {
			return err
		}
		running.Runner = runner
		daily, err := budget.OpenDaily(filepath.Join(dataDir, "budget", agent.ID+".json"), rung.daily, nil)
		if err != nil {
			return err
		}
		if err := budget.RegisterMetrics(reg, daily); err != nil {
			return err
		}
		collab := &activities.Collaborator{Publisher: m, Rooms: m, Escalations: escalator{coord: coord, audit: recorder, self: m.node.ID()}, Metrics: am}
		// The Temporal workers run only while the license allows work;
		// they are built anew each time it does again (license.go).
		startWorkers := func() (stop func(), err error) {
			shared := worker.New(c, workflows.TaskQueue, worker.Options{WorkerStopTimeout: o.drainTimeout})
			shared.RegisterWorkflowWithOptions(workflows.TaskWorkflow, workflow.RegisterOptions{Name: workflows.TaskWorkflowName})
			shared.RegisterActivity(&activities.Agent{Info: agent, Announce: m, Metrics: am})
			shared.RegisterActivity(&activities.Selector{Peers: m, Observe: phases.selected})
			shared.RegisterActivity(collab)
			shared.RegisterActivity(&activities.Provider{Tasks: tracker, Audit: recorder,
				Progress: m, Logger: logger.With("component", "provider"), Metrics: am})
			// The control queue: short activities for this agent (accepting
			// a claim, asking for help, posting to a task's room) that must
			// not wait behind executions for one of the max_tasks slots.
			ctl := worker.New(c, activities.AgentControlQueue(agent.ID), worker.Options{WorkerStopTimeout: o.drainTimeout, Interceptors: phaseHooks})
			ctl.RegisterActivity(&activities.Agent{Info: agent, Announce: m, Metrics: am})
			ctl.RegisterActivity(collab)
			own := worker.New(c, agent.TaskQueue, worker.Options{MaxConcurrentActivityExecutionSize: agent.MaxTasks, WorkerStopTimeout: o.drainTimeout, Interceptors: phaseHooks})
			own.RegisterActivity(&activities.Executor{Runner: running, DataDir: dataDir, Limits: limits, Unlabelled: warm > 0, Logger: logger.With("component", "executor"), Metrics: am})
			own.RegisterActivity(&activities.AI{Metrics: am, Models: rung.clients, Runner: running, DataDir: dataDir, Limits: limits,
				Budget: rung.task, Daily: daily, Repositories: rung.repos, Unlabelled: warm > 0, Logger: logger.With("component", "ai"),
				Redact: func(s string) string { out, _ := redactor.Redact(s); return out }})
			own.RegisterActivity(&activities.Mock{Metrics: am})
			// Histories recorded before the control queue ask for help here.
			own.RegisterActivity(collab)
			if err := shared.Start(); err != nil {
				return nil, fmt.Errorf("start worker: %w", err)
			}
			if err := own.Start(); err != nil {
				shared.Stop()
				return nil, fmt.Errorf("start agent worker: %w", err)
			}
			if err := ctl.Start(); err != nil {
				own.Stop()
				shared.Stop()
				return nil, fmt.Errorf("start agent control worker: %w", err)
			}
			return func() { ctl.Stop(); own.Stop(); shared.Stop() }, nil
		}
		workDone, err := lic.runWork(gctx, startWorkers, &polling, logger)
		if err != nil {
			return err
		}
		// Before the runner closes: the workers stop first.
		defer func() {
			cancel()
			<-workDone
		}()
	}
	// Checks are all registered; from here on they run on their intervals.
	g.Go(func() error { return health.Run(gctx) })
	logger.Info("chorus worker ready", "agent", agent.ID, "temporal", temporalAddr, "ops", opsURL, "board", boardURL, "dev", o.dev)
	fmt.Fprintf(stdout, "chorus worker %s ready: temporal %s, ops %s, board %s\n", agent.ID, temporalAddr, opsURL, boardURL)

	return waitOrDrain(gctx, health, drained, logger, o.drainTimeout)
}

// agentFrom combines the config file and the flags.
func agentFrom(cfg config.File, o options) (activities.AgentInfo, sandbox.Spec, error) {
	a := cfg.Agent
	if o.agentID != "" {
		a.ID = o.agentID
	}
	if a.ID == "" {
		h, err := os.Hostname()
		if err != nil {
			return activities.AgentInfo{}, sandbox.Spec{}, fmt.Errorf("agent id: no --agent-id and no host name: %w", err)
		}
		a.ID = h
	}
	if o.role != "" {
		a.Role = o.role
	}
	if o.expertise != "" {
		a.Expertise = splitList(o.expertise)
	}
	if o.maxTasks != 0 {
		a.MaxTasks = o.maxTasks
	}
	cfg.Agent = a
	e := cfg.Execution
	if o.image != "" {
		e.Image = o.image
	}
	if o.taskTimeout != 0 {
		e.Timeout = config.Duration(o.taskTimeout)
	}
	if o.warmPool >= 0 {
		e.WarmPool = o.warmPool
	}
	cfg.Execution = e
	if err := cfg.Validate(); err != nil {
		return activities.AgentInfo{}, sandbox.Spec{}, err
	}
	info := activities.AgentInfo{
		ID:               a.ID,
		Role:             a.Role,
		Expertise:        a.Expertise,
		MaxTasks:         a.MaxTasks,
		TaskQueue:        activities.AgentQueue(a.ID),
		ExecutionTimeout: time.Duration(e.Timeout),
		HeartbeatTimeout: o.heartbeatTimeout,
		QueueTimeout:     o.queueTimeout,
		AIWallTime:       time.Duration(e.Budget.TaskWall),
		HelpWindow:       o.helpWindow,
		MockEnabled:      e.Mock.Enabled,
		MockSucceeds:     e.Mock.Succeeds,
	}
	limits := sandbox.Spec{
		Image:       e.Image,
		Timeout:     time.Duration(e.Timeout),
		MemoryBytes: int64(e.Memory),
		NanoCPUs:    int64(e.CPUs * 1e9),
		PidsLimit:   e.Pids,
	}
	return info, limits, nil
}

// aiRung is the AI part of the fallback ladder, from the config.
type aiRung struct {
	order   []string
	clients map[string]activities.Chatter
	task    budget.Limits
	daily   budget.DailyLimits
	repos   map[string]string
}

// newAIRung builds a client per configured model; the agent's role picks
// the primary model, the others are alternates.
func newAIRung(cfg config.File, agent activities.AgentInfo, getenv func(string) string, metrics *ai.Metrics) (aiRung, error) {
	b := cfg.Execution.Budget
	r := aiRung{
		clients: map[string]activities.Chatter{},
		task:    budget.Limits{Tokens: b.TaskTokens, Steps: b.TaskSteps, Wall: time.Duration(b.TaskWall)},
		daily:   budget.DailyLimits{Tokens: b.DailyTokens, Calls: b.DailyCalls},
		repos:   map[string]string{},
	}
	for _, repo := range cfg.Execution.Repositories {
		r.repos[repo.Name] = repo.Path
	}
	var models []ai.Model
	for _, m := range cfg.Agent.Models {
		models = append(models, ai.Model{Metrics: metrics, Name: m.Name, Provider: m.Provider, Endpoint: m.Endpoint, APIKeyEnv: m.APIKeyEnv,
			APIKeyFile: m.APIKeyFile, Timeout: time.Duration(m.Timeout), Roles: m.Roles})
	}
	if len(models) == 0 {
		return r, nil
	}
	ordered, err := ai.Select(models, agent.Role, "")
	if err != nil {
		return r, err
	}
	hc := &http.Client{}
	for _, m := range ordered {
		c, err := ai.New(m, hc, getenv)
		if err != nil {
			return r, fmt.Errorf("model %s: %w", m.Name, err)
		}
		r.clients[m.Name] = c
		r.order = append(r.order, m.Name)
	}
	return r, nil
}

// lockDataDir takes an exclusive lock on <dir>/worker.lock, held until
// unlock (or the process's death: the kernel drops flock locks).
func lockDataDir(dir string) (unlock func(), err error) {
	path := filepath.Join(dir, "worker.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("data dir lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("data dir %s is in use by another worker; give this one its own --data-dir", dir)
	}
	return func() { f.Close() }, nil
}

// openAudit opens the node's audit log (<data>/audit), creating its key on
// first start; entries are redacted before they are hashed and signed.
func openAudit(dataDir, author string, redact func([]byte) []byte) (*audit.Log, error) {
	key, err := audit.LoadOrCreateKey(audit.KeyPath(dataDir))
	if err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	l, err := audit.OpenWithOptions(audit.LogPath(dataDir), key, author, audit.Options{Redact: redact})
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return l, nil
}

// auditRecorder adapts the audit log to activities.Auditor.
type auditRecorder struct{ log *audit.Log }

func (a auditRecorder) Record(ctx context.Context, typ string, data any) error {
	_, err := a.log.Append(ctx, typ, data)
	return err
}

// listenOps listens on the ops address; the default moves to the next free
// port so a second worker on one machine starts without flags.
func listenOps(o options) (net.Listener, error) {
	ln, err := ops.Listen(o.opsAddr)
	if err == nil || o.opsAddrSet {
		return ln, err
	}
	host, port, splitErr := net.SplitHostPort(o.opsAddr)
	if splitErr != nil {
		return nil, err
	}
	var p int
	fmt.Sscanf(port, "%d", &p)
	for i := 1; i < 10; i++ {
		if ln, err2 := ops.Listen(net.JoinHostPort(host, fmt.Sprint(p+i))); err2 == nil {
			return ln, nil
		}
	}
	return nil, err
}

// openLister adapts a board's List to intake.Lister.
type openLister struct {
	list func(context.Context, board.Filter) ([]chorus.Task, error)
}

func (l openLister) ListOpen(ctx context.Context, limit int) ([]chorus.Task, error) {
	return l.list(ctx, board.Filter{States: []chorus.TaskState{chorus.StateOpen}, Limit: limit})
}

// logWriter turns progress lines into log records.
type logWriter struct {
	logger *slog.Logger
	msg    string
}

func (w *logWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimSpace(string(p)), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			w.logger.Info(w.msg, "progress", line)
		}
	}
	return len(p), nil
}
