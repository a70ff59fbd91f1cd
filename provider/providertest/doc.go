// Package providertest holds the claim-race harness every task provider
// must pass: several workers race, many times, for the same tasks through
// the provider's own API, the way agents do (list open tasks, claim, move
// on after a lost race, start, complete), and Race checks that each task
// had exactly one winner at a time, was completed exactly once, and that
// none was lost or left open. Some tasks are released by their first
// winner and claimed again, and the stale fence is checked to be refused.
//
// It runs against the SQLite board, the github fake and the gitea fake
// (each provider's race test) and is meant for any new provider.
//
// Concurrency: Race starts Workers goroutines and waits for them; the
// providers it is given must be safe for concurrent use (or distinct per
// worker, as Open allows).
package providertest
