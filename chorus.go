package chorus

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors. Providers and activities wrap them with %w; callers branch
// with errors.Is.
var (
	// ErrAlreadyClaimed is returned when a claim loses the race: another
	// agent holds the task.
	ErrAlreadyClaimed = errors.New("already claimed")
	// ErrNotFound is returned for a task key that does not exist.
	ErrNotFound = errors.New("not found")
	// ErrFenced is returned when a write carries a fencing token that is no
	// longer current (the claim was taken over).
	ErrFenced = errors.New("stale fencing token")
	// ErrInvalid marks bad input; the wrapping message names the field.
	ErrInvalid = errors.New("invalid")
	// ErrNoRunnableContent is returned when a task holds nothing that can be
	// executed (no script block and no other rung available).
	ErrNoRunnableContent = errors.New("no runnable content")
)

// TaskState is where a task is in its life on the provider.
type TaskState string

// Task states. Completed, Failed and Cancelled are terminal.
const (
	StateOpen      TaskState = "open"
	StateClaimed   TaskState = "claimed"
	StateWorking   TaskState = "working"
	StateCompleted TaskState = "completed"
	StateFailed    TaskState = "failed"
	StateCancelled TaskState = "cancelled"
)

// Terminal reports whether no further transition is possible.
func (s TaskState) Terminal() bool {
	return s == StateCompleted || s == StateFailed || s == StateCancelled
}

// Valid reports whether s is one of the known states.
func (s TaskState) Valid() bool {
	switch s {
	case StateOpen, StateClaimed, StateWorking, StateCompleted, StateFailed, StateCancelled:
		return true
	}
	return false
}

// Task is one unit of work as a provider stores it.
type Task struct {
	Provider    string    `json:"provider"`
	Repository  string    `json:"repository"`
	Number      int       `json:"number"`
	Title       string    `json:"title"`
	Description string    `json:"description,omitempty"`
	State       TaskState `json:"state"`
	Labels      []string  `json:"labels,omitempty"`
	Assignee    string    `json:"assignee,omitempty"`
	Priority    int       `json:"priority"`
	Role        string    `json:"role,omitempty"`
	Expertise   []string  `json:"expertise,omitempty"`
	Type        string    `json:"type,omitempty"`
	ProjectID   string    `json:"project_id,omitempty"`
	// Model names the model the AI rung should try first; empty means the
	// agent picks by its role.
	Model string `json:"model,omitempty"`
	// AllowHosts is the task's network policy: the hosts its sandbox may
	// reach ("host", "host:port", "*.domain"); empty means no network.
	AllowHosts []string `json:"allow_hosts,omitempty"`
	// Dependencies are the keys of tasks this one waits for (from
	// "depends on #N" in an issue's text); empty when none.
	Dependencies []string  `json:"dependencies,omitempty"`
	Fence        int64     `json:"fence,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	Result       *Result   `json:"result,omitempty"`
	Error        string    `json:"error,omitempty"`
}

// Key returns the task's key, which is also its workflow ID.
func (t Task) Key() TaskKey {
	return TaskKey{Provider: t.Provider, Repository: t.Repository, Number: t.Number}
}

// MaxPriority is the highest task priority; priorities run 0..MaxPriority.
const MaxPriority = 10

// Validate checks the fields a new task must have and names the bad one.
func (t Task) Validate() error {
	switch {
	case strings.TrimSpace(t.Title) == "":
		return fmt.Errorf("%w: title: must not be empty", ErrInvalid)
	case t.Priority < 0 || t.Priority > MaxPriority:
		return fmt.Errorf("%w: priority: %d is outside 0..%d", ErrInvalid, t.Priority, MaxPriority)
	case t.Repository != "" && !repoPattern.MatchString(t.Repository):
		return fmt.Errorf("%w: repository: %q must be owner/name or name of [A-Za-z0-9._-]", ErrInvalid, t.Repository)
	}
	if t.Model != "" && !modelPattern.MatchString(t.Model) {
		return fmt.Errorf("%w: model: %q must be a model name of [A-Za-z0-9._:/-]", ErrInvalid, t.Model)
	}
	for i, h := range t.AllowHosts {
		if !hostPattern.MatchString(h) {
			return fmt.Errorf("%w: allow_hosts[%d]: %q must be host, host:port or *.domain", ErrInvalid, i, h)
		}
	}
	return nil
}

var modelPattern = regexp.MustCompile(`^[A-Za-z0-9._:/-]{1,128}$`)

var hostPattern = regexp.MustCompile(`^(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$`)

var repoPattern = regexp.MustCompile(`^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)?$`)

// TaskKey identifies a task across providers: task/<provider>/<repo>/<number>.
// The repository may contain one slash (owner/name).
type TaskKey struct {
	Provider   string
	Repository string
	Number     int
}

// String formats the key as task/<provider>/<repo>/<number>.
func (k TaskKey) String() string {
	return fmt.Sprintf("task/%s/%s/%d", k.Provider, k.Repository, k.Number)
}

// ParseTaskKey parses the form produced by TaskKey.String.
func ParseTaskKey(s string) (TaskKey, error) {
	rest, ok := strings.CutPrefix(s, "task/")
	if !ok {
		return TaskKey{}, fmt.Errorf("%w: task key %q: must start with task/", ErrInvalid, s)
	}
	provider, rest, ok := strings.Cut(rest, "/")
	if !ok || provider == "" {
		return TaskKey{}, fmt.Errorf("%w: task key %q: missing provider", ErrInvalid, s)
	}
	i := strings.LastIndex(rest, "/")
	if i <= 0 {
		return TaskKey{}, fmt.Errorf("%w: task key %q: missing repository or number", ErrInvalid, s)
	}
	repo, num := rest[:i], rest[i+1:]
	n, err := strconv.Atoi(num)
	if err != nil || n <= 0 {
		return TaskKey{}, fmt.Errorf("%w: task key %q: number %q must be a positive integer", ErrInvalid, s, num)
	}
	if !repoPattern.MatchString(repo) {
		return TaskKey{}, fmt.Errorf("%w: task key %q: bad repository %q", ErrInvalid, s, repo)
	}
	return TaskKey{Provider: provider, Repository: repo, Number: n}, nil
}

// Execution types recorded in Result.ExecutionType.
const (
	ExecScripted = "scripted"
	ExecAI       = "ai"
	ExecMock     = "mock"
	ExecNone     = "none"
)

// Result is the outcome of executing a task. Large outputs stay on disk;
// OutputTail is bounded and OutputRef points at the full log.
type Result struct {
	Success          bool          `json:"success"`
	Message          string        `json:"message"`
	ExecutionType    string        `json:"execution_type"`
	DurationMS       int64         `json:"duration_ms"`
	CommandsExecuted []string      `json:"commands_executed"`
	FilesGenerated   []string      `json:"files_generated"`
	ExitCode         int           `json:"exit_code"`
	OutputTail       string        `json:"output_tail"`
	OutputRef        string        `json:"output_ref,omitempty"`
	AgentID          string        `json:"agent_id,omitempty"`
	ResourceUsage    ResourceUsage `json:"resource_usage"`
	// WarmStart is set when a pre-started sandbox container served the run.
	WarmStart bool `json:"warm_start,omitempty"`
	// Model and TokensUsed are set by the AI rung.
	Model      string `json:"model,omitempty"`
	TokensUsed int    `json:"tokens_used,omitempty"`
	// TranscriptRef points at the AI conversation, kept on disk.
	TranscriptRef string `json:"transcript_ref,omitempty"`
	// Artifacts are files produced outside the workspace listing, such as
	// the workspace diff; name -> path on the agent's disk.
	Artifacts map[string]string `json:"artifacts,omitempty"`
	// Ladder records each rung tried, in order, with why it was left.
	Ladder []LadderStep `json:"ladder,omitempty"`
}

// LadderStep is one rung of the fallback ladder as it was tried.
type LadderStep struct {
	// Rung is "ai:<model>", "scripted" or "mock".
	Rung string `json:"rung"`
	// Outcome is "succeeded", "failed" (the work ran and failed) or
	// "skipped" (the rung could not run: model down, garbage reply,
	// budget exhausted, nothing to run).
	Outcome string `json:"outcome"`
	// Reason says why the ladder moved on, e.g. "budget_exhausted: task
	// tokens: 60000 of 60000 used".
	Reason string `json:"reason,omitempty"`
}

// Ladder outcomes.
const (
	RungSucceeded = "succeeded"
	RungFailed    = "failed"
	RungSkipped   = "skipped"
)

// ResourceUsage is what the sandbox consumed.
type ResourceUsage struct {
	CPUTimeMS       int64 `json:"cpu_time_ms"`
	PeakMemoryBytes int64 `json:"peak_memory_bytes"`
}

// Agent describes one agent node.
type Agent struct {
	ID             string   `json:"id"`
	Role           string   `json:"role"`
	Expertise      []string `json:"expertise,omitempty"`
	Capabilities   []string `json:"capabilities,omitempty"`
	MaxTasks       int      `json:"max_tasks"`
	Specialization string   `json:"specialization,omitempty"`
}

// Task types detected from a task's text (SPEC section 4).
const (
	TypeBugFix      = "bug_fix"
	TypeFeature     = "feature_development"
	TypeTesting     = "testing"
	TypeDocs        = "documentation"
	TypeRefactoring = "refactoring"
	TypeReview      = "code_review"
	TypeDevelopment = "development"
)

// DetectTaskType classifies a task by keywords in its title and description.
// The first matching rule wins, in the order the SPEC lists them.
func DetectTaskType(title, description string) string {
	text := strings.ToLower(title + " " + description)
	rules := []struct {
		typ   string
		words []string
	}{
		{TypeBugFix, []string{"bug", "fix"}},
		{TypeFeature, []string{"feature", "implement"}},
		{TypeTesting, []string{"test"}},
		{TypeDocs, []string{"doc"}},
		{TypeRefactoring, []string{"refactor"}},
		{TypeReview, []string{"review"}},
	}
	for _, r := range rules {
		for _, w := range r.words {
			if strings.Contains(text, w) {
				return r.typ
			}
		}
	}
	return TypeDevelopment
}
