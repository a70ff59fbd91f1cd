//go:build !noui

package devserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uiopts "github.com/temporalio/ui-server/v2/server/server_options"
)

// uiBuiltIn reports whether the Web UI is compiled in (build without the
// noui tag).
const uiBuiltIn = true

// startUI starts the Web UI on cfg.Host:cfg.UIPort, proxying to the frontend
// at frontendAddr, and waits until it accepts connections. It returns the
// UI's URL and a function that stops it, or "" and nil when the UI is
// disabled. The port must have been checked: a failed bind in the UI server
// exits the process.
func startUI(ctx context.Context, cfg Config, frontendAddr string) (string, func() error, error) {
	if cfg.UIPort == UIDisabled {
		return "", nil, nil
	}
	host := cfg.Host
	if strings.Contains(host, ":") {
		// The UI server formats "host:port" itself, without brackets.
		host = "[" + host + "]"
	}
	ui, err := newUI(&uiconfig.Config{
		Host:                host,
		Port:                cfg.UIPort,
		TemporalGRPCAddress: frontendAddr,
		EnableUI:            true,
		// Served over plain HTTP, so the CSRF cookie must not be Secure.
		CORS:             uiconfig.CORS{CookieInsecure: true},
		HideLogs:         true,
		DefaultNamespace: cfg.Namespace,
	})
	if err != nil {
		return "", nil, fmt.Errorf("devserver: create ui server: %w", err)
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		// Returns nil once Stop closes the server; any other outcome is
		// handled inside (by exiting the process).
		_ = ui.Start()
	}()
	stop := func() error {
		// Closing before Start has bound the port makes Start return at once,
		// so waiting for done cannot hang.
		ui.Stop()
		<-done
		return nil
	}

	addr := net.JoinHostPort(cfg.dialHost(), strconv.Itoa(cfg.UIPort))
	if err := waitAccepting(ctx, addr); err != nil {
		return "", nil, fmt.Errorf("devserver: wait for ui %s: %w", addr, errors.Join(err, stop()))
	}
	return "http://" + addr, stop, nil
}

// newUI builds the UI server, which panics on invalid configuration.
func newUI(c *uiconfig.Config) (ui *uiserver.Server, err error) {
	defer recoverInto(&err)
	return uiserver.NewServer(uiopts.WithConfigProvider(c)), nil
}
