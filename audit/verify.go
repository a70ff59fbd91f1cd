package audit

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// ErrCorrupt is wrapped by errors about a log whose chain does not verify.
var ErrCorrupt = errors.New("audit log corrupt")

// Reason says why an entry failed verification.
type Reason string

// Reasons, in the order Verify checks them for each line.
const (
	ReasonUnparsable Reason = "unparsable_line"    // not a JSON entry, unknown field or type, missing author
	ReasonIndex      Reason = "bad_index_sequence" // index is not the previous one plus one
	ReasonHash       Reason = "hash_mismatch"      // hash is not the hash of the entry's fields
	ReasonSignature  Reason = "bad_signature"      // signature does not verify with the node's key
	ReasonPrevLink   Reason = "broken_prev_link"   // prev_hash is not the previous entry's hash
)

// Report is the outcome of Verify.
type Report struct {
	Valid     bool   `json:"valid"`
	Entries   int64  `json:"entries"`              // entries that verified, before any problem
	LastHash  string `json:"last_hash,omitempty"`  // hash of the last entry that verified
	TornBytes int64  `json:"torn_bytes,omitempty"` // incomplete final line (a crash mid-append), not an entry
	// The first problem, when not Valid.
	BadIndex int64  `json:"bad_index,omitempty"` // the index the chain expected there
	BadLine  int    `json:"bad_line,omitempty"`  // 1-based line number in the file
	Reason   Reason `json:"reason,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

// Err is nil for a valid report and otherwise an error wrapping ErrCorrupt
// that names the first bad index and the reason.
func (r Report) Err() error {
	if r.Valid {
		return nil
	}
	return fmt.Errorf("%w: entry %d (line %d): %s: %s", ErrCorrupt, r.BadIndex, r.BadLine, r.Reason, r.Detail)
}

// Verify walks the log at path and checks, for every complete line in
// order, that it parses, that its index follows the previous one, that its
// hash matches its fields, that its signature verifies with pub and that
// its prev_hash is the previous entry's hash. It stops at the first
// problem. An incomplete final line is reported in TornBytes but does not
// make the log invalid: it is what a crash mid-append leaves, and Open
// removes it. The error is for I/O failures only.
func Verify(path string, pub ed25519.PublicKey) (Report, error) {
	if len(pub) != ed25519.PublicKeySize {
		return Report{}, fmt.Errorf("verify %s: public key has %d bytes, want %d", path, len(pub), ed25519.PublicKeySize)
	}
	f, err := os.Open(path)
	if err != nil {
		return Report{}, fmt.Errorf("verify: %w", err)
	}
	defer f.Close()
	r, _, err := verify(f, pub)
	if err != nil {
		return Report{}, fmt.Errorf("verify %s: %w", path, err)
	}
	return r, nil
}

// verify checks the log read from rd and also returns the length of its
// complete lines, where a torn tail starts.
func verify(rd io.Reader, pub ed25519.PublicKey) (Report, int64, error) {
	var r Report
	var prev string
	end, torn, err := scan(rd, func(line int, b []byte) bool {
		want := r.Entries + 1
		e, reason, detail := check(b, want, prev, pub)
		if reason != "" {
			r.BadIndex, r.BadLine, r.Reason, r.Detail = want, line, reason, detail
			return false
		}
		r.Entries = want
		prev = e.Hash
		return true
	})
	if err != nil {
		return Report{}, 0, err
	}
	r.Valid = r.Reason == ""
	r.LastHash = prev
	r.TornBytes = torn
	return r, end, nil
}

// check verifies one line as entry want following prev.
func check(line []byte, want int64, prev string, pub ed25519.PublicKey) (Entry, Reason, string) {
	e, err := parse(line)
	if err != nil {
		return e, ReasonUnparsable, err.Error()
	}
	if e.Index != want {
		return e, ReasonIndex, fmt.Sprintf("found index %d where %d was expected", e.Index, want)
	}
	sum := e.sum()
	if got := hex.EncodeToString(sum[:]); got != e.Hash {
		return e, ReasonHash, fmt.Sprintf("stored hash %.16s... but the fields hash to %.16s...", e.Hash, got)
	}
	sig, err := base64.StdEncoding.DecodeString(e.Signature)
	if err != nil || !ed25519.Verify(pub, sum[:], sig) {
		return e, ReasonSignature, "signature does not verify with the node key"
	}
	if e.PrevHash != prev {
		return e, ReasonPrevLink, fmt.Sprintf("prev_hash %.16s... does not match the previous entry's hash %.16s...", e.PrevHash, prev)
	}
	return e, "", ""
}

// parse decodes one line strictly: no unknown fields, a known type and an
// author.
func parse(line []byte) (Entry, error) {
	var e Entry
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return e, fmt.Errorf("decode entry: %w", err)
	}
	if dec.More() {
		return e, errors.New("decode entry: trailing data after the entry")
	}
	if err := checkType(e.Type); err != nil {
		return e, err
	}
	if e.Author == "" {
		return e, errors.New("author: empty")
	}
	if len(e.Data) == 0 {
		return e, errors.New("data: missing")
	}
	return e, nil
}

// scan calls fn with each complete line of rd (without its newline) until
// fn returns false. It returns the length of the complete lines read and
// the number of bytes after the last newline (a torn final line).
func scan(rd io.Reader, fn func(line int, b []byte) bool) (end, torn int64, err error) {
	br := bufio.NewReaderSize(rd, 64<<10)
	for n := 1; ; n++ {
		b, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return end, int64(len(b)), nil
		}
		if err != nil {
			return end, 0, err
		}
		end += int64(len(b))
		if !fn(n, b[:len(b)-1]) {
			return end, 0, nil
		}
	}
}

// Filter selects entries for Query. Zero fields do not filter.
type Filter struct {
	Type      string    // entry type
	Author    string    // exact author
	From      time.Time // timestamp >= From
	To        time.Time // timestamp < To
	FromIndex int64     // index >= FromIndex
	ToIndex   int64     // index <= ToIndex
	Limit     int       // at most this many entries, the first ones in index order
}

// Validate reports a query that can match nothing by mistake, naming the field.
func (q Filter) Validate() error {
	switch {
	case q.Type != "" && !ValidType(q.Type):
		return checkType(q.Type)
	case q.Limit < 0:
		return fmt.Errorf("limit: %d is negative", q.Limit)
	case q.FromIndex < 0 || q.ToIndex < 0:
		return errors.New("index range: negative index")
	case q.ToIndex != 0 && q.FromIndex > q.ToIndex:
		return fmt.Errorf("index range: from %d is after to %d", q.FromIndex, q.ToIndex)
	case !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To):
		return fmt.Errorf("time range: from %s is not before to %s", q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))
	}
	return nil
}

func (q Filter) match(e *Entry) bool {
	return (q.Type == "" || e.Type == q.Type) &&
		(q.Author == "" || e.Author == q.Author) &&
		(q.From.IsZero() || !e.Timestamp.Before(q.From)) &&
		(q.To.IsZero() || e.Timestamp.Before(q.To)) &&
		e.Index >= q.FromIndex &&
		(q.ToIndex == 0 || e.Index <= q.ToIndex)
}

// Query returns the entries of the log at path that match q, in index
// order. It reads without verifying hashes or signatures (use Verify for
// that); an unparsable complete line is an error, a torn final line is
// skipped.
func Query(path string, q Filter) ([]Entry, error) {
	if err := q.Validate(); err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	defer f.Close()
	var out []Entry
	var perr error
	_, _, err = scan(f, func(line int, b []byte) bool {
		e, err := parse(b)
		if err != nil {
			perr = fmt.Errorf("query %s: line %d: %w", path, line, err)
			return false
		}
		if q.match(&e) {
			out = append(out, e)
		}
		return q.Limit == 0 || len(out) < q.Limit
	})
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", path, err)
	}
	return out, perr
}
