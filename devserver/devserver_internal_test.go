package devserver

import (
	"log/slog"
	"net"
	"strings"
	"testing"
)

// A frontend port taken after Start's check makes the server log a fatal
// record; that must come back as an error, not end the test process.
func TestLaunchFrontendPortTakenAfterCheck(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.FrontendPort = busy.Addr().(*net.TCPAddr).Port
	cfg.UIPort = UIDisabled
	cfg.Logger = slog.New(slog.DiscardHandler)

	s, err := launch(t.Context(), cfg)
	if err == nil {
		_ = s.Stop()
		t.Fatal("launch on a busy frontend port succeeded")
	}
	if !strings.Contains(err.Error(), "Failed to start gRPC listener") {
		t.Errorf("error %q does not report the failed listener", err)
	}
	t.Logf("error: %v", err)
}
