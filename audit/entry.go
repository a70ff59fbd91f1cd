package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"time"
)

// Layout of the audit files under a node's data directory, shared by the
// worker that writes the log and the starter that reads it.
const (
	DefaultDir = "audit"     // sub-directory of the data directory
	LogFile    = "audit.log" // the log, one JSON entry per line
	KeyFile    = "node.key"  // the node's Ed25519 key, PEM PKCS#8, mode 0600
)

// LogPath is <dataDir>/audit/audit.log.
func LogPath(dataDir string) string { return filepath.Join(dataDir, DefaultDir, LogFile) }

// KeyPath is <dataDir>/audit/node.key.
func KeyPath(dataDir string) string { return filepath.Join(dataDir, DefaultDir, KeyFile) }

// Entry types (SPEC section 8). Append and Query reject any other.
const (
	TypeTaskAnnounced       = "task_announced"
	TypeTaskClaimed         = "task_claimed"
	TypeTaskProgress        = "task_progress"
	TypeTaskCompleted       = "task_completed"
	TypeTaskFailed          = "task_failed"
	TypePlanProposed        = "plan_proposed"
	TypeObjectionRaised     = "objection_raised"
	TypeCollaboration       = "collaboration"
	TypeConsensusReached    = "consensus_reached"
	TypeEscalation          = "escalation"
	TypeTaskHelpRequested   = "task_help_requested"
	TypeTaskHelpOffered     = "task_help_offered"
	TypeTaskHelpReceived    = "task_help_received"
	TypePeerJoined          = "peer_joined"
	TypePeerLeft            = "peer_left"
	TypeCapabilityBroadcast = "capability_broadcast"
	TypeNetworkEvent        = "network_event"
	TypeSystemError         = "system_error"
)

// Types returns every entry type, in SPEC order.
func Types() []string {
	return []string{
		TypeTaskAnnounced, TypeTaskClaimed, TypeTaskProgress, TypeTaskCompleted, TypeTaskFailed,
		TypePlanProposed, TypeObjectionRaised, TypeCollaboration, TypeConsensusReached, TypeEscalation,
		TypeTaskHelpRequested, TypeTaskHelpOffered, TypeTaskHelpReceived,
		TypePeerJoined, TypePeerLeft, TypeCapabilityBroadcast, TypeNetworkEvent, TypeSystemError,
	}
}

// ValidType reports whether t is one of the entry types.
func ValidType(t string) bool {
	switch t {
	case TypeTaskAnnounced, TypeTaskClaimed, TypeTaskProgress, TypeTaskCompleted, TypeTaskFailed,
		TypePlanProposed, TypeObjectionRaised, TypeCollaboration, TypeConsensusReached, TypeEscalation,
		TypeTaskHelpRequested, TypeTaskHelpOffered, TypeTaskHelpReceived,
		TypePeerJoined, TypePeerLeft, TypeCapabilityBroadcast, TypeNetworkEvent, TypeSystemError:
		return true
	}
	return false
}

func checkType(t string) error {
	if !ValidType(t) {
		return fmt.Errorf("type: unknown entry type %q", t)
	}
	return nil
}

// Entry is one record of the log, stored as one JSON line.
type Entry struct {
	Index     int64           `json:"index"`     // 1, 2, 3, ... with no gaps
	Timestamp time.Time       `json:"timestamp"` // UTC
	Author    string          `json:"author"`    // the node (agent) that wrote it
	Type      string          `json:"type"`      // one of the Type* constants
	Data      json.RawMessage `json:"data"`      // compact JSON, already redacted
	PrevHash  string          `json:"prev_hash"` // Hash of the previous entry; "" for index 1
	Hash      string          `json:"hash"`      // hex SHA-256 of the canonical encoding
	Signature string          `json:"signature"` // base64 Ed25519 signature of the raw hash bytes
}

// hashVersion separates this encoding from any later one.
const hashVersion = "chorus-audit-v1"

// sum computes the entry's hash over a canonical encoding of every field
// but Hash and Signature: each field, in declaration order and preceded by
// the version tag, is written as an 8-byte big-endian length and its bytes.
// Index is decimal, Timestamp is RFC 3339 with nanoseconds in UTC and Data
// is compacted JSON, so re-encoding a line does not change its hash.
func (e *Entry) sum() [sha256.Size]byte {
	h := sha256.New()
	field := func(b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	data := e.Data
	var buf bytes.Buffer
	if json.Compact(&buf, e.Data) == nil {
		data = buf.Bytes()
	}
	field([]byte(hashVersion))
	field(strconv.AppendInt(nil, e.Index, 10))
	field([]byte(e.Timestamp.UTC().Format(time.RFC3339Nano)))
	field([]byte(e.Author))
	field([]byte(e.Type))
	field(data)
	field([]byte(e.PrevHash))
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// hexSum is sum in the form stored in Hash.
func (e *Entry) hexSum() string {
	s := e.sum()
	return hex.EncodeToString(s[:])
}
