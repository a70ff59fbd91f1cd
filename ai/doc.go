// Package ai is the AI rung of task execution: chat clients for Ollama and
// for any OpenAI-compatible endpoint behind one Client interface, and Select,
// which orders the configured models into a primary and its alternates for
// the fallback ladder (SPEC section 4).
//
// The vocabulary (Message, Request, Response, RetryPolicy and the sentinel
// errors) is declared in ai/internal/chat and aliased here, so that the
// implementations in ai/ollama and ai/openai speak the same types while New
// can build either of them.
//
// Invariants:
//   - An API key is read once, in New, from the environment variable or the
//     file a Model names; never from flags. It is sent only in the
//     Authorization header and never appears in a String, GoString, fmt
//     verb, slog record or error message.
//   - Every error from Chat names the model and the endpoint and wraps one
//     of ErrUnreachable, ErrModelNotFound, ErrMalformedReply,
//     ErrRateLimited, ErrUnauthorized, ErrServer or ErrBadRequest (or the
//     caller's context error once the caller gave up), so the fallback
//     ladder can branch with errors.Is and record a reason.
//   - Rate limits (429), server errors (5xx) and transport failures are
//     retried under the model's RetryPolicy; other 4xx never are; nothing is
//     retried once the context is done. One Chat call lasts at most the
//     model's Timeout, retries included.
//   - Select keeps configuration order within each group and never drops a
//     model.
//
// Metrics: a Model with Metrics (NewMetrics) gets a client that counts and
// times its calls by model, provider and result and counts tokens
// (chorus_ai_*); it prints and logs as the client it wraps.
//
// Concurrency: the clients New returns are immutable and safe for
// concurrent use by multiple goroutines; Model and the other types are
// plain values.
package ai
