package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"chorus/licensing"
)

// licenseOptions are the licensing flags.
type licenseOptions struct {
	server    string // --license-server; empty: derived (see licenseServerURL)
	license   string // --license: an id or a file holding one
	clusterID string // --cluster-id
}

// defaultClusterID is the cluster a worker is in without --cluster-id, and
// the one a dev worker's own license is bound to.
const defaultClusterID = "dev"

// licensePath is the authority's mount point on a dev worker's ops port.
const licensePath = "/license"

func addLicenseFlags(fs *flag.FlagSet, o *licenseOptions, getenv func(string) string) {
	fs.StringVar(&o.server, "license-server", envOr(getenv, "CHORUS_LICENSE_SERVER", ""), "license authority URL (env CHORUS_LICENSE_SERVER; default: with --dev the embedded one, else <board URL>"+licensePath+")")
	fs.StringVar(&o.license, "license", envOr(getenv, "CHORUS_LICENSE", ""), "license id, or a file holding it or the JSON of `starter license issue --json` (env CHORUS_LICENSE); required without --dev")
	fs.StringVar(&o.clusterID, "cluster-id", envOr(getenv, "CHORUS_CLUSTER_ID", defaultClusterID), "cluster this worker belongs to; its license must be bound to it (env CHORUS_CLUSTER_ID)")
}

// licensed is this worker's license: the gate, and with --dev the embedded
// authority that provisioned it.
type licensed struct {
	gate      *licensing.Gate
	authority *licensing.Authority // --dev only
	licenseID string
	clusterID string
	dev       bool // a provisioned dev license
}

// startLicense validates the worker's license before anything else that
// does work starts (fail closed). With --dev and no --license it embeds an
// authority under <data-dir>/license and provisions a dev license for this
// worker. A worker whose license is valid but whose seats are all taken
// starts without taking work (the gate keeps asking for a seat); every
// other refusal is an error.
func startLicense(ctx context.Context, o options, dataDir, agentID string, getenv func(string) string, reg prometheus.Registerer, logger *slog.Logger) (_ *licensed, err error) {
	lo := o.lic
	if err := licensing.CheckClusterID(lo.clusterID); err != nil {
		return nil, fmt.Errorf("--cluster-id: %v", err)
	}
	if !o.dev && lo.license == "" {
		return nil, fmt.Errorf("no license: pass --license ID (or a file holding it); an operator issues one with `starter license issue --cluster %s --license-server %s`, or run worker --dev for a local dev license",
			lo.clusterID, licenseServerURL(o))
	}
	dir := filepath.Join(dataDir, "license")
	nodeID, err := licenseNodeID(dir, agentID)
	if err != nil {
		return nil, err
	}
	l := &licensed{clusterID: lo.clusterID}
	defer func() {
		if err != nil {
			err = errors.Join(err, l.Close())
		}
	}()
	var leaser licensing.Leaser
	cfg := licensing.DefaultConfig()
	if o.dev {
		if l.authority, err = openDevAuthority(dir, getenv, reg, logger); err != nil {
			return nil, err
		}
		leaser, cfg.PublicKey = l.authority, l.authority.PublicKey()
	}
	if lo.license == "" {
		lic, created, err := l.authority.EnsureDevLicense(ctx, lo.clusterID)
		if err != nil {
			return nil, err
		}
		l.licenseID, l.dev = lic.ID, true
		logger.Warn("using a dev license provisioned by this worker for itself; not for production",
			"license", lic.ID, "tier", lic.Tier, "nodes", lic.Nodes, "cluster", lic.ClusterID, "expires", lic.ExpiresAt, "new", created)
	} else {
		if l.licenseID, err = readLicenseID(lo.license); err != nil {
			return nil, err
		}
		if !o.dev || lo.server != "" {
			url := licenseServerURL(o)
			c, err := licensing.NewClient(url, &http.Client{}, "")
			if err != nil {
				return nil, fmt.Errorf("--license-server: %v", err)
			}
			leaser, cfg.PublicKey = c, nil
		}
	}
	cfg.Authority = leaser
	cfg.LicenseID, cfg.ClusterID, cfg.NodeID = l.licenseID, lo.clusterID, nodeID
	cfg.StatePath = filepath.Join(dir, "gate.json")
	cfg.Logger = logger.With("component", "license")
	cfg.Metrics = reg
	if l.gate, err = licensing.NewGate(cfg); err != nil {
		return nil, err
	}
	err = l.gate.Validate(ctx)
	switch {
	case errors.Is(err, licensing.ErrSeatsExhausted):
		logger.Warn("license has no free seat: this worker takes no work until one frees", "license", l.licenseID, "node", nodeID, "reason", err)
	case err != nil:
		return nil, fmt.Errorf("license: %w", err)
	default:
		st := l.gate.Status()
		logger.Info("license valid", "license", l.licenseID, "tier", st.Tier, "cluster", lo.clusterID, "node", nodeID, "seat", st.Seat, "grace", st.Grace)
	}
	return l, nil
}

// openDevAuthority opens the dev worker's own authority; its admin token
// is env CHORUS_LICENSE_ADMIN_TOKEN or <dir>/admin.token (created).
func openDevAuthority(dir string, getenv func(string) string, reg prometheus.Registerer, logger *slog.Logger) (*licensing.Authority, error) {
	token := strings.TrimSpace(getenv("CHORUS_LICENSE_ADMIN_TOKEN"))
	if token == "" {
		var err error
		if token, err = licensing.LoadOrCreateAdminToken(filepath.Join(dir, licensing.AdminTokenFile)); err != nil {
			return nil, fmt.Errorf("license authority: %w", err)
		}
	}
	acfg := licensing.DefaultAuthorityConfig()
	acfg.DataDir, acfg.AdminToken, acfg.Metrics = dir, token, reg
	acfg.Logger = logger.With("component", "license-authority")
	return licensing.NewAuthority(acfg)
}

// serve mounts the dev authority on the ops mux and tells the operator how
// to license more workers.
func (l *licensed) serve(mux *http.ServeMux, opsURL string, stdout io.Writer) {
	if l.authority == nil {
		return
	}
	mux.Handle(licensePath+"/", http.StripPrefix(licensePath, l.authority.Handler()))
	if l.dev {
		fmt.Fprintf(stdout, "dev license %s (tier dev, 1 seat, cluster %s) provisioned for this worker; not for production\n", l.licenseID, l.clusterID)
	}
	fmt.Fprintf(stdout, "license authority at %s%s; license another worker with: starter license issue --cluster %s --license-server %s%s\n",
		opsURL, licensePath, l.clusterID, opsURL, licensePath)
}

// Close closes the embedded authority, if any.
func (l *licensed) Close() error {
	if l.authority == nil {
		return nil
	}
	return l.authority.Close()
}

// licenseServerURL is --license-server or, without it, the authority
// beside the board this worker uses.
func licenseServerURL(o options) string {
	if o.lic.server != "" {
		return o.lic.server
	}
	board := o.boardURL
	if board == "" {
		board = "http://127.0.0.1:9090"
	}
	return strings.TrimRight(board, "/") + licensePath
}

// readLicenseID takes --license: an id, or a file holding one (a line, or
// the JSON of `starter license issue --json`).
func readLicenseID(v string) (string, error) {
	v = strings.TrimSpace(v)
	if licensing.CheckLicenseID(v) == nil {
		return v, nil
	}
	b, err := os.ReadFile(v)
	if err != nil {
		if strings.HasPrefix(v, "lic-") {
			return "", fmt.Errorf("--license: %v", licensing.CheckLicenseID(v))
		}
		return "", fmt.Errorf("--license: %q is neither a license id (lic-<32 hex>) nor a readable file: %v", v, err)
	}
	s := strings.TrimSpace(string(b))
	if strings.HasPrefix(s, "{") {
		var l struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(b, &l); err != nil {
			return "", fmt.Errorf("--license: %s: not the JSON of a license: %v", v, err)
		}
		s = l.ID
	} else if line, _, _ := strings.Cut(s, "\n"); line != "" {
		s = strings.TrimSpace(line)
	}
	if err := licensing.CheckLicenseID(s); err != nil {
		return "", fmt.Errorf("--license: %s: %v", v, err)
	}
	return s, nil
}

// licenseNodeID is the node's identity towards the authority:
// <agent-id>@<8 hex digits> kept in <dir>/node.id, so a restart keeps its
// seat and two workers with one agent id still take two seats.
func licenseNodeID(dir, agentID string) (string, error) {
	path := filepath.Join(dir, "node.id")
	b, err := os.ReadFile(path)
	suffix := strings.TrimSpace(string(b))
	if errors.Is(err, fs.ErrNotExist) || (err == nil && suffix == "") {
		var r [4]byte
		if _, err := rand.Read(r[:]); err != nil {
			return "", fmt.Errorf("license node id: %w", err)
		}
		suffix = hex.EncodeToString(r[:])
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", fmt.Errorf("license node id: %w", err)
		}
		if err := os.WriteFile(path, []byte(suffix+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("license node id: %w", err)
		}
	} else if err != nil {
		return "", fmt.Errorf("license node id: %w", err)
	}
	id := agentID + "@" + suffix
	if err := licensing.CheckNodeID(id); err != nil {
		return "", fmt.Errorf("license node id: %w", err)
	}
	return id, nil
}

// workRetry is how soon starting the Temporal workers is tried again after
// it failed while the license allows work.
const workRetry = 30 * time.Second

// runWork starts the Temporal workers now if the license allows work, and
// from then on stops them when it no longer does (no new work is taken;
// running executions are cancelled as at shutdown and Temporal places them
// again) and starts them anew when it does again. polling tells the
// worker health check. The returned channel closes once the workers are
// stopped after ctx ends.
func (l *licensed) runWork(ctx context.Context, start func() (stop func(), err error), polling *atomic.Bool, logger *slog.Logger) (<-chan struct{}, error) {
	var stop func()
	if err := l.gate.Allowed(); err == nil {
		s, err := start()
		if err != nil {
			return nil, err
		}
		stop = s
		polling.Store(true)
	} else {
		logger.Warn("license does not allow work: the workers do not start until it does", "reason", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var retry <-chan time.Time
		for {
			changed := l.gate.Changed()
			err := l.gate.Allowed()
			switch {
			case err == nil && stop == nil:
				s, serr := start()
				if serr != nil {
					logger.Error("starting the workers failed", "error", serr, "retry_in", workRetry)
					retry = time.After(workRetry)
					break
				}
				stop, retry = s, nil
				polling.Store(true)
				logger.Info("license allows work: workers started", "license", l.licenseID)
			case err != nil && stop != nil:
				logger.Warn("license no longer allows work: this worker stops taking new work", "reason", err)
				polling.Store(false)
				stop()
				stop = nil
			}
			select {
			case <-ctx.Done():
				if stop != nil {
					stop()
				}
				return
			case <-changed:
			case <-retry:
			}
		}
	}()
	return done, nil
}

// check is the license health check: the gate's verdict, and while the
// workers wait for a seat, why.
func (l *licensed) check(ctx context.Context) error {
	if err := l.gate.Check(ctx); err != nil {
		return fmt.Errorf("this worker takes no new work: %w", err)
	}
	return nil
}
