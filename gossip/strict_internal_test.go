package gossip

import (
	"bytes"
	"encoding/json"
	"net"
	"reflect"
	"testing"
	"time"
)

// kinds has a field of each kind the flat decoder handles itself or hands
// on, for FuzzStrictUnmarshal.
type kinds struct {
	S   string            `json:"s"`
	P   Priority          `json:"p,omitempty"`
	B   bool              `json:"b"`
	F   float64           `json:"f"`
	F32 float32           `json:"f32"`
	I   int               `json:"i"`
	I8  int8              `json:"i8"`
	U8  uint8             `json:"u8"`
	L   []string          `json:"l"`
	T   time.Time         `json:"t"`
	R   json.RawMessage   `json:"r"`
	M   map[string]int    `json:"m"`
	Ptr *int              `json:"ptr"`
	A   any               `json:"a"`
	N   string            // no tag: the field name
	X   map[string]string `json:"-"`
	IP  net.IP            `json:"ip"` // a TextUnmarshaler
	PT  *time.Time        `json:"pt"`
}

// TestFieldsOf: the flat decoder takes flat structs and leaves to
// encoding/json the structs whose rules it does not reproduce.
func TestFieldsOf(t *testing.T) {
	type nested struct{ In struct{ A int } }
	type embedded struct{ kinds }
	type quoted struct {
		Q int `json:"q,string"`
	}
	type clash struct {
		A int // named A by default, as B is by its tag
		B int `json:"A"`
	}
	if fieldsOf(reflect.TypeFor[*kinds]()) == nil {
		t.Error("fieldsOf(*kinds) = nil, want its fields")
	}
	for _, typ := range []reflect.Type{
		reflect.TypeFor[kinds](), reflect.TypeFor[*nested](), reflect.TypeFor[*embedded](),
		reflect.TypeFor[*quoted](), reflect.TypeFor[*clash](),
	} {
		if fieldsOf(typ) != nil {
			t.Errorf("fieldsOf(%v) is not nil: the flat decoder would take it", typ)
		}
	}
}

// FuzzStrictUnmarshal checks the fast strict decoding against the
// reference (a json.Decoder with DisallowUnknownFields and an EOF check):
// they accept the same inputs and decode them to the same values, for the
// envelope, a flat body and a body with nested structs (which takes the
// reference path).
func FuzzStrictUnmarshal(f *testing.F) {
	for _, s := range []string{
		`{"type":"task_progress","version":1,"from":"p","timestamp":"2026-01-01T00:00:00Z","hop_count":0,"data":{"a":1}}`,
		`{"Type":"x","VERSION":1}`, `{"type":"x","extra":1}`, `{"ty\u0070e":"x"}`, `{}`, ` {"from" : "a" , "to_roles" : ["a","b"] } `,
		`{"from":"a"} {"from":"b"}`, `{"from":"a"}x`, `[]`, `null`, `"s"`, `{"data":{"x":[1,{"y":"}"}]},"from":"\"q"}`,
		`{"agent_id":"a","status":"idle","at":"2026-01-01T00:00:00Z","message":"m"}`, `{"agent_id":"a","nope":{}}`,
		`{"rule":"r","confidence":0.8,"task":{"task_key":"k","repository":"r","odd":1},"depends_on":{}}`, `{"kelvin":1}`, `{"ſtatus":"idle"}`,
		`{"s":"a\"b\\c\/\b\f\n\r\t\u00e9\ud83d\ude00\ud800x\udc00\ud800\u0041","b":true,"f":-1.5e-3,"f32":3.4e39,"i":-0,"i8":127,"u8":255}`,
		`{"s":null,"b":null,"f":null,"i":null,"l":null,"t":null,"r":null,"m":null,"ptr":null,"a":null,"N":"n","n":"lower"}`,
		`{"i8":128,"u8":-1,"i":1.0,"f":1e999,"i":99999999999999999999,"b":tru,"s":"\x"}`,
		`{"l":["a","b\u0000"],"t":"2026-01-01T00:00:00.5+02:00","r":{"k":[1,"}"]},"m":{"a":1},"ptr":7,"a":[1,{"b":null}],"q":"5"}`,
		`{ "s" : "dup" , "s" : "last" , "l":["x","y"], "l":["z"], "m":{"a":1}, "m":{"b":2} }`,
		`{"s":"\ud834\udd1e\uDBFF\uDFFF\u12","f":01}`, `{"s":"éÿ"}`, `{"s":"tab	in"}`, `{"r":[1,2}`, `{"r":"x`, `{"b":false}x`,
	} {
		f.Add([]byte(s))
	}
	targets := []func() any{
		func() any { return &Envelope{} },
		func() any { return &StatusUpdate{} },
		func() any { return &DependencyAlert{} },
		func() any { return &kinds{} },
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, mk := range targets {
			fast, aliased, ref := mk(), mk(), mk()
			errFast, errAlias, errRef := strictUnmarshal(b, fast), strictDecode(b, aliased, true), decodeStrict(b, ref)
			if (errFast == nil) != (errRef == nil) || (errAlias == nil) != (errRef == nil) {
				t.Fatalf("%T %q: fast %v, aliased %v, reference %v", fast, b, errFast, errAlias, errRef)
			}
			if errFast == nil && (!reflect.DeepEqual(fast, ref) || !reflect.DeepEqual(aliased, ref)) {
				t.Fatalf("%T %q: fast %+v, aliased %+v, reference %+v", fast, b, fast, aliased, ref)
			}
		}
	})
}

// FuzzCompact holds compact to json.Compact: valid JSON is compact exactly
// when json.Compact leaves it unchanged.
func FuzzCompact(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a": 1}`, `{"a":"x y"}`, `{"a":"q\" "}`, `{"a":"q\\" , "b":2}`, `[1,2 ]`, "{\"a\":\"\\\\\\\"\t\"}", `"\\"`, `" "`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, d []byte) {
		if !json.Valid(d) {
			return
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, d); err != nil {
			t.Fatal(err)
		}
		if want := bytes.Equal(buf.Bytes(), d); compact(d) != want {
			t.Fatalf("compact(%q) = %v, json.Compact gives %q", d, !want, buf.Bytes())
		}
	})
}
