package shhh

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// Finding records one redacted secret: where it was and which rule found it,
// never the secret itself.
type Finding struct {
	Rule     string `json:"rule"`
	Severity string `json:"severity"`
	// Start and End are byte offsets of the secret in the input string (for
	// RedactValue, in the string at Path), End exclusive.
	Start int `json:"start"`
	End   int `json:"end"`
	// Path locates the string within a value given to RedactValue, e.g.
	// data.headers[2]; empty for Redact and RedactBytes.
	Path string `json:"path,omitempty"`
	// SHA256 is the hex SHA-256 of the secret's bytes, for matching audit
	// entries against a known leaked credential.
	SHA256 string `json:"sha256"`
}

// Stats is a snapshot of what a Redactor has done since New.
type Stats struct {
	ScannedBytes int64            `json:"scanned_bytes"`
	Redactions   int64            `json:"redactions"`
	ByRule       map[string]int64 `json:"by_rule"`
	BySeverity   map[string]int64 `json:"by_severity"`
}

// compiled is a Rule ready to run.
type compiled struct {
	Rule
	re        *regexp.Regexp
	groups    []int // indexes of the groups named "secret"; none: whole match
	anchors   []string
	confirm   func(lower string, start, end int) bool
	lineLocal bool
}

func newCompiled(r Rule, re *regexp.Regexp) compiled {
	c := compiled{Rule: r, re: re}
	for i, name := range re.SubexpNames() {
		if name == "secret" {
			c.groups = append(c.groups, i)
		}
	}
	return c
}

// Redactor replaces secrets in text and values. It is safe for concurrent
// use: the rules are fixed by New and the statistics are atomic counters.
type Redactor struct {
	rules       []compiled
	replacement string

	scanned atomic.Int64
	// hits counts findings per rule, indexed like rules; the last element
	// counts values RedactValue could not encode (see unencodable).
	hits []atomic.Int64
	// metrics is nil without Config.Metrics.
	metrics *metrics
}

// New compiles cfg's rules. It returns the error of cfg.Validate.
func New(cfg Config) (*Redactor, error) {
	rules, err := cfg.compile()
	if err != nil {
		return nil, err
	}
	r := &Redactor{rules: rules, replacement: cfg.Replacement, hits: make([]atomic.Int64, len(rules)+1)}
	if r.replacement == "" {
		r.replacement = DefaultReplacement
	}
	if cfg.Metrics != nil {
		if r.metrics, err = newMetrics(cfg.Metrics, r); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// span is a secret found in a string: byte offsets and the index of the rule
// (len(rules) for unencodable).
type span struct{ start, end, rule int }

// Redact returns s with every secret replaced, and one Finding per replaced
// secret in order of position. Where matches of different rules overlap,
// they are merged into one secret named after the rule whose match starts
// first (the earlier rule on a tie), so no matched byte survives.
func (r *Redactor) Redact(s string) (string, []Finding) {
	start := time.Now()
	spans := r.merge(r.scan(s, nil))
	defer func() { r.metrics.scanned(kindText, start, int64(len(s)), len(spans)) }()
	out := r.apply(s, spans)
	fs := r.findings(s, spans, "")
	r.record(int64(len(s)), spans)
	return out, fs
}

// RedactBytes is Redact for a byte slice. It returns a new slice and never
// modifies b.
func (r *Redactor) RedactBytes(b []byte) ([]byte, []Finding) {
	s, fs := r.Redact(string(b))
	return []byte(s), fs
}

// Stats returns the counters accumulated since New. Redactions always equals
// the sum of ByRule and of BySeverity.
func (r *Redactor) Stats() Stats {
	st := Stats{ScannedBytes: r.scanned.Load(), ByRule: map[string]int64{}, BySeverity: map[string]int64{}}
	for i := range r.hits {
		n := r.hits[i].Load()
		if n == 0 {
			continue
		}
		name, sev := r.ruleOf(i)
		st.Redactions += n
		st.ByRule[name] += n
		st.BySeverity[sev] += n
	}
	return st
}

func (r *Redactor) ruleOf(i int) (name, severity string) {
	if i == len(r.rules) {
		return unencodable, SeverityHigh
	}
	return r.rules[i].Name, r.rules[i].Severity
}

func (r *Redactor) record(scanned int64, spans []span) {
	r.scanned.Add(scanned)
	for _, sp := range spans {
		r.hits[sp.rule].Add(1)
	}
}

// scan appends to dst every rule's raw matches in s, unmerged.
func (r *Redactor) scan(s string, dst []span) []span {
	lower := lowerASCII(s)
	for i := range r.rules {
		c := &r.rules[i]
		switch {
		case len(c.anchors) == 0:
			dst = c.find(s, 0, i, r.replacement, dst)
		case c.lineLocal:
			dst = c.findLines(s, lower, i, r.replacement, dst)
		case containsAny(lower, c.anchors):
			dst = c.find(s, 0, i, r.replacement, dst)
		}
	}
	return dst
}

// find appends the secret spans of c's matches in s, offset by base. A
// secret that already reads as the replacement is not found again.
func (c *compiled) find(s string, base, rule int, replacement string, dst []span) []span {
	for _, m := range c.re.FindAllStringSubmatchIndex(s, -1) {
		start, end := m[0], m[1]
		for _, g := range c.groups {
			if m[2*g] >= 0 {
				start, end = m[2*g], m[2*g+1]
				break
			}
		}
		if start == end || s[start:end] == replacement {
			continue
		}
		dst = append(dst, span{base + start, base + end, rule})
	}
	return dst
}

// findLines runs a line-local rule only on the lines that hold one of its
// anchors (confirmed, if the rule has a confirm check).
func (c *compiled) findLines(s, lower string, rule int, replacement string, dst []span) []span {
	// next[i] is the first hit of anchors[i] at or after pos, -1 if there
	// is none left, -2 before the first search.
	next := make([]int, len(c.anchors))
	for i := range next {
		next[i] = -2
	}
	for pos := 0; pos < len(s); {
		first := -1
		for i := range c.anchors {
			if next[i] == -2 || (next[i] >= 0 && next[i] < pos) {
				next[i] = c.hit(lower, i, pos)
			}
			if next[i] >= 0 && (first < 0 || next[i] < first) {
				first = next[i]
			}
		}
		if first < 0 {
			break
		}
		start := strings.LastIndexByte(s[:first], '\n') + 1
		end := len(s)
		if j := strings.IndexByte(s[first:], '\n'); j >= 0 {
			end = first + j
		}
		dst = c.find(s[start:end], start, rule, replacement, dst)
		pos = end + 1
	}
	return dst
}

// hit returns the first occurrence of anchors[i] at or after from that
// passes confirm, or -1.
func (c *compiled) hit(lower string, i, from int) int {
	a := c.anchors[i]
	for from <= len(lower) {
		j := strings.Index(lower[from:], a)
		if j < 0 {
			return -1
		}
		at := from + j
		if c.confirm == nil || c.confirm(lower, at, at+len(a)) {
			return at
		}
		from = at + 1
	}
	return -1
}

// merge sorts spans and merges overlapping ones; the merged span keeps the
// rule of the one that starts first.
func (r *Redactor) merge(spans []span) []span {
	if len(spans) < 2 {
		return spans
	}
	slices.SortFunc(spans, func(a, b span) int {
		return cmp.Or(cmp.Compare(a.start, b.start), cmp.Compare(b.end, a.end), cmp.Compare(a.rule, b.rule))
	})
	out := spans[:1]
	for _, sp := range spans[1:] {
		last := &out[len(out)-1]
		if sp.start < last.end {
			last.end = max(last.end, sp.end)
			continue
		}
		out = append(out, sp)
	}
	return out
}

// apply returns s with each (sorted, disjoint) span replaced.
func (r *Redactor) apply(s string, spans []span) string {
	if len(spans) == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + len(spans)*len(r.replacement))
	prev := 0
	for _, sp := range spans {
		b.WriteString(s[prev:sp.start])
		b.WriteString(r.replacement)
		prev = sp.end
	}
	b.WriteString(s[prev:])
	return b.String()
}

func (r *Redactor) findings(s string, spans []span, path string) []Finding {
	if len(spans) == 0 {
		return nil
	}
	fs := make([]Finding, len(spans))
	for i, sp := range spans {
		name, sev := r.ruleOf(sp.rule)
		sum := sha256.Sum256([]byte(s[sp.start:sp.end]))
		fs[i] = Finding{Rule: name, Severity: sev, Start: sp.start, End: sp.end, Path: path, SHA256: hex.EncodeToString(sum[:])}
	}
	return fs
}

// lowerASCII lower-cases ASCII letters only, so byte offsets stay valid. It
// does not allocate when s has no upper-case letter.
func lowerASCII(s string) string {
	i := strings.IndexFunc(s, func(c rune) bool { return 'A' <= c && c <= 'Z' })
	if i < 0 {
		return s
	}
	b := []byte(s)
	for j := i; j < len(b); j++ {
		if c := b[j]; 'A' <= c && c <= 'Z' {
			b[j] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
