package gossip_test

import (
	"errors"
	"reflect"
	"testing"

	"chorus/gossip"
)

// FuzzDecode checks that Decode never panics, that every refusal is a
// *RejectError, and that an accepted message survives Encode and Decode
// unchanged.
func FuzzDecode(f *testing.F) {
	seeds := []string{
		`{"type":"task_claim","version":1,"from":"p","timestamp":"2025-06-01T12:00:00Z","hop_count":0}`,
		`{"type":"admin_heartbeat","version":1,"from":"p","from_role":"admin","to_roles":["a","b"],"required_expertise":[],` +
			`"project_id":"x","priority":"urgent","thread_id":"t","timestamp":"2025-06-01T12:59:30.123456789+01:00","hop_count":3,` +
			`"data":{ "term": 7, "html": "<a href=\"x\">&amp;</a>", "ls": "\u2028", "nested": {"k": [1, 2.5e3, null, true]} }}`,
		`{"type":"task_progress","version":1,"from":"p","timestamp":"2025-06-01T12:00:00Z","hop_count":1,"data":null}`,
		`{"type":"TASK_CLAIM","version":1,"from":"p","timestamp":"2025-06-01T12:00:00Z","hop_count":0}`,
		`{"Type":"task_claim","VERSION":1,"From":"p","timestamp":"2025-06-01T12:00:00Z","hop_count":0,"type":"election_vote"}`,
		`{"type":"task_claim","version":1,"from":"p\u0000\ud800","timestamp":"2025-06-01T12:00:00Z","hop_count":0}`,
		`{"type":"task_claim","version":1,"from":"p","timestamp":"2025-06-01T12:00:00Z","hop_count":4}`,
		`{"type":"task_claim","version":1,"from":"p","timestamp":"2020-01-01T00:00:00Z","hop_count":0}`,
		`{"type":"task_claim","version":1,"from":"p","timestamp":"2025-06-01T12:00:00Z","hop_count":0,"data":[1]}`,
		`{"type":"task_claim","version":1,"from":"p","timestamp":"2025-06-01T12:00:00Z","hop_count":0} {}`,
		`{"type":"task_claim","version":1,"from":"p","timestamp":"2025-06-01T12:00:00Z","hop_count":0,"extra":1}`,
		`{"type":"task_claim","version":2}`,
		"{\"type\":\"task_claim\",\"version\":1,\"from\":\"p\u2028<&>\",\"timestamp\":\"2025-06-01T12:00:00Z\",\"hop_count\":0,\"data\":{\"s\":\"\u2029<\"}}",
		`[]`, `null`, `{}`, `"x"`, ``, "\xff\xfe", `{"data":{`, `{"hop_count":1e400}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := gossip.Decode(b, now)
		if err != nil {
			var rej *gossip.RejectError
			if !errors.As(err, &rej) {
				t.Fatalf("Decode error %v is not a *RejectError", err)
			}
			return
		}
		out, err := gossip.Encode(e)
		if err != nil {
			t.Fatalf("Encode of an accepted envelope %+v: %v", e, err)
		}
		back, err := gossip.Decode(out, now)
		if err != nil {
			t.Fatalf("Decode(Encode(e)) of %s: %v", out, err)
		}
		if !reflect.DeepEqual(back, e) {
			t.Fatalf("round trip changed the envelope:\n in %+v\nout %+v", e, back)
		}
	})
}
