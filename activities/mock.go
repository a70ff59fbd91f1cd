package activities

import (
	"context"

	"chorus"
)

// MockInput asks for simulated execution.
type MockInput struct {
	ExecuteInput
	// Succeed is the success the mock reports; false unless the agent's
	// config says otherwise.
	Succeed bool `json:"succeed"`
}

// Mock is the last rung of the ladder: it does no work and says so.
type Mock struct {
	// Metrics, when set, counts the simulated executions.
	Metrics *Metrics
}

// ExecuteMock returns a result labelled execution_type "mock". It runs
// nothing, so it never reports real work: no commands, no files.
func (m *Mock) ExecuteMock(ctx context.Context, in MockInput) (chorus.Result, error) {
	done := m.Metrics.execution(chorus.ExecMock)
	r := m.result(in)
	done(r, nil)
	return r, nil
}

func (m *Mock) result(in MockInput) chorus.Result {
	msg := "simulated execution (mock): no real work was done"
	return chorus.Result{
		Success:          in.Succeed,
		Message:          msg,
		ExecutionType:    chorus.ExecMock,
		CommandsExecuted: []string{},
		FilesGenerated:   []string{},
		AgentID:          in.AgentID,
	}
}
