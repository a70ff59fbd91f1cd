// Package shhh (SHHH, spec section 9) redacts secrets inline, before text or
// values are persisted or fanned out: every gossip publish, log line, audit
// entry and AI transcript goes through a Redactor first.
//
// A Redactor applies regular-expression rules: built-in ones (DefaultRules:
// OpenAI and GitHub tokens, AWS keys, generic api_key and token assignments,
// bearer and Authorization headers, JWTs, PEM private keys, passwords in
// URLs and in assignments) plus custom rules with a severity and tags. Each
// secret becomes "[REDACTED]" (Config.Replacement) and yields a Finding with
// its rule, byte offsets, JSON path (for RedactValue) and the SHA-256 of the
// secret, so audits can match a known leaked credential without storing it.
// NewHandler wraps a slog.Handler so that nothing logged through it escapes
// redaction.
//
// Invariants:
//   - A Finding never holds the secret, only its location and hash.
//   - Only the secret part of a match is replaced: "password=", "Bearer ",
//     the user of a URL and the BEGIN/END lines of a PEM block stay.
//   - No byte matched by any rule survives: overlapping matches of different
//     rules merge into one redaction, named after the match starting first.
//   - Redacting is idempotent: a secret that already reads as the
//     replacement is not found again, so redacting twice changes nothing.
//   - Inputs are never modified: Redact, RedactBytes and RedactValue return
//     copies. RedactValue fails closed: a value it cannot encode is replaced
//     as a whole.
//   - Statistics count bytes scanned and findings by rule and by severity;
//     Redactions equals the sum of either map.
//
// Metrics: with Config.Metrics a Redactor serves chorus_shhh_* metrics:
// its statistics (bytes scanned, redactions by rule and severity, rules in
// force) read at scrape time, and the number, duration and size of scans.
//
// Concurrency: a Redactor's rules are compiled once by New and never change;
// its statistics are atomic counters. All methods are safe for concurrent
// use by any number of goroutines, and so is the handler from NewHandler.
package shhh
