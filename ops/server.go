package ops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"chorus"
)

// Server defaults.
const (
	// DefaultAddr is the ops port on loopback only (SPEC section 1): health
	// and metrics are for the local operator and scraper unless configured
	// otherwise.
	DefaultAddr = "127.0.0.1:9090"
	// ShutdownTimeout is how long in-flight requests get once the ctx ends;
	// ops requests are short, so anything longer is stuck.
	ShutdownTimeout = 5 * time.Second
	// ReadHeaderTimeout stops slow-header clients from holding connections.
	ReadHeaderTimeout = 5 * time.Second
	// IdleTimeout closes keep-alive connections a scraper forgot.
	IdleTimeout = 2 * time.Minute
)

// ServerConfig configures the ops HTTP server.
type ServerConfig struct {
	// Addr is host:port to listen on.
	Addr string
	// Logger receives server events; nil discards them.
	Logger *slog.Logger
}

// DefaultServerConfig returns the defaults: DefaultAddr, no logger.
func DefaultServerConfig() ServerConfig {
	return ServerConfig{Addr: DefaultAddr}
}

// Validate checks that Addr is host:port with a port in 0..65535.
func (c ServerConfig) Validate() error {
	_, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return fmt.Errorf("%w: ops addr: %q must be host:port: %v", chorus.ErrInvalid, c.Addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%w: ops addr: port %q of %q must be a number in 0..65535", chorus.ErrInvalid, port, c.Addr)
	}
	return nil
}

// ListenAndServe validates cfg, listens on cfg.Addr and serves h until ctx
// is done; see Listen and Serve.
func ListenAndServe(ctx context.Context, cfg ServerConfig, h http.Handler) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	ln, err := Listen(cfg.Addr)
	if err != nil {
		return err
	}
	return Serve(ctx, ln, h, cfg.Logger)
}

// Listen opens a TCP listener on addr. When the address is taken the error
// names it and says it is in use; the cause stays available to errors.Is.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("listen on %s: address already in use (another process, perhaps another worker, holds it): %w", addr, err)
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// Serve serves h on ln until ctx is done, then shuts down gracefully,
// giving in-flight requests ShutdownTimeout. It returns nil after a clean
// shutdown, and an error if serving fails or the shutdown times out. Serve
// closes ln. A nil logger discards logs.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		IdleTimeout:       IdleTimeout,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	addr := ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.Info("ops server listening", "addr", addr)

	select {
	case err := <-served:
		return fmt.Errorf("serve ops on %s: %w", addr, err)
	case <-ctx.Done():
	}

	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	shutdownErr := srv.Shutdown(sctx)
	if shutdownErr != nil {
		shutdownErr = errors.Join(
			fmt.Errorf("shut down ops server on %s: %w", addr, shutdownErr),
			srv.Close(),
		)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		shutdownErr = errors.Join(shutdownErr, fmt.Errorf("serve ops on %s: %w", addr, err))
	}
	if shutdownErr != nil {
		return shutdownErr
	}
	logger.Info("ops server stopped", "addr", addr)
	return nil
}
