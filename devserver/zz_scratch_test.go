package devserver_test

import (
	"net/http"
	"testing"

	"chorus/devserver"
)

func TestScratchHosts(t *testing.T) {
	for _, host := range []string{"::1", "0.0.0.0"} {
		cfg := testConfig(t)
		cfg.Host = host
		s, err := devserver.Start(t.Context(), cfg)
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		c := dial(t, s.FrontendAddr())
		_, err = c.CheckHealth(t.Context(), nil)
		c.Close()
		resp, herr := http.Get(s.UIURL() + "/api/v1/namespaces")
		status := ""
		if herr == nil {
			status = resp.Status
			resp.Body.Close()
		}
		t.Logf("%s: frontend %s health err %v; ui %s %s %v", host, s.FrontendAddr(), err, s.UIURL(), status, herr)
		_ = s.Stop()
	}
}
