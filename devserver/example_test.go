package devserver_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"chorus/devserver"
)

// Start a server on the default ports with its data in a directory that
// survives restarts, then dial it with the SDK. (Not run by go test: it needs
// ports 7233 and 8233.)
func ExampleStart() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg := devserver.DefaultConfig()
	cfg.DataDir = filepath.Join(os.TempDir(), "chorus-temporal")
	cfg.Logger = logger

	s, err := devserver.Start(context.Background(), cfg)
	if err != nil {
		logger.Error("start temporal", slog.Any("error", err))
		return
	}
	defer func() {
		if err := s.Stop(); err != nil {
			logger.Error("stop temporal", slog.Any("error", err))
		}
	}()

	c, err := client.Dial(client.Options{
		HostPort:  s.FrontendAddr(),
		Namespace: cfg.Namespace,
		Logger:    sdklog.NewStructuredLogger(logger),
	})
	if err != nil {
		logger.Error("dial temporal", slog.Any("error", err))
		return
	}
	defer c.Close()
	fmt.Println("web ui:", s.UIURL())
}
