// Package openai is a chat client for any OpenAI-compatible
// /v1/chat/completions endpoint (OpenAI, vLLM, LiteLLM, llama.cpp server,
// Ollama's compatibility layer, ...), streaming (Server-Sent Events) or not.
//
// Invariants:
//   - The API key is read once in New from an environment variable or a
//     file, sent only as "Authorization: Bearer", and never printed or
//     logged: a Client redacts it in String, GoString, Format and LogValue,
//     and errors have it cleared, even when a server quotes it back.
//   - Every error names the model and the endpoint and wraps one of the
//     sentinels of package ai (declared in ai/internal/chat). A reply in
//     any other shape (an HTML page, no choices, invalid JSON, a stream
//     without [DONE]) is ErrMalformedReply.
//   - One Chat call lasts at most Config.Timeout (default 120 s), retries
//     included; 429, 5xx and transport failures are retried under
//     Config.Retry.
//
// Concurrency: a Client is immutable after New and safe for concurrent use
// by multiple goroutines.
package openai
