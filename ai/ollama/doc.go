// Package ollama is a chat client for an Ollama server's /api/chat endpoint,
// streaming (newline-delimited JSON) or not.
//
// Invariants:
//   - The API key, optional for Ollama and used when it sits behind an
//     authenticating proxy, is read once in New from an environment variable
//     or a file, sent only as "Authorization: Bearer", and never printed or
//     logged: a Client redacts it in String, GoString, Format and LogValue,
//     and errors have it cleared.
//   - Every error names the model and the endpoint and wraps one of the
//     sentinels of package ai (declared in ai/internal/chat).
//   - One Chat call lasts at most Config.Timeout (default 120 s), retries
//     included; 429, 5xx and transport failures are retried under
//     Config.Retry.
//
// Concurrency: a Client is immutable after New and safe for concurrent use
// by multiple goroutines.
package ollama
