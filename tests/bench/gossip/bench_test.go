package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"
)

// TestSmallRun runs the bench on 4 nodes in both mesh modes and checks the
// report: every message delivered on both paths, the contract's fields
// present, the mode's CPU figures and only those.
func TestSmallRun(t *testing.T) {
	for _, mesh := range []string{meshShared, meshSeparate} {
		t.Run(mesh, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var out bytes.Buffer
			args := []string{"-nodes", "4", "-messages", "20", "-rounds", "2", "-rate", "100", "-mesh", mesh, "-seed", "7"}
			if err := run(ctx, args, &out, io.Discard); err != nil {
				t.Fatalf("run: %v", err)
			}
			var rep map[string]json.RawMessage
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
				t.Fatalf("report %q: %v", out.String(), err)
			}
			for _, f := range []string{"nodes", "messages", "delivery_ratio", "p50_ms", "p99_ms", "raw_p50_ms", "raw_p99_ms", "p99_ratio"} {
				if _, ok := rep[f]; !ok {
					t.Errorf("report has no %s: %s", f, out.String())
				}
			}
			for _, f := range []string{"delivery_ratio", "raw_delivery_ratio"} {
				if string(rep[f]) != "1" {
					t.Errorf("%s = %s, want 1", f, rep[f])
				}
			}
			if got := string(rep["audit_entries_verified"]); got != "46" { // (20 + 3 probes) x 2 rounds
				t.Errorf("audit_entries_verified = %s, want 46", got)
			}
			_, shared := rep["shared_cpu_us_per_delivery"]
			_, perPath := rep["raw_cpu_us_per_delivery"]
			if shared != (mesh == meshShared) || perPath != (mesh == meshSeparate) {
				t.Errorf("mode %s: shared CPU figure %v, per-path %v: %s", mesh, shared, perPath, out.String())
			}
			if !strings.Contains(string(rep["mesh"]), mesh) {
				t.Errorf("mesh = %s, want %s", rep["mesh"], mesh)
			}
		})
	}
}

func TestOptionsRefuseBadMesh(t *testing.T) {
	_, err := parseOptions([]string{"-mesh", "both"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "-mesh") {
		t.Fatalf("parseOptions(-mesh both) = %v, want an error naming -mesh", err)
	}
}
