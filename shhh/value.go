package shhh

import (
	"bytes"
	"cmp"
	"encoding/json"
	"slices"
	"strconv"
	"time"
)

// unencodable is the rule named by a Finding for a value RedactValue could
// not turn into JSON (a channel, a function, a cycle): the whole value is
// replaced, since what it holds cannot be checked.
const unencodable = "unencodable"

// RedactValue returns a redacted copy of v and the secrets found, each with
// the Path of the string it was in. v itself is never modified.
//
// Values of JSON shape are walked and copied as they are: nil, bool, numbers,
// string, []byte, []any, []string, map[string]any and map[string]string keep
// their types. Any other value (a struct, a pointer, a typed map or slice) is
// first converted by a JSON round trip: json.Marshal, then decoding into
// map[string]any / []any with numbers as json.Number, so struct fields appear
// under their JSON names and unexported fields are dropped. A value that
// cannot be marshalled becomes the replacement string, with a Finding of rule
// "unencodable" (fail closed).
//
// A string under a map key is also checked as if it were the assignment
// key=value, so {"password": "correct horse"} is caught although the value
// alone looks harmless; when such a match starts at the beginning of the
// value, the whole value is the secret. Elements of a slice inherit the
// key of the slice. Map keys are redacted too; a redacted key that collides
// with another gets a suffix "#2", "#3", ...
func (r *Redactor) RedactValue(v any) (any, []Finding) {
	start := time.Now()
	w := walker{r: r}
	defer func() { r.metrics.scanned(kindValue, start, w.scanned, len(w.spans)) }()
	out := w.value(v, "", "")
	slices.SortStableFunc(w.findings, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.Path, b.Path), cmp.Compare(a.Start, b.Start))
	})
	r.record(w.scanned, w.spans)
	return out, w.findings
}

type walker struct {
	r        *Redactor
	scanned  int64
	spans    []span
	findings []Finding
}

func (w *walker) value(v any, path, key string) any {
	switch x := v.(type) {
	case nil, bool, json.Number, float64, float32, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, uintptr:
		return x
	case string:
		return w.str(x, path, key)
	case []byte:
		return []byte(w.str(string(x), path, key))
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = w.value(e, index(path, i), key)
		}
		return out
	case []string:
		out := make([]string, len(x))
		for i, e := range x {
			out[i] = w.str(e, index(path, i), key)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for _, k := range sortedKeys(x) {
			rk := w.key(k, path, out)
			out[rk] = w.value(x[k], field(path, rk), k)
		}
		return out
	case map[string]string:
		out := make(map[string]string, len(x))
		for _, k := range sortedKeys(x) {
			rk := w.key(k, path, out)
			out[rk] = w.str(x[k], field(path, rk), k)
		}
		return out
	}
	b, err := json.Marshal(v)
	if err != nil {
		w.spans = append(w.spans, span{rule: len(w.r.rules)})
		w.findings = append(w.findings, Finding{Rule: unencodable, Severity: SeverityHigh, Path: path})
		return w.r.replacement
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var g any
	if err := dec.Decode(&g); err != nil { // cannot happen for json.Marshal output
		w.spans = append(w.spans, span{rule: len(w.r.rules)})
		w.findings = append(w.findings, Finding{Rule: unencodable, Severity: SeverityHigh, Path: path})
		return w.r.replacement
	}
	return w.value(g, path, key)
}

// str redacts s, found under key at path.
func (w *walker) str(s, path, key string) string {
	r := w.r
	w.scanned += int64(len(s))
	spans := r.scan(s, nil)
	if key != "" {
		// Scan key=s as well, keeping what falls in s.
		off := len(key) + 1
		for _, sp := range r.scan(key+"="+s, nil) {
			if sp.end <= off {
				continue
			}
			sp.start, sp.end = max(sp.start-off, 0), sp.end-off
			if sp.start == 0 {
				sp.end = len(s)
			}
			spans = append(spans, sp)
		}
	}
	spans = r.merge(spans)
	w.spans = append(w.spans, spans...)
	w.findings = append(w.findings, r.findings(s, spans, path)...)
	return r.apply(s, spans)
}

// key redacts a map key, keeping it distinct from the keys already in out.
func (w *walker) key(k, path string, out any) string {
	if len(k) == 0 {
		return k
	}
	rk := w.str(k, path, "")
	if rk == k {
		return rk
	}
	taken := func(s string) bool {
		switch m := out.(type) {
		case map[string]any:
			_, ok := m[s]
			return ok
		case map[string]string:
			_, ok := m[s]
			return ok
		}
		return false
	}
	for n, base := 2, rk; taken(rk); n++ {
		rk = base + "#" + strconv.Itoa(n)
	}
	return rk
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// field appends a map key to path: .name for plain keys, ["a b"] otherwise.
func field(path, k string) string {
	plain := k != ""
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c == '_' || c == '-' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			plain = false
			break
		}
	}
	switch {
	case !plain:
		return path + "[" + strconv.Quote(k) + "]"
	case path == "":
		return k
	default:
		return path + "." + k
	}
}
