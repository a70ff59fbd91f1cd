package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"chorus/licensing"
	"chorus/ops"
)

// defaultLicenseServer is the dev worker's embedded authority (served on
// its ops port under /license).
const defaultLicenseServer = "http://127.0.0.1:9090/license"

const licenseUsage = `Usage: starter license <issue|revoke|status> [flags]

Operator actions on the license authority (KACHING): a dev worker's
embedded one (default ` + defaultLicenseServer + `) or a
starter license-server.

  issue    create a license and print its id (the license key)
  revoke   revoke a license: its workers stop taking work at their next heartbeat
  status   show one license and its seats, or every license

Every subcommand takes --license-server URL (env CHORUS_LICENSE_SERVER). Issue,
revoke and the list need the authority's admin token: env
CHORUS_LICENSE_ADMIN_TOKEN, or the file --admin-token-file (default
<data-dir>/license/admin.token, which a dev worker and license-server write).

Run "starter license <subcommand> --help" for its flags.
`

func cmdLicense(e *env, args []string) error {
	if len(args) == 0 {
		return &exitError{code: 2, msg: "license: want a subcommand: issue, revoke or status\n\n" + strings.TrimSuffix(licenseUsage, "\n")}
	}
	switch args[0] {
	case "issue":
		return cmdLicenseIssue(e, args[1:])
	case "revoke":
		return cmdLicenseRevoke(e, args[1:])
	case "status":
		return cmdLicenseStatus(e, args[1:])
	case "-h", "-help", "--help", "help":
		fmt.Fprint(e.stderr, licenseUsage)
		return flag.ErrHelp
	}
	return fail("license: unknown subcommand %q (want issue, revoke or status)", args[0])
}

// dataDirDefault is the node data dir the other commands default to.
func (e *env) dataDirDefault() string { return e.getenvOr("CHORUS_DATA_DIR", "./.chorus") }

// licenseTarget is the flags every license subcommand shares.
type licenseTarget struct {
	server    string
	tokenFile string
	tokenSet  bool
}

func (e *env) licenseFlags(name, args, help string, t *licenseTarget) *flag.FlagSet {
	fs := e.flags("license "+name, args, help)
	fs.StringVar(&t.server, "license-server", e.getenvOr("CHORUS_LICENSE_SERVER", defaultLicenseServer), "license authority URL (env CHORUS_LICENSE_SERVER)")
	fs.StringVar(&t.tokenFile, "admin-token-file", filepath.Join(e.dataDirDefault(), "license", licensing.AdminTokenFile),
		"file holding the admin token (env CHORUS_LICENSE_ADMIN_TOKEN wins unless this flag is given)")
	return fs
}

// client builds the authority client; admin says whether the admin token
// is required.
func (e *env) licenseClient(t *licenseTarget, set *flag.FlagSet, admin bool) (*licensing.Client, error) {
	set.Visit(func(f *flag.Flag) {
		if f.Name == "admin-token-file" {
			t.tokenSet = true
		}
	})
	token := ""
	if v := e.getenv("CHORUS_LICENSE_ADMIN_TOKEN"); v != "" && !t.tokenSet {
		token = strings.TrimSpace(v)
	} else {
		tok, err := licensing.ReadAdminToken(t.tokenFile)
		switch {
		case err == nil:
			token = tok
		case admin && errors.Is(err, fs.ErrNotExist):
			return nil, fail("no admin token: set CHORUS_LICENSE_ADMIN_TOKEN or pass --admin-token-file (%s does not exist)", t.tokenFile)
		case admin || t.tokenSet:
			return nil, fail("%v", err)
		}
	}
	c, err := licensing.NewClient(t.server, &http.Client{Timeout: 30 * time.Second}, token)
	if err != nil {
		return nil, fail("--license-server: %v", err)
	}
	return c, nil
}

// licenseError turns a client error into the one-line message.
func licenseError(op string, err error) error {
	if errors.Is(err, licensing.ErrUnreachable) {
		return fail("%s: %v (is the license server running? see --license-server)", op, err)
	}
	return fail("%s: %v", op, err)
}

func cmdLicenseIssue(e *env, args []string) error {
	var t licenseTarget
	fs := e.licenseFlags("issue", "--cluster C [flags]", "Creates a license and prints its id, which is the license key: a worker uses it with\n--license ID (and --cluster-id C). With --json, prints the whole license.", &t)
	var req licensing.IssueRequest
	var expires time.Duration
	fs.StringVar(&req.Tier, "tier", "standard", "license tier (dev marks development licenses)")
	fs.IntVar(&req.Nodes, "nodes", 1, "node limit: how many workers may hold a seat at once")
	fs.DurationVar(&expires, "expires", 720*time.Hour, "lifetime from now")
	fs.StringVar(&req.ClusterID, "cluster", "", "the cluster the license is bound to (required; workers pass it as --cluster-id)")
	fs.StringVar(&req.Note, "note", "", "free text kept with the license")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fail("license issue: unexpected argument %q", pos[0])
	}
	if req.ClusterID == "" {
		return fail("license issue: --cluster is required (the cluster id the workers run with, --cluster-id; dev workers use \"dev\")")
	}
	if expires <= 0 {
		return fail("license issue: --expires must be positive, got %s", expires)
	}
	req.ExpiresIn = expires.String()
	c, err := e.licenseClient(&t, fs, true)
	if err != nil {
		return err
	}
	l, err := c.Issue(e.ctx, req)
	if err != nil {
		return licenseError("license issue", err)
	}
	if e.json {
		return e.printJSON(l)
	}
	fmt.Fprintln(e.stdout, l.ID)
	fmt.Fprintf(e.stderr, "issued license %s: tier %s, %d node(s), cluster %s, expires %s\nstart a worker with: worker --license %s --cluster-id %s --license-server %s\n",
		l.ID, l.Tier, l.Nodes, l.ClusterID, l.ExpiresAt.Format(time.RFC3339), l.ID, l.ClusterID, c.URL())
	return nil
}

func cmdLicenseRevoke(e *env, args []string) error {
	var t licenseTarget
	fs := e.licenseFlags("revoke", "ID [flags]", "Revokes a license: its version is bumped, so every worker holding it is refused at its\nnext heartbeat and stops taking work; new activations are refused.", &t)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fail("license revoke: want exactly one license id")
	}
	c, err := e.licenseClient(&t, fs, true)
	if err != nil {
		return err
	}
	l, err := c.Revoke(e.ctx, pos[0])
	if err != nil {
		return licenseError("license revoke", err)
	}
	if e.json {
		return e.printJSON(l)
	}
	fmt.Fprintf(e.stdout, "revoked %s (now version %d): its workers are refused at their next heartbeat\n", l.ID, l.Version)
	return nil
}

func cmdLicenseStatus(e *env, args []string) error {
	var t licenseTarget
	fs := e.licenseFlags("status", "[ID] [flags]", "With ID: the license, its state and the seats leased now (no admin token needed).\nWithout: every license (needs the admin token). Dev licenses are marked.", &t)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return fail("license status: want at most one license id")
	}
	id := ""
	if len(pos) == 1 {
		id = pos[0]
	}
	c, err := e.licenseClient(&t, fs, id == "")
	if err != nil {
		return err
	}
	st, err := c.Status(e.ctx, id)
	if err != nil {
		return licenseError("license status", err)
	}
	if e.json {
		if st.Licenses == nil {
			st.Licenses = []licensing.LicenseStatus{}
		}
		return e.printJSON(st)
	}
	fmt.Fprintf(e.stdout, "authority %s: key %s, seat lease %s\n", c.URL(), st.Authority.KeyID, time.Duration(st.Authority.LeaseTTLSeconds*float64(time.Second)))
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LICENSE\tTIER\tSTATE\tSEATS\tCLUSTER\tVERSION\tEXPIRES")
	for _, l := range st.Licenses {
		tier := l.Tier
		if l.Dev {
			tier += " (development license)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%d\t%s\n", l.ID, tier, l.State, l.SeatsInUse, l.Nodes, l.ClusterID, l.Version, l.ExpiresAt.Local().Format(time.RFC3339))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if id == "" {
		return nil
	}
	l := st.Licenses[0]
	if len(l.Seats) == 0 {
		fmt.Fprintln(e.stdout, "no seats leased")
		return nil
	}
	tw = tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEAT\tNODE\tACTIVATED\tLEASE UNTIL")
	for _, s := range l.Seats {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", s.Seat, s.NodeID, s.ActivatedAt.Local().Format(time.RFC3339), s.ExpiresAt.Local().Format(time.RFC3339))
	}
	return tw.Flush()
}

const licenseServerHelp = `Runs a license authority (KACHING): POST /activate, /heartbeat, /deactivate,
GET /status, and with the admin token POST /licenses and /licenses/{id}/revoke;
/metrics for Prometheus. Licenses, seat leases and the signing key live under
--data-dir (SQLite authority.db, authority.key), so a restart loses nothing.
The admin token comes from env CHORUS_LICENSE_ADMIN_TOKEN or --admin-token-file
(created with a random token when missing). Stops cleanly on SIGTERM.`

func cmdLicenseServer(e *env, args []string) error {
	fs := e.flags("license-server", "[flags]", licenseServerHelp)
	var addr, dataDir, tokenFile string
	var ttl time.Duration
	fs.StringVar(&addr, "addr", "127.0.0.1:9092", "listen address")
	fs.StringVar(&dataDir, "data-dir", filepath.Join(e.dataDirDefault(), "license"), "directory for authority.db, authority.key and admin.token")
	fs.StringVar(&tokenFile, "admin-token-file", "", "file holding the admin token (default <data-dir>/admin.token; created when missing)")
	fs.DurationVar(&ttl, "lease-ttl", licensing.DefaultAuthorityConfig().LeaseTTL, "how long a seat lease lasts without a heartbeat")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fail("license-server: unexpected argument %q", pos[0])
	}
	// The port first: a busy one is the likeliest error, and must not
	// leave a new data dir behind.
	ln, err := ops.Listen(addr)
	if err != nil {
		return fail("license-server: %v", err)
	}
	defer ln.Close()
	logger := slog.New(slog.NewJSONHandler(e.stderr, nil)).With("component", "license-server")
	token := strings.TrimSpace(e.getenv("CHORUS_LICENSE_ADMIN_TOKEN"))
	tokenFrom := "env CHORUS_LICENSE_ADMIN_TOKEN"
	if token == "" || tokenFile != "" {
		if tokenFile == "" {
			tokenFile = filepath.Join(dataDir, licensing.AdminTokenFile)
		}
		if token, err = licensing.LoadOrCreateAdminToken(tokenFile); err != nil {
			return fail("license-server: %v", err)
		}
		tokenFrom = tokenFile
	}
	reg := prometheus.NewRegistry()
	cfg := licensing.DefaultAuthorityConfig()
	cfg.DataDir, cfg.LeaseTTL, cfg.AdminToken, cfg.Logger, cfg.Metrics = dataDir, ttl, token, logger, reg
	a, err := licensing.NewAuthority(cfg)
	if err != nil {
		return fail("license-server: %v", err)
	}
	defer a.Close()
	mux := http.NewServeMux()
	mux.Handle("/", a.Handler())
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	fmt.Fprintf(e.stdout, "license server on http://%s (key %s, data %s, admin token from %s)\n", ln.Addr(), licensing.KeyID(a.PublicKey()), dataDir, tokenFrom)
	if err := ops.Serve(e.ctx, ln, mux, logger); err != nil {
		return fail("license-server: %v", err)
	}
	return nil
}
