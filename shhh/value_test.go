package shhh_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"chorus/shhh"
)

func TestRedactValueNested(t *testing.T) {
	f := newFake(10)
	bearer, pw, gh, key := f.str(urlsafe, 40), f.str(alnum, 12), "ghp_"+f.str(alnum, 36), "sk-"+f.str(alnum, 48)
	in := map[string]any{
		"event": "task_claimed",
		"data": map[string]any{
			"headers": []any{"Accept: */*", "Host: api.example.com", "Authorization: Bearer " + bearer},
			"db":      map[string]string{"password": "correct horse " + pw, "host": "db"},
			"tokens":  []string{"none", gh},
			"count":   3.0,
			"ok":      true,
			"raw":     []byte("OPENAI_API_KEY=" + key),
		},
		key: "a key used as a map key",
	}
	before := deepCopyJSON(t, in)
	out, fs := newRedactor(t, shhh.DefaultConfig()).RedactValue(in)

	want := map[string]any{
		"event": "task_claimed",
		"data": map[string]any{
			"headers": []any{"Accept: */*", "Host: api.example.com", "Authorization: Bearer [REDACTED]"},
			"db":      map[string]string{"password": "[REDACTED]", "host": "db"},
			"tokens":  []string{"none", "[REDACTED]"},
			"count":   3.0,
			"ok":      true,
			"raw":     []byte("OPENAI_API_KEY=[REDACTED]"),
		},
		"[REDACTED]": "a key used as a map key",
	}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("RedactValue\n got %#v\nwant %#v", out, want)
	}
	wantFs := []shhh.Finding{
		{Rule: "openai_api_key", Severity: "high", Start: 0, End: len(key), Path: "", SHA256: hash(key)},
		{Rule: "password_assignment", Severity: "high", Start: 0, End: len("correct horse ") + len(pw), Path: "data.db.password", SHA256: hash("correct horse " + pw)},
		{Rule: "bearer_token", Severity: "high", Start: len("Authorization: Bearer "), End: len("Authorization: Bearer ") + len(bearer), Path: "data.headers[2]", SHA256: hash(bearer)},
		{Rule: "openai_api_key", Severity: "high", Start: len("OPENAI_API_KEY="), End: len("OPENAI_API_KEY=") + len(key), Path: "data.raw", SHA256: hash(key)},
		{Rule: "github_token", Severity: "high", Start: 0, End: len(gh), Path: "data.tokens[1]", SHA256: hash(gh)},
	}
	if !reflect.DeepEqual(fs, wantFs) {
		t.Fatalf("findings\n got %+v\nwant %+v", fs, wantFs)
	}
	if after := deepCopyJSON(t, in); !reflect.DeepEqual(before, after) {
		t.Fatalf("input modified")
	}
}

func deepCopyJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

type creds struct {
	User     string            `json:"user"`
	Password string            `json:"password"`
	Port     int               `json:"port"`
	Extra    map[string]string `json:"extra"`
	internal string
}

// TestRedactValueStruct checks the JSON round trip used for structs: field
// names become JSON names, numbers json.Number, and the struct is untouched.
func TestRedactValueStruct(t *testing.T) {
	f := newFake(11)
	pw, tok := f.str(alnum, 10), f.str(urlsafe, 32)
	in := &creds{User: "bob", Password: pw, Port: 5432, Extra: map[string]string{"note": "access_token=" + tok}, internal: "x"}
	out, fs := newRedactor(t, shhh.DefaultConfig()).RedactValue(map[string]any{"creds": in})
	want := map[string]any{"creds": map[string]any{
		"user": "bob", "password": "[REDACTED]", "port": json.Number("5432"),
		"extra": map[string]any{"note": "access_token=[REDACTED]"},
	}}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("got %#v\nwant %#v", out, want)
	}
	if len(fs) != 2 || fs[0].Path != "creds.extra.note" || fs[0].Rule != "token_assignment" || fs[1].Path != "creds.password" || fs[1].SHA256 != hash(pw) {
		t.Fatalf("findings %+v", fs)
	}
	if in.Password != pw || in.Extra["note"] != "access_token="+tok {
		t.Fatal("input struct modified")
	}
}

func TestRedactValuePaths(t *testing.T) {
	f := newFake(12)
	pw := f.str(alnum, 10)
	_, fs := newRedactor(t, shhh.DefaultConfig()).RedactValue([]any{map[string]any{"odd key": []any{"x", "password=" + pw}}})
	if len(fs) != 1 || fs[0].Path != `[0]["odd key"][1]` || fs[0].Start != 9 {
		t.Fatalf("findings %+v", fs)
	}
}

// TestRedactValueFailsClosed: a value that cannot be encoded is replaced
// as a whole rather than passed through unchecked.
func TestRedactValueFailsClosed(t *testing.T) {
	r := newRedactor(t, shhh.DefaultConfig())
	out, fs := r.RedactValue(map[string]any{"ch": make(chan int), "ok": "fine"})
	want := map[string]any{"ch": "[REDACTED]", "ok": "fine"}
	if !reflect.DeepEqual(out, want) || len(fs) != 1 || fs[0].Rule != "unencodable" || fs[0].Path != "ch" {
		t.Fatalf("got %#v %+v", out, fs)
	}
	if st := r.Stats(); st.ByRule["unencodable"] != 1 || st.BySeverity["high"] != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRedactValueKeyCollision(t *testing.T) {
	f := newFake(13)
	a, b := "sk-"+f.str(alnum, 40), "sk-"+f.str(alnum, 40)
	out, _ := newRedactor(t, shhh.DefaultConfig()).RedactValue(map[string]string{a: "1", b: "2"})
	m := out.(map[string]string)
	if len(m) != 2 || m["[REDACTED]"] == "" || m["[REDACTED]#2"] == "" {
		t.Fatalf("got %v", m)
	}
}
