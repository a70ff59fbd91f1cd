// Package audit is a node's append-only, tamper-evident audit log (the
// "hypercore" of SPEC section 8): a file of JSON lines, one Entry per line,
// each hashed, chained to the one before and signed with the node's Ed25519
// key. Verify walks a log and names the first entry that fails; Query reads
// entries by type, author, time and index range.
//
// Layout: under a node's data directory the log is DefaultDir/LogFile
// (audit/audit.log) and the key DefaultDir/KeyFile (audit/node.key, PEM
// PKCS#8, mode 0600); LogPath and KeyPath build them. LoadOrCreateKey makes
// the key on first use, LoadPublicKey reads the public half for Verify.
//
// Invariants of a valid log:
//   - Entry i sits on line i; indexes start at 1 and have no gaps.
//   - Hash is the hex SHA-256 of the tag "chorus-audit-v1" and then index
//     (decimal), timestamp (RFC 3339 with nanoseconds, UTC), author, type,
//     data (compact JSON) and prev_hash, each preceded by its length as 8
//     big-endian bytes; re-encoding a line does not change it.
//   - Signature is the base64 Ed25519 signature of the 32 hash bytes with
//     the node key; PrevHash is the previous entry's Hash, "" for entry 1.
//   - Type is one of the Type* constants; data was passed through
//     Options.Redact before it was hashed, so secrets never reach the disk.
//   - Lines are only ever added. Append writes a whole line with one write
//     and fsyncs it before returning, so an acknowledged entry survives a
//     crash. The only damage a crash can do is an incomplete final line (no
//     newline); Verify reports it in TornBytes without failing, and Open cuts
//     it off. Open refuses, without touching the file, a log whose complete
//     lines do not verify (ErrCorrupt).
//
// Deleting entries from the end cannot be detected from the file alone;
// anchor Report.LastHash elsewhere (e.g. gossip it) for that.
//
// Concurrency: a Log is safe for concurrent use; one mutex serialises
// appends, so indexes are dense in the order the lock is taken. A log file
// must have a single writer process. Verify and Query only read and may run
// while a Log appends; they ignore a line still being written.
package audit
