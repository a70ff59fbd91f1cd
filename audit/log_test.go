package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var ctx = context.Background()

// testLog opens a new log in a temporary directory.
func testLog(t *testing.T, opts Options) (string, ed25519.PrivateKey, *Log) {
	t.Helper()
	dir := t.TempDir()
	key, err := LoadOrCreateKey(KeyPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	path := LogPath(dir)
	l, err := OpenWithOptions(path, key, "agent-1", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return path, key, l
}

// appendN appends entries 1..n of type task_progress with data {"n":i}.
func appendN(t *testing.T, l *Log, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		if _, err := l.Append(ctx, TypeTaskProgress, map[string]int{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
}

func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(b, []byte("\n"))[:bytes.Count(b, []byte("\n"))]
}

func writeLines(t *testing.T, path string, lines [][]byte) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustVerify(t *testing.T, path string, pub ed25519.PublicKey) Report {
	t.Helper()
	r, err := Verify(path, pub)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestAppendVerifyReopen(t *testing.T) {
	path, key, l := testLog(t, Options{})
	e, err := l.Append(ctx, TypeTaskClaimed, map[string]string{"task": "task/board/demo/1", "note": "<a&b>"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Index != 1 || e.PrevHash != "" || e.Author != "agent-1" || len(e.Hash) != 64 || string(e.Data) != `{"note":"<a&b>","task":"task/board/demo/1"}` {
		t.Fatalf("first entry = %+v", e)
	}
	appendN(t, l, 2)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, TypeTaskProgress, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v, want ErrClosed", err)
	}

	l, err = Open(path, key, "agent-1")
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer l.Close()
	e4, err := l.Append(ctx, TypeTaskCompleted, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e4.Index != 4 || string(e4.Data) != "null" {
		t.Fatalf("entry after reopen = %+v", e4)
	}
	r := mustVerify(t, path, l.PublicKey())
	if !r.Valid || r.Entries != 4 || r.LastHash != e4.Hash || r.Err() != nil {
		t.Fatalf("report = %+v", r)
	}
	all, err := Query(path, Filter{})
	if err != nil || len(all) != 4 || all[0].Hash != e.Hash || all[3].PrevHash != all[2].Hash {
		t.Fatalf("query all: %v %+v", err, all)
	}
	// Another node's key does not verify this log.
	other, _, _ := ed25519.GenerateKey(nil)
	if r := mustVerify(t, path, other); r.Valid || r.BadIndex != 1 || r.Reason != ReasonSignature {
		t.Fatalf("verify with another key: %+v", r)
	}
}

func TestAppendChecksInput(t *testing.T) {
	path, _, l := testLog(t, Options{Redact: func(b []byte) []byte {
		return bytes.ReplaceAll(b, []byte("hunter2"), []byte("[REDACTED]"))
	}})
	_, err := l.Append(ctx, "task_exploded", nil)
	if err == nil || !strings.Contains(err.Error(), `type: unknown entry type "task_exploded"`) {
		t.Fatalf("unknown type: %v", err)
	}
	if _, err := l.Append(ctx, TypeSystemError, map[string]any{"f": func() {}}); err == nil || !strings.Contains(err.Error(), "data") {
		t.Fatalf("unencodable data: %v", err)
	}
	e, err := l.Append(ctx, TypeSystemError, map[string]string{"msg": "password=hunter2"})
	if err != nil {
		t.Fatal(err)
	}
	if string(e.Data) != `{"msg":"password=[REDACTED]"}` {
		t.Fatalf("data = %s", e.Data)
	}
	b, _ := os.ReadFile(path)
	if bytes.Contains(b, []byte("hunter2")) {
		t.Fatalf("secret reached the file: %s", b)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := l.Append(cancelled, TypeSystemError, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ctx: %v", err)
	}
	if r := mustVerify(t, path, l.PublicKey()); !r.Valid || r.Entries != 1 {
		t.Fatalf("rejected appends left a trace: %+v", r)
	}

	_, _, broken := testLog(t, Options{Redact: func([]byte) []byte { return []byte("{oops") }})
	if _, err := broken.Append(ctx, TypeSystemError, "x"); err == nil || !strings.Contains(err.Error(), "not JSON") {
		t.Fatalf("redactor returning bad JSON: %v", err)
	}
}

// resign recomputes an entry's hash and signs it with key, as someone
// holding the key would.
func resign(t *testing.T, line []byte, key ed25519.PrivateKey, edit func(*Entry)) []byte {
	t.Helper()
	e, err := parse(bytes.TrimSuffix(line, []byte("\n")))
	if err != nil {
		t.Fatal(err)
	}
	edit(&e)
	sum := e.sum()
	e.Hash = hex.EncodeToString(sum[:])
	e.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, sum[:]))
	b, err := encodeLine(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerifyFindsTampering(t *testing.T) {
	_, attacker, _ := ed25519.GenerateKey(nil)
	cases := []struct {
		name   string
		tamper func(t *testing.T, lines [][]byte, key ed25519.PrivateKey) [][]byte
		index  int64
		reason Reason
	}{
		{"data byte", func(t *testing.T, l [][]byte, _ ed25519.PrivateKey) [][]byte {
			l[2] = bytes.Replace(l[2], []byte(`{"n":3}`), []byte(`{"n":7}`), 1)
			return l
		}, 3, ReasonHash},
		{"hash", func(t *testing.T, l [][]byte, _ ed25519.PrivateKey) [][]byte {
			i := bytes.Index(l[3], []byte(`"hash":"`)) + len(`"hash":"`)
			l[3][i] ^= 1 // a hex digit stays a hex digit
			return l
		}, 4, ReasonHash},
		{"signature", func(t *testing.T, l [][]byte, _ ed25519.PrivateKey) [][]byte {
			var e2, e3 Entry
			_ = json.Unmarshal(l[1], &e2)
			_ = json.Unmarshal(l[2], &e3)
			l[2] = bytes.Replace(l[2], []byte(e3.Signature), []byte(e2.Signature), 1)
			return l
		}, 3, ReasonSignature},
		{"rehashed by someone without the key", func(t *testing.T, l [][]byte, _ ed25519.PrivateKey) [][]byte {
			l[1] = resign(t, l[1], attacker, func(e *Entry) { e.Data = json.RawMessage(`{"n":200}`) })
			return l
		}, 2, ReasonSignature},
		{"deleted middle line", func(t *testing.T, l [][]byte, _ ed25519.PrivateKey) [][]byte {
			return append(l[:2], l[3:]...)
		}, 3, ReasonIndex},
		{"reordered", func(t *testing.T, l [][]byte, _ ed25519.PrivateKey) [][]byte {
			l[2], l[3] = l[3], l[2]
			return l
		}, 3, ReasonIndex},
		{"duplicated line", func(t *testing.T, l [][]byte, _ ed25519.PrivateKey) [][]byte {
			return append(l[:3], l[2:]...)
		}, 4, ReasonIndex},
		{"entry replaced by the key holder", func(t *testing.T, l [][]byte, key ed25519.PrivateKey) [][]byte {
			l[2] = resign(t, l[2], key, func(e *Entry) { e.Data = json.RawMessage(`{"n":300}`) })
			return l
		}, 4, ReasonPrevLink},
		{"garbage line", func(t *testing.T, l [][]byte, _ ed25519.PrivateKey) [][]byte {
			l[4] = []byte("not json\n")
			return l
		}, 5, ReasonUnparsable},
		{"unknown field", func(t *testing.T, l [][]byte, _ ed25519.PrivateKey) [][]byte {
			l[0] = bytes.Replace(l[0], []byte(`{"index"`), []byte(`{"extra":1,"index"`), 1)
			return l
		}, 1, ReasonUnparsable},
		{"unknown type", func(t *testing.T, l [][]byte, _ ed25519.PrivateKey) [][]byte {
			l[1] = bytes.Replace(l[1], []byte(TypeTaskProgress), []byte("task_regress"), 1)
			return l
		}, 2, ReasonUnparsable},
		{"empty line", func(t *testing.T, l [][]byte, _ ed25519.PrivateKey) [][]byte {
			return append(l[:1], append([][]byte{[]byte("\n")}, l[1:]...)...)
		}, 2, ReasonUnparsable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path, key, l := testLog(t, Options{})
			appendN(t, l, 5)
			l.Close()
			before := readLines(t, path)
			writeLines(t, path, c.tamper(t, readLines(t, path), key))
			r := mustVerify(t, path, key.Public().(ed25519.PublicKey))
			if r.Valid || r.BadIndex != c.index || r.Reason != c.reason || r.Entries != c.index-1 {
				t.Fatalf("report = %+v, want first bad index %d (%s)", r, c.index, c.reason)
			}
			if err := r.Err(); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), fmt.Sprintf("entry %d ", c.index)) {
				t.Fatalf("Err() = %v", err)
			}
			// Open refuses the log and leaves it as it found it.
			tampered, _ := os.ReadFile(path)
			if _, err := Open(path, key, "agent-1"); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("open tampered log: %v, want ErrCorrupt", err)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, tampered) || bytes.Equal(after, bytes.Join(before, nil)) {
				t.Fatal("open modified a tampered log")
			}
		})
	}
}

func TestTornFinalLineIsRepaired(t *testing.T) {
	path, key, l := testLog(t, Options{})
	appendN(t, l, 3)
	l.Close()
	intact, _ := os.ReadFile(path)
	lines := readLines(t, path)
	half := lines[2][:len(lines[2])/2]
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(half); err != nil {
		t.Fatal(err)
	}
	f.Close()

	// Before repair: the torn tail is reported but is not corruption.
	pub := key.Public().(ed25519.PublicKey)
	if r := mustVerify(t, path, pub); !r.Valid || r.Entries != 3 || r.TornBytes != int64(len(half)) {
		t.Fatalf("verify torn log: %+v", r)
	}
	if es, err := Query(path, Filter{}); err != nil || len(es) != 3 {
		t.Fatalf("query torn log: %v, %d entries", err, len(es))
	}

	l, err = Open(path, key, "agent-1")
	if err != nil {
		t.Fatalf("open torn log: %v", err)
	}
	defer l.Close()
	if b, _ := os.ReadFile(path); !bytes.Equal(b, intact) {
		t.Fatalf("after repair the file is\n%s\nwant\n%s", b, intact)
	}
	e, err := l.Append(ctx, TypeTaskCompleted, nil)
	if err != nil || e.Index != 4 {
		t.Fatalf("append after repair: %+v %v", e, err)
	}
	if r := mustVerify(t, path, pub); !r.Valid || r.Entries != 4 || r.TornBytes != 0 {
		t.Fatalf("verify repaired log: %+v", r)
	}
	if b, _ := os.ReadFile(path); !bytes.HasPrefix(b, intact) {
		t.Fatal("earlier entries changed")
	}
}

func TestTornFirstLineIsRepaired(t *testing.T) {
	dir := t.TempDir()
	key, _ := LoadOrCreateKey(KeyPath(dir))
	path := LogPath(dir)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(`{"index":1,"timest`), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := Open(path, key, "agent-1")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if e, err := l.Append(ctx, TypePeerJoined, nil); err != nil || e.Index != 1 {
		t.Fatalf("append: %+v %v", e, err)
	}
	if r := mustVerify(t, path, l.PublicKey()); !r.Valid || r.Entries != 1 {
		t.Fatalf("report = %+v", r)
	}
}

// crashChildEnv makes the test binary an appender that runs until killed.
const crashChildEnv = "CHORUS_AUDIT_CRASH_CHILD"

func TestCrashSafety(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	dir := t.TempDir()
	key, err := LoadOrCreateKey(KeyPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashSafety$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Read acknowledged indexes until enough have been reported, then kill
	// the child in the middle of its stream of appends.
	acked := make(chan int64)
	go func() {
		defer close(acked)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if n, err := strconv.ParseInt(strings.TrimPrefix(sc.Text(), "acked "), 10, 64); err == nil {
				acked <- n
			}
		}
	}()
	var maxAcked int64
	deadline := time.After(60 * time.Second)
	for maxAcked < 200 {
		select {
		case n, ok := <-acked:
			if !ok {
				t.Fatalf("child exited after %d entries: %v", maxAcked, cmd.Wait())
			}
			maxAcked = max(maxAcked, n)
		case <-deadline:
			cmd.Process.Kill()
			t.Fatalf("child acknowledged only %d entries in 60s", maxAcked)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for n := range acked {
		maxAcked = max(maxAcked, n)
	}
	if err := cmd.Wait(); err == nil {
		t.Fatal("child exited cleanly; want killed")
	}

	l, err := Open(LogPath(dir), key, "agent-1")
	if err != nil {
		t.Fatalf("open after crash: %v", err)
	}
	e, err := l.Append(ctx, TypeSystemError, map[string]string{"msg": "restarted after crash"})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	r := mustVerify(t, LogPath(dir), key.Public().(ed25519.PublicKey))
	if !r.Valid || r.Entries != e.Index || e.Index <= maxAcked {
		t.Fatalf("after crash: %+v, restart entry %d, child acknowledged up to %d", r, e.Index, maxAcked)
	}
}

// crashChild appends from several goroutines, printing each acknowledged
// index, until it is killed.
func crashChild(dir string) {
	key, err := LoadOrCreateKey(KeyPath(dir))
	if err != nil {
		panic(err)
	}
	l, err := Open(LogPath(dir), key, "agent-1")
	if err != nil {
		panic(err)
	}
	var mu sync.Mutex
	pad := strings.Repeat("x", 8<<10) // big lines widen the window for a torn write
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				e, err := l.Append(ctx, TypeTaskProgress, map[string]string{"pad": pad})
				if err != nil {
					panic(err)
				}
				mu.Lock()
				fmt.Printf("acked %d\n", e.Index)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

func TestConcurrentAppendsKeepIndexesDense(t *testing.T) {
	path, _, l := testLog(t, Options{})
	const writers, each = 8, 25
	var wg sync.WaitGroup
	got := make(chan int64, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				e, err := l.Append(ctx, TypeNetworkEvent, map[string]int{"w": w, "i": i})
				if err != nil {
					t.Error(err)
					return
				}
				got <- e.Index
			}
		})
	}
	wg.Wait()
	close(got)
	seen := map[int64]bool{}
	for i := range got {
		if seen[i] {
			t.Fatalf("index %d returned twice", i)
		}
		seen[i] = true
	}
	for i := int64(1); i <= writers*each; i++ {
		if !seen[i] {
			t.Fatalf("index %d missing", i)
		}
	}
	if r := mustVerify(t, path, l.PublicKey()); !r.Valid || r.Entries != writers*each {
		t.Fatalf("report = %+v", r)
	}
}

func TestQuery(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	tick := 0
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		tick++
		return t0.Add(time.Duration(tick) * time.Minute) // entry i at t0+i minutes
	}
	path, key, l := testLog(t, Options{Now: clock})
	for i := 1; i <= 6; i++ {
		typ := TypeTaskClaimed
		if i%2 == 0 {
			typ = TypeTaskCompleted
		}
		if _, err := l.Append(ctx, typ, map[string]int{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	// A second author writes to the same file (a renamed node, say).
	l2, err := OpenWithOptions(path, key, "agent-2", Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l2.Append(ctx, TypeTaskClaimed, nil); err != nil {
		t.Fatal(err)
	}
	l2.Close()

	cases := []struct {
		name string
		f    Filter
		want []int64
	}{
		{"all", Filter{}, []int64{1, 2, 3, 4, 5, 6, 7}},
		{"type", Filter{Type: TypeTaskCompleted}, []int64{2, 4, 6}},
		{"author", Filter{Author: "agent-2"}, []int64{7}},
		{"type and author", Filter{Type: TypeTaskClaimed, Author: "agent-1"}, []int64{1, 3, 5}},
		{"from inclusive", Filter{From: t0.Add(5 * time.Minute)}, []int64{5, 6, 7}},
		{"to exclusive", Filter{To: t0.Add(3 * time.Minute)}, []int64{1, 2}},
		{"time window", Filter{From: t0.Add(2 * time.Minute), To: t0.Add(4 * time.Minute)}, []int64{2, 3}},
		{"index range", Filter{FromIndex: 3, ToIndex: 5}, []int64{3, 4, 5}},
		{"one index", Filter{FromIndex: 6, ToIndex: 6}, []int64{6}},
		{"limit", Filter{Type: TypeTaskClaimed, Limit: 2}, []int64{1, 3}},
		{"no match", Filter{Type: TypeEscalation}, nil},
	}
	for _, c := range cases {
		es, err := Query(path, c.f)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var idx []int64
		for _, e := range es {
			idx = append(idx, e.Index)
		}
		if fmt.Sprint(idx) != fmt.Sprint(c.want) {
			t.Errorf("%s: got %v, want %v", c.name, idx, c.want)
		}
	}
	bad := []struct {
		f     Filter
		field string
	}{
		{Filter{Type: "nope"}, "type"},
		{Filter{Limit: -1}, "limit"},
		{Filter{FromIndex: 5, ToIndex: 2}, "index range"},
		{Filter{From: t0, To: t0}, "time range"},
	}
	for _, b := range bad {
		if _, err := Query(path, b.f); err == nil || !strings.Contains(err.Error(), b.field+":") {
			t.Errorf("Query(%+v) = %v, want an error naming %s", b.f, err, b.field)
		}
	}
	if _, err := Query(filepath.Join(t.TempDir(), "none.log"), Filter{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", KeyFile)
	if _, err := LoadPublicKey(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("LoadPublicKey of a missing file: %v", err)
	}
	k1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", st.Mode(), err)
	}
	k2, err := LoadOrCreateKey(path)
	if err != nil || !k1.Equal(k2) {
		t.Fatalf("second load: %v, same key %v", err, k1.Equal(k2))
	}
	pub, err := LoadPublicKey(path)
	if err != nil || !pub.Equal(k1.Public()) {
		t.Fatalf("public key: %v", err)
	}
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(path); err == nil || !strings.Contains(err.Error(), "PEM") {
		t.Fatalf("garbage key file: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

func TestOpenRejectsBadArguments(t *testing.T) {
	dir := t.TempDir()
	key, _ := LoadOrCreateKey(KeyPath(dir))
	if _, err := Open(LogPath(dir), key, ""); err == nil || !strings.Contains(err.Error(), "author") {
		t.Fatalf("empty author: %v", err)
	}
	if _, err := Open(LogPath(dir), key[:10], "a"); err == nil || !strings.Contains(err.Error(), "key") {
		t.Fatalf("short key: %v", err)
	}
	if _, err := Verify(LogPath(dir), nil); err == nil {
		t.Fatal("verify with no key succeeded")
	}
}
