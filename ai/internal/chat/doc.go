// Package chat holds what the Ollama and OpenAI clients share: the request
// and response vocabulary (re-exported by package ai), the sentinel errors,
// the API key holder and the HTTP call with retries.
//
// It exists so that ai can build both clients while both clients speak in
// ai's types: ai imports ollama and openai, and all three import chat.
//
// Invariants:
//   - Every error a Caller returns names the provider, the model and the
//     endpoint, and wraps exactly one of the sentinels (or the caller's
//     context error when the caller gave up).
//   - The API key lives only in a secret.Secret, which prints, formats, logs and
//     marshals as [REDACTED]; server replies quoted in errors and logs have
//     the key replaced before they are used.
//   - A call is retried only on 429, 5xx and transport failures, never after
//     its context is done, and never sooner than a Retry-After asks.
//
// Concurrency: all types are immutable after construction; a Caller is safe
// for concurrent use by multiple goroutines.
package chat
