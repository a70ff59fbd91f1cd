package workflows_test

import (
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"chorus/workflows"
)

// TestReplayRecordedHistories replays histories recorded from real runs
// (tests/e2e with CHORUS_RECORD_HISTORY=1): a change to TaskWorkflow that
// would break running workflows fails here. Behaviour changes go behind
// workflow.GetVersion, and the old histories must keep replaying.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	// For each workflow version (v0: scripted only, v1: fallback ladder,
	// v2: local provider steps and collaboration, current: selection by
	// score, re-placement and HMMM rooms): completed, failed script,
	// cancelled, killed and retried, and from v1 on the two ladder runs;
	// collaboration from v2 on, and the dead agent replaced by another.
	if len(files) < 24 {
		t.Fatalf("found %d recorded histories in testdata, want at least 24", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(workflows.TaskWorkflow, workflow.RegisterOptions{Name: workflows.TaskWorkflowName})
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
				t.Fatalf("replay %s: %v", f, err)
			}
		})
	}
}
