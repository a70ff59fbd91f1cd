package gossip_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"chorus"
	"chorus/gossip"
)

var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// msg builds a valid task_progress message as of now, applies edits to its
// JSON object and encodes it.
func msg(t testing.TB, edits ...func(m map[string]any)) []byte {
	t.Helper()
	m := map[string]any{
		"type":      "task_progress",
		"version":   1,
		"from":      "12D3KooWPeer",
		"priority":  "medium",
		"timestamp": now.Add(-time.Second).Format(time.RFC3339Nano),
		"hop_count": 0,
		"data":      map[string]any{"task_key": "task/github/o/r/1", "agent_id": "agent-a", "status": "working", "fence": 3, "at": now.Format(time.RFC3339)},
	}
	for _, e := range edits {
		e(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func set(key string, v any) func(map[string]any) { return func(m map[string]any) { m[key] = v } }
func del(key string) func(map[string]any)        { return func(m map[string]any) { delete(m, key) } }

func TestDecodeAccepts(t *testing.T) {
	tests := []struct {
		name  string
		in    []byte
		check func(t *testing.T, e gossip.Envelope)
	}{
		{"typical", msg(t), func(t *testing.T, e gossip.Envelope) {
			if e.Type != gossip.TypeTaskProgress || e.From != "12D3KooWPeer" || e.Priority != gossip.PriorityMedium || e.Version != 1 {
				t.Errorf("envelope = %+v", e)
			}
		}},
		{"all fields", msg(t, set("from_role", "developer"), set("to_roles", []string{"tester", "reviewer"}),
			set("required_expertise", []string{"go"}), set("project_id", "p1"), set("thread_id", "t-9"), set("hop_count", 2)),
			func(t *testing.T, e gossip.Envelope) {
				want := []string{"tester", "reviewer"}
				if e.FromRole != "developer" || !reflect.DeepEqual(e.ToRoles, want) || e.RequiredExpertise[0] != "go" ||
					e.ProjectID != "p1" || e.ThreadID != "t-9" || e.HopCount != 2 {
					t.Errorf("envelope = %+v", e)
				}
			}},
		{"no priority", msg(t, del("priority")), nil},
		{"urgent", msg(t, set("priority", "urgent")), nil},
		{"max hops", msg(t, set("hop_count", gossip.MaxHops)), nil},
		{"oldest allowed", msg(t, set("timestamp", now.Add(-gossip.MaxAge).Format(time.RFC3339))), nil},
		{"furthest future allowed", msg(t, set("timestamp", now.Add(gossip.MaxClockSkew).Format(time.RFC3339))), nil},
		{"offset timestamp becomes UTC", msg(t, set("timestamp", "2025-06-01T14:00:00+02:00")), func(t *testing.T, e gossip.Envelope) {
			if e.Timestamp.Location() != time.UTC || !e.Timestamp.Equal(now) {
				t.Errorf("timestamp = %v, want %v", e.Timestamp, now)
			}
		}},
		{"no data", msg(t, del("data")), func(t *testing.T, e gossip.Envelope) {
			if e.Data != nil {
				t.Errorf("data = %s, want nil", e.Data)
			}
		}},
		{"null data", msg(t, set("data", nil)), func(t *testing.T, e gossip.Envelope) {
			if e.Data != nil {
				t.Errorf("data = %s, want nil", e.Data)
			}
		}},
		{"empty lists", msg(t, set("to_roles", []string{})), func(t *testing.T, e gossip.Envelope) {
			if e.ToRoles != nil {
				t.Errorf("to_roles = %#v, want nil", e.ToRoles)
			}
		}},
		{"data compacted", []byte(`{"type":"admin_heartbeat","version":1,"from":"p","timestamp":"2025-06-01T12:00:00Z","hop_count":0,"data":{ "term" : 4 , "at": "<now>" }}`),
			func(t *testing.T, e gossip.Envelope) {
				if string(e.Data) != `{"term":4,"at":"<now>"}` {
					t.Errorf("data = %s", e.Data)
				}
			}},
		{"exactly the size limit", padTo(t, gossip.MaxMessageBytes), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := gossip.Decode(tt.in, now)
			if err != nil {
				t.Fatalf("Decode = %v", err)
			}
			if tt.check != nil {
				tt.check(t, e)
			}
		})
	}
}

// padTo returns a valid message of exactly n bytes.
func padTo(t *testing.T, n int) []byte {
	t.Helper()
	base := msg(t, set("data", map[string]any{"pad": ""}))
	pad := strings.Repeat("x", n-len(base))
	return msg(t, set("data", map[string]any{"pad": pad}))
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name   string
		in     []byte
		reason gossip.RejectReason
		detail string
	}{
		{"oversized", padTo(t, gossip.MaxMessageBytes+1), gossip.RejectOversized, "1048577 bytes exceeds the limit of 1048576"},
		{"oversized garbage", make([]byte, 2<<20), gossip.RejectOversized, "exceeds the limit"},
		{"empty", nil, gossip.RejectMalformed, "EOF"},
		{"not json", []byte("hello"), gossip.RejectMalformed, "invalid character"},
		{"json array", []byte(`[1,2]`), gossip.RejectMalformed, "cannot unmarshal array"},
		{"json null", []byte(`null`), gossip.RejectMalformed, "version: 0 is not supported"},
		{"invalid utf-8", []byte("{\"type\":\"task_claim\xff\"}"), gossip.RejectMalformed, "not valid UTF-8"},
		{"trailing data", append(msg(t), []byte(` {}`)...), gossip.RejectMalformed, "trailing data"},
		{"unknown field", msg(t, set("signature", "abc")), gossip.RejectMalformed, `unknown field "signature"`},
		{"type not a string", msg(t, set("type", 7)), gossip.RejectMalformed, "cannot unmarshal number"},
		{"missing version", msg(t, del("version")), gossip.RejectMalformed, "version: 0 is not supported, want 1"},
		{"future version", msg(t, set("version", 2)), gossip.RejectMalformed, "version: 2 is not supported"},
		{"missing type", msg(t, del("type")), gossip.RejectMalformed, "type: missing"},
		{"missing from", msg(t, del("from")), gossip.RejectMalformed, "from: missing"},
		{"bad priority", msg(t, set("priority", "critical")), gossip.RejectMalformed, `priority: "critical" must be low, medium, high or urgent`},
		{"negative hops", msg(t, set("hop_count", -1)), gossip.RejectMalformed, "hop_count: -1 is negative"},
		{"fractional hops", msg(t, set("hop_count", 1.5)), gossip.RejectMalformed, "hop_count"},
		{"missing timestamp", msg(t, del("timestamp")), gossip.RejectMalformed, "timestamp: missing"},
		{"bad timestamp", msg(t, set("timestamp", "yesterday")), gossip.RejectMalformed, "yesterday"},
		{"data is a list", msg(t, set("data", []int{1})), gossip.RejectMalformed, "data: must be a JSON object"},
		{"data is a string", msg(t, set("data", "x")), gossip.RejectMalformed, "data: must be a JSON object"},
		{"unknown type", msg(t, set("type", "task_steal")), gossip.RejectUnknownType, `type: "task_steal" is not a known message type`},
		{"wrong case type", msg(t, set("type", "TASK_CLAIM")), gossip.RejectUnknownType, "TASK_CLAIM"},
		{"too old", msg(t, set("timestamp", now.Add(-gossip.MaxAge-time.Second).Format(time.RFC3339))), gossip.RejectStale, "is 5m1s old, limit 5m0s"},
		{"far future", msg(t, set("timestamp", now.Add(gossip.MaxClockSkew+time.Second).Format(time.RFC3339))), gossip.RejectStale, "is 31s in the future, limit 30s"},
		{"year one", msg(t, set("timestamp", "0001-01-01T00:00:01Z")), gossip.RejectStale, "old"},
		{"over hop", msg(t, set("hop_count", gossip.MaxHops+1)), gossip.RejectOverHop, "hop_count: 4 exceeds the limit of 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := gossip.Decode(tt.in, now)
			var rej *gossip.RejectError
			if !errors.As(err, &rej) {
				t.Fatalf("Decode = %+v, %v; want a *RejectError", e, err)
			}
			if rej.Reason != tt.reason || !strings.Contains(rej.Detail, tt.detail) {
				t.Fatalf("rejected (%s) %q, want (%s) containing %q", rej.Reason, rej.Detail, tt.reason, tt.detail)
			}
			if !errors.Is(err, chorus.ErrInvalid) {
				t.Error("rejection does not wrap chorus.ErrInvalid")
			}
			if !reflect.DeepEqual(e, gossip.Envelope{}) {
				t.Errorf("rejected message still returned an envelope: %+v", e)
			}
		})
	}
}

func TestEncode(t *testing.T) {
	body, err := json.Marshal(gossip.AvailabilityBroadcast{
		NodeID: "agent-a", AvailableForWork: true, CurrentTasks: 0, MaxTasks: 2,
		LastActivity: now.Add(-time.Minute), Status: gossip.AvailabilityReady, Timestamp: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	good := gossip.Envelope{
		Type: gossip.TypeAvailabilityBroadcast, From: "12D3KooWPeer", FromRole: "developer",
		ToRoles: []string{"admin"}, Priority: gossip.PriorityLow, Timestamp: now, Data: body,
	}

	b, err := gossip.Encode(good)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"version":1`) || !strings.Contains(string(b), `"type":"availability_broadcast"`) {
		t.Fatalf("Encode = %s", b)
	}
	back, err := gossip.Decode(b, now)
	if err != nil {
		t.Fatal(err)
	}
	good.Version = gossip.Version
	if !reflect.DeepEqual(back, good) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", back, good)
	}
	var a gossip.AvailabilityBroadcast
	if err := back.DecodeData(&a); err != nil || a.NodeID != "agent-a" || a.MaxTasks != 2 || !a.Timestamp.Equal(now) {
		t.Fatalf("DecodeData = %+v, %v", a, err)
	}

	tests := []struct {
		name   string
		edit   func(*gossip.Envelope)
		reason gossip.RejectReason
		detail string
	}{
		{"unknown type", func(e *gossip.Envelope) { e.Type = "gossip_about_gossip" }, gossip.RejectUnknownType, "gossip_about_gossip"},
		{"over hop", func(e *gossip.Envelope) { e.HopCount = 4 }, gossip.RejectOverHop, "hop_count"},
		{"no sender", func(e *gossip.Envelope) { e.From = "" }, gossip.RejectMalformed, "from: missing"},
		{"no timestamp", func(e *gossip.Envelope) { e.Timestamp = time.Time{} }, gossip.RejectMalformed, "timestamp: missing"},
		{"wrong version", func(e *gossip.Envelope) { e.Version = 9 }, gossip.RejectMalformed, "version: 9"},
		{"data not json", func(e *gossip.Envelope) { e.Data = json.RawMessage(`{"a":`) }, gossip.RejectMalformed, "data: not valid JSON"},
		{"data not object", func(e *gossip.Envelope) { e.Data = json.RawMessage(`42`) }, gossip.RejectMalformed, "data: must be a JSON object"},
		{"too big", func(e *gossip.Envelope) {
			e.Data = json.RawMessage(`{"pad":"` + strings.Repeat("x", gossip.MaxMessageBytes) + `"}`)
		}, gossip.RejectOversized, "exceeds the limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := good
			tt.edit(&e)
			_, err := gossip.Encode(e)
			var rej *gossip.RejectError
			if !errors.As(err, &rej) || rej.Reason != tt.reason || !strings.Contains(rej.Detail, tt.detail) {
				t.Fatalf("Encode = %v, want (%s) containing %q", err, tt.reason, tt.detail)
			}
		})
	}
}

func TestDecodeDataTaskProgress(t *testing.T) {
	tests := []struct {
		name   string
		data   map[string]any
		detail string // empty: accepted
	}{
		{"valid", map[string]any{"task_key": "task/github/o/r/1", "agent_id": "a", "status": "working", "fence": 3, "at": "2025-06-01T12:00:00Z",
			"estimated_completion": "2025-06-01T12:30:00Z"}, ""},
		{"unknown field", map[string]any{"task_key": "task/github/o/r/1", "agent_id": "a", "status": "working", "at": "2025-06-01T12:00:00Z", "eta": 5}, `unknown field "eta"`},
		{"bad task key", map[string]any{"task_key": "o/r#1", "agent_id": "a", "status": "working", "at": "2025-06-01T12:00:00Z"}, "task_key:"},
		{"no agent", map[string]any{"task_key": "task/github/o/r/1", "status": "working", "at": "2025-06-01T12:00:00Z"}, "agent_id: missing"},
		{"bad status", map[string]any{"task_key": "task/github/o/r/1", "agent_id": "a", "status": "napping", "at": "2025-06-01T12:00:00Z"}, `status: "napping"`},
		{"negative fence", map[string]any{"task_key": "task/github/o/r/1", "agent_id": "a", "status": "working", "fence": -1, "at": "2025-06-01T12:00:00Z"}, "fence: -1"},
		{"no time", map[string]any{"task_key": "task/github/o/r/1", "agent_id": "a", "status": "working"}, "at: missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := gossip.Decode(msg(t, set("data", tt.data)), now)
			if err != nil {
				t.Fatal(err)
			}
			var p gossip.TaskProgress
			err = e.DecodeData(&p)
			if tt.detail == "" {
				if err != nil || p.Status != chorus.StateWorking || p.Fence != 3 || p.EstimatedCompletion.IsZero() {
					t.Fatalf("DecodeData = %+v, %v", p, err)
				}
				return
			}
			var rej *gossip.RejectError
			if !errors.As(err, &rej) || rej.Reason != gossip.RejectMalformed || !strings.Contains(rej.Detail, tt.detail) {
				t.Fatalf("DecodeData = %v, want malformed containing %q", err, tt.detail)
			}
		})
	}

	e, err := gossip.Decode(msg(t, del("data")), now)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.DecodeData(&gossip.TaskProgress{}); err == nil || !strings.Contains(err.Error(), "data: missing") {
		t.Fatalf("DecodeData without data = %v", err)
	}
}

func TestTaskProgressOmitsUnknownEstimate(t *testing.T) {
	b, err := json.Marshal(gossip.TaskProgress{TaskKey: "task/github/o/r/1", AgentID: "a", Status: chorus.StateWorking, At: now})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "estimated_completion") {
		t.Fatalf("zero estimate was encoded: %s", b)
	}
}

func TestAvailabilityBroadcastValidate(t *testing.T) {
	valid := gossip.AvailabilityBroadcast{NodeID: "a", MaxTasks: 1, Status: gossip.AvailabilityBusy, Timestamp: now}
	tests := []struct {
		name string
		edit func(*gossip.AvailabilityBroadcast)
		want string
	}{
		{"valid", func(*gossip.AvailabilityBroadcast) {}, ""},
		{"over limit allowed", func(a *gossip.AvailabilityBroadcast) { a.CurrentTasks = 3 }, ""},
		{"node", func(a *gossip.AvailabilityBroadcast) { a.NodeID = "" }, "node_id: missing"},
		{"max tasks", func(a *gossip.AvailabilityBroadcast) { a.MaxTasks = 0 }, "max_tasks: 0"},
		{"current tasks", func(a *gossip.AvailabilityBroadcast) { a.CurrentTasks = -1 }, "current_tasks: -1"},
		{"status", func(a *gossip.AvailabilityBroadcast) { a.Status = "idle" }, `status: "idle"`},
		{"timestamp", func(a *gossip.AvailabilityBroadcast) { a.Timestamp = time.Time{} }, "timestamp: missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := valid
			tt.edit(&a)
			err := a.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, chorus.ErrInvalid) {
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
}
