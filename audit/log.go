package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("audit log closed")

// Options tune a Log. The zero value is ready to use.
type Options struct {
	// Redact rewrites the JSON encoding of an entry's data before it is
	// hashed, signed and written (the SHHH redactor plugs in here). It must
	// return valid JSON. Nil keeps data as is.
	Redact func([]byte) []byte
	// Now is the clock for timestamps. Nil means time.Now; tests set it.
	Now func() time.Time
}

// Log is an open, append-only audit log owned by one process.
type Log struct {
	path   string
	key    ed25519.PrivateKey
	author string
	redact func([]byte) []byte
	now    func() time.Time

	mu   sync.Mutex
	f    *os.File // nil once closed
	next int64    // index of the next entry
	prev string   // hash of the last entry; "" when empty
	size int64    // length of the file: every byte is a complete entry line
	err  error    // set after a write whose outcome is unknown; the log refuses further appends
}

// Open opens the log at path for appending, creating it (and its
// directory) when missing. Entries are signed with key and carry author.
// See OpenWithOptions.
func Open(path string, key ed25519.PrivateKey, author string) (*Log, error) {
	return OpenWithOptions(path, key, author, Options{})
}

// OpenWithOptions opens the log at path. An existing log is verified first
// with key's public key: a chain that does not verify is an error wrapping
// ErrCorrupt and the file is left untouched. An incomplete final line, left
// by a crash in the middle of an append, is cut off; complete lines are
// never modified.
func OpenWithOptions(path string, key ed25519.PrivateKey, author string, opts Options) (*Log, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("open audit log %s: private key has %d bytes, want %d", path, len(key), ed25519.PrivateKeySize)
	}
	if author == "" {
		return nil, fmt.Errorf("open audit log %s: author: empty", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	_, statErr := os.Stat(path)
	created := errors.Is(statErr, fs.ErrNotExist)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	l, err := load(f, key)
	if err == nil && created {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open audit log %s: %w", path, err)
	}
	l.path, l.key, l.author, l.redact, l.now = path, key, author, opts.Redact, opts.Now
	if l.now == nil {
		l.now = time.Now
	}
	return l, nil
}

// load verifies the file and cuts a torn tail.
func load(f *os.File, key ed25519.PrivateKey) (*Log, error) {
	r, end, err := verify(f, key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	if r.TornBytes > 0 {
		if err := f.Truncate(end); err != nil {
			return nil, fmt.Errorf("cut torn final line: %w", err)
		}
		if err := f.Sync(); err != nil {
			return nil, fmt.Errorf("cut torn final line: %w", err)
		}
	}
	return &Log{f: f, next: r.Entries + 1, prev: r.LastHash, size: end}, nil
}

// Path is the file the log writes to.
func (l *Log) Path() string { return l.path }

// PublicKey is the key that verifies the log's signatures.
func (l *Log) PublicKey() ed25519.PublicKey { return l.key.Public().(ed25519.PublicKey) }

// Append adds an entry of type typ whose data is the JSON encoding of data
// (after Redact), and returns it once it is on stable storage: the line is
// written with a single write and fsynced before Append returns. An unknown
// type is an error naming the field. Safe for concurrent use; entries get
// consecutive indexes in the order Append calls take the lock.
func (l *Log) Append(ctx context.Context, typ string, data any) (Entry, error) {
	if err := ctx.Err(); err != nil {
		return Entry{}, fmt.Errorf("append %s: %w", typ, err)
	}
	if err := checkType(typ); err != nil {
		return Entry{}, fmt.Errorf("append: %w", err)
	}
	var enc bytes.Buffer
	je := json.NewEncoder(&enc)
	je.SetEscapeHTML(false)
	if err := je.Encode(data); err != nil {
		return Entry{}, fmt.Errorf("append %s: data: %w", typ, err)
	}
	raw := bytes.TrimSuffix(enc.Bytes(), []byte("\n"))
	if l.redact != nil {
		raw = l.redact(raw)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return Entry{}, fmt.Errorf("append %s: data: redacted data is not JSON: %w", typ, err)
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return Entry{}, fmt.Errorf("append %s: %w", typ, ErrClosed)
	}
	if l.err != nil {
		return Entry{}, fmt.Errorf("append %s: %w", typ, l.err)
	}
	e := Entry{
		Index:     l.next,
		Timestamp: l.now().UTC().Round(0),
		Author:    l.author,
		Type:      typ,
		Data:      json.RawMessage(buf.Bytes()),
		PrevHash:  l.prev,
	}
	sum := e.sum()
	e.Hash = e.hexSum()
	e.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(l.key, sum[:]))
	line, err := encodeLine(e)
	if err != nil {
		return Entry{}, fmt.Errorf("append %s: %w", typ, err)
	}
	if _, err := l.f.Write(line); err != nil {
		// A partial line would corrupt the next one: cut it off, or refuse
		// further appends if that fails too.
		if terr := l.f.Truncate(l.size); terr != nil {
			l.err = fmt.Errorf("log unusable after a failed write, reopen it: %w", errors.Join(err, terr))
		}
		return Entry{}, fmt.Errorf("append %s: write: %w", typ, err)
	}
	if err := l.f.Sync(); err != nil {
		// Whether the line reached the disk is unknown; Open will tell.
		l.err = fmt.Errorf("log unusable after a failed fsync, reopen it: %w", err)
		return Entry{}, fmt.Errorf("append %s: fsync: %w", typ, err)
	}
	l.size += int64(len(line))
	l.next++
	l.prev = e.Hash
	return e, nil
}

// encodeLine is the entry as one JSON line, data bytes kept verbatim.
func encodeLine(e Entry) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Close closes the file. Appends after Close fail with ErrClosed; a second
// Close does nothing.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	if err != nil {
		return fmt.Errorf("close audit log %s: %w", l.path, err)
	}
	return nil
}
