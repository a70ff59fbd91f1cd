package activities

import (
	"context"
	"errors"

	"go.temporal.io/sdk/temporal"

	"chorus"
)

// Application error types. The workflow branches on them; they are the only
// failures that are not retried.
const (
	ErrTypeAlreadyClaimed    = "AlreadyClaimed"
	ErrTypeNotFound          = "NotFound"
	ErrTypeFenced            = "Fenced"
	ErrTypeInvalid           = "Invalid"
	ErrTypeNoRunnableContent = "NoRunnableContent"
	// ErrTypeModelUnavailable: the model does not exist on its endpoint,
	// or the endpoint refuses us (wrong key).
	ErrTypeModelUnavailable = "ModelUnavailable"
	// ErrTypeModelGarbage: the model's replies could not be used, even
	// after a correction.
	ErrTypeModelGarbage = "ModelGarbage"
	// ErrTypeBudgetExhausted: a task or daily budget stopped the rung
	// before a call.
	ErrTypeBudgetExhausted = "budget_exhausted"
)

// Claimer takes and gives back a task on its provider.
type Claimer interface {
	Claim(ctx context.Context, key chorus.TaskKey, agentID string) (fence int64, err error)
	Release(ctx context.Context, key chorus.TaskKey, fence int64) error
}

// Reporter moves a claimed task through its states.
type Reporter interface {
	Start(ctx context.Context, key chorus.TaskKey, fence int64) error
	Complete(ctx context.Context, key chorus.TaskKey, fence int64, r chorus.Result) error
	Fail(ctx context.Context, key chorus.TaskKey, fence int64, reason string) error
}

// Canceller ends a task on an operator's request.
type Canceller interface {
	Cancel(ctx context.Context, key chorus.TaskKey, reason string) error
}

// Tracker is everything the task workflow needs from a provider.
type Tracker interface {
	Claimer
	Reporter
	Canceller
}

// classify turns provider sentinels into non-retryable application errors
// and leaves everything else retryable.
func classify(err error) error {
	if err == nil {
		return nil
	}
	for _, c := range []struct {
		sentinel error
		typ      string
	}{
		{chorus.ErrAlreadyClaimed, ErrTypeAlreadyClaimed},
		{chorus.ErrNotFound, ErrTypeNotFound},
		{chorus.ErrFenced, ErrTypeFenced},
		{chorus.ErrInvalid, ErrTypeInvalid},
		{chorus.ErrNoRunnableContent, ErrTypeNoRunnableContent},
	} {
		if errors.Is(err, c.sentinel) {
			return temporal.NewNonRetryableApplicationError(err.Error(), c.typ, err)
		}
	}
	return err
}
