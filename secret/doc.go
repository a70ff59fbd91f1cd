// Package secret holds credentials (API keys, tokens, webhook secrets) so
// that they cannot leak by accident: a Secret prints, formats, logs and
// encodes as [REDACTED], and Scrub removes its value from error text. Load
// reads one from an environment variable or a file, never from a flag or a
// config value, with errors that name the field and the source but never
// the value.
//
// Concurrency: a Secret is an immutable value, safe to share.
package secret
