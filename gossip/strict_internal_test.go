package gossip

import (
	"reflect"
	"testing"
)

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
	} {
		f.Add([]byte(s))
	}
	targets := []func() any{
		func() any { return &Envelope{} },
		func() any { return &StatusUpdate{} },
		func() any { return &DependencyAlert{} },
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, mk := range targets {
			fast, ref := mk(), mk()
			errFast, errRef := strictUnmarshal(b, fast), decodeStrict(b, ref)
			if (errFast == nil) != (errRef == nil) {
				t.Fatalf("%T %q: fast %v, reference %v", fast, b, errFast, errRef)
			}
			if errFast == nil && !reflect.DeepEqual(fast, ref) {
				t.Fatalf("%T %q: fast %+v, reference %+v", fast, b, fast, ref)
			}
		}
	})
}
