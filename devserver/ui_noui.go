//go:build noui

package devserver

import (
	"context"
	"log/slog"
)

// uiBuiltIn reports whether the Web UI is compiled in (build without the
// noui tag).
const uiBuiltIn = false

// startUI only logs that the UI is missing: this binary was built with the
// noui tag, which leaves out the UI server and its ~280 MB of assets.
func startUI(_ context.Context, cfg Config, _ string) (string, func() error, error) {
	if cfg.UIPort != UIDisabled {
		cfg.Logger.Warn("web ui not built in (built with tag noui)", slog.Int("ui_port", cfg.UIPort))
	}
	return "", nil, nil
}
