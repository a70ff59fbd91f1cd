package main

import (
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"chorus/audit"
)

const auditUsage = `Usage: starter audit <verify|query> [flags]

Reads this node's audit log, <data-dir>/audit/audit.log.

  verify   check the hash chain and signatures; exit 1 naming the first bad entry
  query    print entries by type, author, time and index

Run "starter audit <subcommand> --help" for its flags.
`

func cmdAudit(e *env, args []string) error {
	if len(args) == 0 {
		return &exitError{code: 2, msg: "audit: want a subcommand: verify or query\n\n" + strings.TrimSuffix(auditUsage, "\n")}
	}
	switch args[0] {
	case "verify":
		return cmdAuditVerify(e, args[1:])
	case "query":
		return cmdAuditQuery(e, args[1:])
	case "-h", "-help", "--help", "help":
		fmt.Fprint(e.stderr, auditUsage)
		return flag.ErrHelp
	}
	return fail("audit: unknown subcommand %q (want verify or query)", args[0])
}

// auditFlags adds --data-dir to the common flags.
func (e *env) auditFlags(name, help string, dataDir *string) *flag.FlagSet {
	fs := e.flags("audit "+name, "[flags]", help)
	def := "./.chorus"
	if v := e.getenv("CHORUS_DATA_DIR"); v != "" {
		def = v
	}
	fs.StringVar(dataDir, "data-dir", def, "the node's data directory (env CHORUS_DATA_DIR)")
	return fs
}

// auditVerifyOutput is audit verify --json.
type auditVerifyOutput struct {
	Log string `json:"log"`
	audit.Report
}

func cmdAuditVerify(e *env, args []string) error {
	var dataDir string
	fs := e.auditFlags("verify", "Walks the audit log's hash chain and checks every signature with the node key\n(<data-dir>/audit/node.key). Exits 0 when the log is valid, 1 naming the first bad entry.", &dataDir)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fail("audit verify: unexpected argument %q", pos[0])
	}
	pub, err := audit.LoadPublicKey(audit.KeyPath(dataDir))
	if err != nil {
		return fail("audit verify: %v", err)
	}
	path := audit.LogPath(dataDir)
	r, err := audit.Verify(path, pub)
	if err != nil {
		return fail("audit verify: %v", err)
	}
	if e.json {
		if err := e.printJSON(auditVerifyOutput{Log: path, Report: r}); err != nil {
			return err
		}
	} else if r.Valid {
		fmt.Fprintf(e.stdout, "%s: valid, %d entries", path, r.Entries)
		if r.LastHash != "" {
			fmt.Fprintf(e.stdout, ", last hash %s", r.LastHash)
		}
		fmt.Fprintln(e.stdout)
		if r.TornBytes > 0 {
			fmt.Fprintf(e.stdout, "note: %d bytes of an incomplete final line (an interrupted append) are ignored; the node removes them on start\n", r.TornBytes)
		}
	}
	if r.Valid {
		return nil
	}
	return fail("audit verify: %s: first bad entry %d (line %d): %s: %s; %d entries before it are valid", path, r.BadIndex, r.BadLine, r.Reason, r.Detail, r.Entries)
}

func cmdAuditQuery(e *env, args []string) error {
	var dataDir, from, to string
	var f audit.Filter
	fs := e.auditFlags("query", "Prints audit log entries in index order. Filters combine; none means all entries.\nEntries are read without checking signatures: run audit verify for that.", &dataDir)
	fs.StringVar(&f.Type, "type", "", "only entries of this type ("+strings.Join(audit.Types(), ", ")+")")
	fs.StringVar(&f.Author, "author", "", "only entries by this author")
	fs.StringVar(&from, "from", "", "only entries at or after this time (RFC 3339)")
	fs.StringVar(&to, "to", "", "only entries before this time (RFC 3339)")
	fs.Int64Var(&f.FromIndex, "from-index", 0, "only entries with at least this index")
	fs.Int64Var(&f.ToIndex, "to-index", 0, "only entries with at most this index (0 = no limit)")
	fs.IntVar(&f.Limit, "limit", 0, "at most this many entries, the first ones (0 = no limit)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fail("audit query: unexpected argument %q", pos[0])
	}
	for _, t := range []struct {
		flag, v string
		dst     *time.Time
	}{{"from", from, &f.From}, {"to", to, &f.To}} {
		if t.v == "" {
			continue
		}
		if *t.dst, err = time.Parse(time.RFC3339, t.v); err != nil {
			return fail("audit query: --%s: %q is not an RFC 3339 time (like 2025-03-01T12:00:00Z)", t.flag, t.v)
		}
	}
	if err := f.Validate(); err != nil {
		return fail("audit query: %v", err)
	}
	entries, err := audit.Query(audit.LogPath(dataDir), f)
	if err != nil {
		return fail("audit query: %v", err)
	}
	if e.json {
		if entries == nil {
			entries = []audit.Entry{}
		}
		return e.printJSON(entries)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INDEX\tTIME\tAUTHOR\tTYPE\tDATA")
	for _, en := range entries {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", en.Index, en.Timestamp.Format(time.RFC3339), en.Author, en.Type, en.Data)
	}
	return tw.Flush()
}
