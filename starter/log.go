package main

import "log/slog"

// discardLogger silences the SDK's client logs; the CLI reports errors itself.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
