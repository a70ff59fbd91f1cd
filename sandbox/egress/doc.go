// Package egress is the sandbox's network allow-list: a small forward proxy
// (HTTP CONNECT for TLS and anything else over TCP, absolute-URI requests for
// plain HTTP) that lets a sandboxed command reach only the hosts its task's
// policy allows.
//
// The sandbox runner puts such a container on an internal network, which has
// no route out; the only address the container can reach is the proxy,
// listening on the network's gateway, and the proxy refuses every host that
// is not on the run's list with 403. One Proxy serves one run, so lists never
// mix between tasks.
//
// Allow-list entries are "host", "host:port" or "*.domain" (any subdomain);
// a host without a port allows every port. Matching is on the name the
// client asks for, case-insensitive; the proxy resolves it itself.
//
// Concurrency: Serve handles each connection on its own goroutine; Close
// stops the listener and waits for open tunnels to end.
package egress
