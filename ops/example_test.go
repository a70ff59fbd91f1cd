package ops_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"chorus/ops"
)

func ExampleHealth() {
	h := ops.NewHealth(nil, nil)
	_ = h.Register(ops.Check{Name: "temporal", Critical: true, Func: func(context.Context) error { return nil }})
	_ = h.Register(ops.Check{Name: "docker", Func: func(context.Context) error { return errors.New("daemon not reachable") }})
	h.RunChecks(context.Background())

	mux := http.NewServeMux()
	h.Routes(mux)
	for _, path := range []string{"/health", "/health/ready"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		fmt.Println(path, rec.Code)
	}
	fmt.Println(h.Snapshot().Status)
	// Output:
	// /health 200
	// /health/ready 200
	// degraded
}
