package devserver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/membership/static"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
)

const (
	dbFileName        = "temporal.db"
	clusterIDFileName = "cluster_id"
	// clusterName is the name of the only cluster, as `temporal server
	// start-dev` names it; namespaces record it as their active cluster.
	clusterName = "active"
	// storeName is the one data store used for history and visibility.
	storeName = "sqlite-default"
	// readyTimeout bounds the wait for the frontend and UI to accept
	// connections after the services reported that they started.
	readyTimeout = 30 * time.Second
	// internalHost is where the history, matching and worker services listen.
	internalHost = "127.0.0.1"
	// levelSilent is above every level the server logs at; Stop sets it.
	levelSilent = slog.LevelError + 4
)

// Server is a running Temporal server. Create it with [Start] and end it with
// [Server.Stop].
type Server struct {
	frontendAddr string
	uiURL        string
	level        *slog.LevelVar // of the server logger; Stop raises it
	temporal     temporal.Server
	stopUI       func() error // nil when the UI is not running

	stopOnce sync.Once
	stopErr  error
}

// Start starts the server described by cfg and returns once the frontend (and
// the UI, if enabled) accepts TCP connections. ctx bounds that wait; the
// services' own start-up is bounded by the Temporal server (15 s).
//
// Before anything is started, Start checks that the frontend and UI ports are
// free and returns an error naming the busy port otherwise.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := checkPortFree("frontend", cfg.Host, cfg.FrontendPort); err != nil {
		return nil, err
	}
	if uiBuiltIn && cfg.UIPort != UIDisabled {
		if err := checkPortFree("ui", cfg.Host, cfg.UIPort); err != nil {
			return nil, err
		}
	}
	return launch(ctx, cfg)
}

// launch does the work of Start after the checks.
func launch(ctx context.Context, cfg Config) (*Server, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("devserver: %w", err)
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("devserver: data dir %s: %w", cfg.DataDir, err)
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("devserver: create data dir: %w", err)
	}
	clusterID, err := loadClusterID(dataDir)
	if err != nil {
		return nil, err
	}
	sqlCfg := sqliteConfig(filepath.Join(dataDir, dbFileName))
	if err := prepareDatabase(sqlCfg, cfg.namespaces()); err != nil {
		return nil, err
	}
	internalPorts, err := freePorts(internalHost, 3)
	if err != nil {
		return nil, err
	}

	ports := map[primitives.ServiceName]int{
		primitives.FrontendService: cfg.FrontendPort,
		primitives.HistoryService:  internalPorts[0],
		primitives.MatchingService: internalPorts[1],
		primitives.WorkerService:   internalPorts[2],
	}
	frontendAddr := net.JoinHostPort(cfg.dialHost(), strconv.Itoa(cfg.FrontendPort))
	hosts := make(map[primitives.ServiceName]static.Hosts, len(ports))
	for svc, port := range ports {
		addr := net.JoinHostPort(internalHost, strconv.Itoa(port))
		if svc == primitives.FrontendService {
			addr = frontendAddr
		}
		hosts[svc] = static.SingleLocalHost(addr)
	}
	level := new(slog.LevelVar)
	level.Set(slog.LevelWarn)

	srv, err := newTemporal(
		temporal.WithConfig(serverConfig(cfg, sqlCfg, clusterID, ports)),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(hosts),
		temporal.WithLogger(newServerLogger(cfg.Logger, level)),
		temporal.WithDynamicConfigClient(dynamicConfig()),
	)
	if err != nil {
		return nil, fmt.Errorf("devserver: create temporal server: %w", err)
	}
	if err := startTemporal(srv); err != nil {
		level.Set(levelSilent)
		return nil, errors.Join(fmt.Errorf("devserver: start temporal server: %w", err), stopTemporal(srv))
	}
	s := &Server{frontendAddr: frontendAddr, level: level, temporal: srv}

	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if err := waitAccepting(ctx, frontendAddr); err != nil {
		return nil, errors.Join(fmt.Errorf("devserver: wait for frontend %s: %w", frontendAddr, err), s.Stop())
	}
	s.uiURL, s.stopUI, err = startUI(ctx, cfg, frontendAddr)
	if err != nil {
		return nil, errors.Join(err, s.Stop())
	}
	cfg.Logger.Info("temporal server started",
		slog.String("frontend", frontendAddr), slog.String("ui", s.uiURL), slog.String("data_dir", dataDir))
	return s, nil
}

// FrontendAddr returns the host:port SDK clients dial. When Host is a
// wildcard address it names the loopback address instead.
func (s *Server) FrontendAddr() string { return s.frontendAddr }

// UIURL returns the Web UI's base URL, "http://host:port", or "" when the UI
// is disabled or not built in.
func (s *Server) UIURL() string { return s.uiURL }

// Stop stops the UI and the server and waits for them (about a second).
//
// It silences the server logger first: while the services shut each other
// down they log warnings and errors ("context canceled", "Frontend is not
// healthy yet") that report nothing wrong. Raising the level to error alone,
// as `temporal server start-dev` does, still let up to ten such error records
// through per stop in tests.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		s.level.Set(levelSilent)
		var errs []error
		if s.stopUI != nil {
			errs = append(errs, s.stopUI())
		}
		errs = append(errs, stopTemporal(s.temporal))
		s.stopErr = errors.Join(errs...)
	})
	return s.stopErr
}

// checkPortFree binds host:port and releases it again, because a failed bind
// inside the Temporal or UI server ends the process.
func checkPortFree(name, host string, port int) error {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("devserver: %s port %d on %s is in use: %w", name, port, host, err)
	case err != nil:
		return fmt.Errorf("devserver: %s port %d on %s cannot be bound: %w", name, port, host, err)
	}
	if err := ln.Close(); err != nil {
		return fmt.Errorf("devserver: release %s port %d: %w", name, port, err)
	}
	return nil
}

// freePorts returns n distinct ports that were free on host a moment ago.
// All n listeners are open at once so that the kernel hands out distinct ports.
func freePorts(host string, n int) ([]int, error) {
	var (
		lns  []net.Listener
		errs []error
	)
	for range n {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			errs = append(errs, fmt.Errorf("devserver: pick a free port on %s: %w", host, err))
			break
		}
		lns = append(lns, ln)
	}
	ports := make([]int, 0, n)
	for _, ln := range lns {
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
		if err := ln.Close(); err != nil {
			errs = append(errs, fmt.Errorf("devserver: release port: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return ports, nil
}

// loadClusterID reads the cluster ID from the data dir, creating it on first
// use. The server stores it in the database too; keeping it here means the
// configuration given on restart matches what was persisted.
func loadClusterID(dataDir string) (string, error) {
	path := filepath.Join(dataDir, clusterIDFileName)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		id := strings.TrimSpace(string(b))
		if uuid.Validate(id) != nil {
			return "", fmt.Errorf("devserver: cluster id in %s: %q is not a UUID", path, id)
		}
		return id, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("devserver: read cluster id: %w", err)
	}
	id := uuid.NewString()
	if err := writeFileAtomic(path, []byte(id+"\n")); err != nil {
		return "", fmt.Errorf("devserver: write cluster id: %w", err)
	}
	return id, nil
}

// writeFileAtomic writes data to a temporary file in path's directory and
// renames it to path, so readers never see a partial file.
func writeFileAtomic(path string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, os.Remove(f.Name()))
		}
	}()
	if _, err := f.Write(data); err != nil {
		return errors.Join(err, f.Close())
	}
	if err := f.Sync(); err != nil {
		return errors.Join(err, f.Close())
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// sqliteConfig describes the SQLite file at path.
func sqliteConfig(path string) *config.SQL {
	return &config.SQL{
		PluginName:   sqliteplugin.PluginName,
		DatabaseName: path,
		ConnectAttributes: map[string]string{
			// Read-write, create when missing.
			"mode": "rwc",
			// WAL with synchronous=normal: about 2.5x the throughput of the
			// default rollback journal; a power loss may drop the last
			// commits but does not corrupt the file.
			"journal_mode": "wal",
			"synchronous":  "normal",
		},
		// More than one connection per pool produced SQLITE_BUSY errors.
		MaxConns: 1,
	}
}

// prepareDatabase creates the schema when the file does not exist yet and the
// namespaces when they do not exist yet.
func prepareDatabase(sqlCfg *config.SQL, namespaces []string) error {
	path := sqlCfg.DatabaseName
	_, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := sqliteschema.SetupSchema(sqlCfg); err != nil {
			// Leave no half-built file behind, or the next start would skip
			// the schema.
			return errors.Join(fmt.Errorf("devserver: create schema in %s: %w", path, err), removeDatabase(path))
		}
	case err != nil:
		return fmt.Errorf("devserver: database %s: %w", path, err)
	}

	nss := make([]*sqliteschema.NamespaceConfig, 0, len(namespaces))
	for _, name := range namespaces {
		ns, err := sqliteschema.NewNamespaceConfig(clusterName, name, false, nil)
		if err != nil {
			return fmt.Errorf("devserver: namespace %s: %w", name, err)
		}
		nss = append(nss, ns)
	}
	if err := sqliteschema.CreateNamespaces(sqlCfg, nss...); err != nil {
		return fmt.Errorf("devserver: create namespaces in %s: %w", path, err)
	}
	return nil
}

// removeDatabase removes the SQLite file and its WAL and shared-memory files.
func removeDatabase(path string) error {
	var errs []error
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// serverConfig is the static configuration of the four services.
func serverConfig(cfg Config, sqlCfg *config.SQL, clusterID string, ports map[primitives.ServiceName]int) *config.Config {
	services := make(map[string]config.Service, len(ports))
	for svc, port := range ports {
		bind := internalHost
		if svc == primitives.FrontendService {
			bind = cfg.Host
		}
		services[string(svc)] = config.Service{RPC: config.RPC{GRPCPort: port, BindOnIP: bind}}
	}
	frontendAddr := net.JoinHostPort(cfg.dialHost(), strconv.Itoa(cfg.FrontendPort))
	return &config.Config{
		Global: config.Global{
			Membership: config.Membership{
				// Static hosts: there is no ring to join.
				MaxJoinDuration:  30 * time.Second,
				BroadcastAddress: internalHost,
			},
		},
		Persistence: config.Persistence{
			DefaultStore:    storeName,
			VisibilityStore: storeName,
			// One shard: a single SQLite writer gains nothing from more, and
			// the shard count can never change once the file exists.
			NumHistoryShards: 1,
			DataStores:       map[string]config.DataStore{storeName: {SQL: sqlCfg}},
		},
		ClusterMetadata: &cluster.Config{
			EnableGlobalNamespace:    false,
			FailoverVersionIncrement: 10,
			MasterClusterName:        clusterName,
			CurrentClusterName:       clusterName,
			ClusterInformation: map[string]cluster.ClusterInformation{
				clusterName: {
					Enabled:                true,
					InitialFailoverVersion: 1,
					RPCAddress:             frontendAddr,
					ClusterID:              clusterID,
				},
			},
		},
		DCRedirectionPolicy: config.DCRedirectionPolicy{Policy: "noop"},
		Services:            services,
		Archival: config.Archival{
			History:    config.HistoryArchival{State: config.ArchivalDisabled},
			Visibility: config.VisibilityArchival{State: config.ArchivalDisabled},
		},
		NamespaceDefaults: config.NamespaceDefaults{
			Archival: config.ArchivalNamespaceDefaults{
				History:    config.HistoryArchivalNamespaceDefaults{State: config.ArchivalDisabled},
				Visibility: config.VisibilityArchivalNamespaceDefaults{State: config.ArchivalDisabled},
			},
		},
		PublicClient: config.PublicClient{HostPort: frontendAddr},
	}
}

// dynamicConfig is the server tuning; the measurements behind it are in the
// project's notes on embedding Temporal.
func dynamicConfig() dynamicconfig.StaticClient {
	return dynamicconfig.StaticClient{
		// Default 20 per shard: with one shard every workflow task waits ~45 ms
		// for the transfer queue, a ~200 ms floor for a 3-activity workflow.
		dynamicconfig.TransferProcessorMaxPollRPS.Key(): 1000,
		// Default 20 s: with fast dispatch a missed history notification
		// stalls a client's GetWorkflowExecutionHistory long poll for the
		// whole interval; 1 s bounds that stall.
		dynamicconfig.HistoryLongPollExpirationInterval.Key(): time.Second,
		// Default 10: the UI issues several list/count calls per page.
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 100,
		// New search attributes are visible at once instead of after the
		// cache refresh interval.
		dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): true,
		// Defaults 2000 and 9000 are sized for a shared database cluster;
		// the local file is limited by SQLite itself, not by these.
		dynamicconfig.FrontendPersistenceMaxQPS.Key(): 10000,
		dynamicconfig.HistoryPersistenceMaxQPS.Key():  45000,
		// Default 128000 cached executions; a dev server needs far fewer, and
		// each costs memory. (Key history.hostLevelCacheMaxSize in v1.32.)
		dynamicconfig.HistoryCacheHostLevelMaxSize.Key(): 8096,
	}
}

// newTemporal builds the server, turning a Fatal or Panic log call during
// construction into an error.
func newTemporal(opts ...temporal.ServerOption) (srv temporal.Server, err error) {
	defer recoverInto(&err)
	return temporal.NewServer(opts...)
}

func startTemporal(srv temporal.Server) (err error) {
	defer recoverInto(&err)
	return srv.Start()
}

func stopTemporal(srv temporal.Server) (err error) {
	defer recoverInto(&err)
	if err := srv.Stop(); err != nil {
		return fmt.Errorf("devserver: stop temporal server: %w", err)
	}
	return nil
}

// recoverInto stores a recovered panic in *err. It must be deferred directly.
func recoverInto(err *error) {
	r := recover()
	if r == nil {
		return
	}
	if e, ok := r.(error); ok {
		*err = e
		return
	}
	*err = fmt.Errorf("panic: %v", r)
}

// waitAccepting dials addr until a TCP connection succeeds or ctx ends.
func waitAccepting(ctx context.Context, addr string) error {
	var d net.Dialer
	for {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return conn.Close()
		}
		t := time.NewTimer(10 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (last dial error: %v)", context.Cause(ctx), err)
		case <-t.C:
		}
	}
}
