package config

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"chorus"
)

// File is the whole configuration file.
type File struct {
	Agent     Agent     `yaml:"agent"`
	Execution Execution `yaml:"execution"`
	// Redaction adds SHHH rules to the built-in ones.
	Redaction Redaction `yaml:"redaction"`
	// Coordination tunes meta-coordination between dependent tasks.
	Coordination Coordination `yaml:"coordination"`
	// Providers configures the issue trackers tasks come from besides
	// the board.
	Providers Providers `yaml:"providers"`
}

// Providers configures the github and gitea task providers (SPEC section
// 2). A provider whose section sets nothing is off.
type Providers struct {
	GitHub Forge `yaml:"github"`
	Gitea  Forge `yaml:"gitea"`
}

// Forge is one issue tracker's section. Empty fields take the provider's
// defaults (github url https://api.github.com, label chorus-task,
// in-progress, completed, failed, poll_interval 30s); gitea has no default
// url. The token and the webhook secret are never in the file: only the
// name of an environment variable or the path of a file holding them.
type Forge struct {
	URL               string   `yaml:"url"`
	TokenEnv          string   `yaml:"token_env"`
	TokenFile         string   `yaml:"token_file"`
	Repositories      []string `yaml:"repositories"`
	Label             string   `yaml:"label"`
	InProgressLabel   string   `yaml:"in_progress_label"`
	CompletedLabel    string   `yaml:"completed_label"`
	FailedLabel       string   `yaml:"failed_label"`
	Assignee          string   `yaml:"assignee"`
	WebhookSecretEnv  string   `yaml:"webhook_secret_env"`
	WebhookSecretFile string   `yaml:"webhook_secret_file"`
	PollInterval      Duration `yaml:"poll_interval"`
}

// Enabled reports whether the section sets anything.
func (f Forge) Enabled() bool {
	return f.URL != "" || f.TokenEnv != "" || f.TokenFile != "" || len(f.Repositories) > 0 || f.Label != "" ||
		f.InProgressLabel != "" || f.CompletedLabel != "" || f.FailedLabel != "" || f.Assignee != "" ||
		f.WebhookSecretEnv != "" || f.WebhookSecretFile != "" || f.PollInterval != 0
}

// MinPollInterval is the shortest providers.*.poll_interval accepted: a
// faster poll spends the tracker's rate limit for nothing.
const MinPollInterval = time.Second

// problems checks one enabled section; p is its path ("providers.github").
func (f Forge) problems(p string, needURL bool, bad func(path, format string, args ...any)) {
	if f.URL != "" || needURL {
		if u, err := url.Parse(f.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(p+".url", "must be an http(s) URL, got %q", f.URL)
		}
	}
	switch {
	case f.TokenEnv == "" && f.TokenFile == "":
		bad(p+".token_env", "set token_env or token_file")
	case f.TokenEnv != "" && f.TokenFile != "":
		bad(p+".token_file", "set only one of token_env and token_file")
	case f.TokenEnv != "" && !envVarPattern.MatchString(f.TokenEnv):
		bad(p+".token_env", "must be an environment variable name, got %q", f.TokenEnv)
	}
	switch {
	case f.WebhookSecretEnv != "" && f.WebhookSecretFile != "":
		bad(p+".webhook_secret_file", "set only one of webhook_secret_env and webhook_secret_file")
	case f.WebhookSecretEnv != "" && !envVarPattern.MatchString(f.WebhookSecretEnv):
		bad(p+".webhook_secret_env", "must be an environment variable name, got %q", f.WebhookSecretEnv)
	}
	if len(f.Repositories) == 0 {
		bad(p+".repositories", "must list at least one owner/name repository")
	}
	seen := map[string]int{}
	for i, r := range f.Repositories {
		rp := fmt.Sprintf("%s.repositories[%d]", p, i)
		if !forgeRepo.MatchString(r) {
			bad(rp, "must be owner/name of [A-Za-z0-9._-], got %q", r)
		} else if first, dup := seen[strings.ToLower(r)]; dup {
			bad(rp, "duplicate repository %q (also %s.repositories[%d])", r, p, first)
		}
		seen[strings.ToLower(r)] = i
	}
	for _, l := range []struct{ name, value string }{{"label", f.Label}, {"in_progress_label", f.InProgressLabel},
		{"completed_label", f.CompletedLabel}, {"failed_label", f.FailedLabel}} {
		if strings.ContainsAny(l.value, ",\n") {
			bad(p+"."+l.name, "must be a label name without commas, got %q", l.value)
		}
	}
	if f.PollInterval != 0 && time.Duration(f.PollInterval) < MinPollInterval {
		bad(p+".poll_interval", "must be at least %s, got %s", MinPollInterval, f.PollInterval)
	}
}

var forgeRepo = regexp.MustCompile(`^[A-Za-z0-9._-]+/[A-Za-z0-9._-]+$`)

// Redaction configures secret redaction (SPEC section 9).
type Redaction struct {
	Rules []RedactionRule `yaml:"rules"`
}

// RedactionRule is a custom SHHH rule; a named group "secret" in the
// pattern limits the redaction to that part.
type RedactionRule struct {
	Name     string   `yaml:"name"`
	Pattern  string   `yaml:"pattern"`
	Severity string   `yaml:"severity"`
	Tags     []string `yaml:"tags"`
}

// Agent describes this agent to its peers.
type Agent struct {
	// ID names the agent; empty means the caller fills it from the host
	// name.
	ID   string `yaml:"id"`
	Role string `yaml:"role"`
	// Expertise lists what the agent knows (languages, tools).
	Expertise []string `yaml:"expertise"`
	// Capabilities lists what the agent can do (shell, browser, ...).
	Capabilities []string `yaml:"capabilities"`
	// MaxTasks is how many tasks the agent works on at once.
	MaxTasks       int     `yaml:"max_tasks"`
	Specialization string  `yaml:"specialization"`
	Models         []Model `yaml:"models"`
}

// Model is one LLM the agent may call.
type Model struct {
	Name     string `yaml:"name"`
	Provider string `yaml:"provider"`
	Endpoint string `yaml:"endpoint"`
	// APIKeyEnv names the environment variable holding the API key.
	APIKeyEnv string `yaml:"api_key_env"`
	// APIKeyFile is the path of a file holding the API key.
	APIKeyFile string `yaml:"api_key_file"`
	// Timeout bounds one call; zero means the client's default.
	Timeout Duration `yaml:"timeout"`
	// Roles this model is preferred for; a task's agent role picks the
	// primary model, the others are alternates in file order.
	Roles []string `yaml:"roles"`
}

// Execution limits the sandbox each task runs in.
type Execution struct {
	Image   string   `yaml:"image"`
	Timeout Duration `yaml:"timeout"`
	Memory  Size     `yaml:"memory"`
	CPUs    float64  `yaml:"cpus"`
	Pids    int64    `yaml:"pids"`
	// WarmPool is how many sandbox containers are kept started and waiting
	// for a command, for fast starts; 0 turns the pool off.
	WarmPool int `yaml:"warm_pool"`
	// Budget bounds the AI rung.
	Budget Budget `yaml:"budget"`
	// Mock enables the last rung of the fallback ladder.
	Mock Mock `yaml:"mock"`
	// Repositories are local copies of task repositories, copied into
	// the workspace of AI executions (the sandbox has no network).
	Repositories []Repository `yaml:"repositories"`
}

// Budget limits AI spending; zero means no limit.
type Budget struct {
	TaskTokens  int      `yaml:"task_tokens"`
	TaskSteps   int      `yaml:"task_steps"`
	TaskWall    Duration `yaml:"task_wall"`
	DailyTokens int      `yaml:"daily_tokens"`
	DailyCalls  int      `yaml:"daily_calls"`
}

// Mock configures simulated execution, the ladder's last rung. It is off by
// default and never reports real work; Succeeds makes it report success.
type Mock struct {
	Enabled  bool `yaml:"enabled"`
	Succeeds bool `yaml:"succeeds"`
}

// Repository maps a task repository name to a local directory.
type Repository struct {
	Name string `yaml:"name"`
	Path string `yaml:"path"`
}

// Model providers accepted in Model.Provider.
const (
	ProviderOllama = "ollama"
	ProviderOpenAI = "openai"
)

// Limits enforced by Validate.
const (
	// MaxTasksLimit caps Agent.MaxTasks: beyond it one node would hoard
	// work that the network should spread.
	MaxTasksLimit = 64
	// MinMemory is the smallest memory limit Docker accepts.
	MinMemory = 6 * MiB
)

// Default returns the configuration used where the file is silent.
func Default() File {
	return File{
		Agent: Agent{
			// Role: the common case for a coding agent.
			Role: "developer",
			// MaxTasks: one sandbox at a time on a small machine.
			MaxTasks: 1,
		},
		Execution: Execution{
			// Image: the sandbox image the project builds.
			Image: "chorus-sandbox:1",
			// Timeout: SPEC section 4 default for one execution.
			Timeout: Duration(10 * time.Minute),
			// Memory: enough for compilers and test runners, small
			// enough to stop a memory bomb.
			Memory: 512 * MiB,
			// CPUs: a runaway loop cannot starve the host.
			CPUs: 1,
			// Pids: stops a fork bomb.
			Pids: 256,
			// Budget: a handful of command/feedback rounds with a
			// mid-sized model per task; no daily cap unless configured.
			Budget: Budget{TaskTokens: 60_000, TaskSteps: 8, TaskWall: Duration(10 * time.Minute)},
		},
	}
}

// Load reads the file at path; see Parse.
func Load(path string) (File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return File{}, fmt.Errorf("load %s: %w", path, err)
	}
	f, err := Parse(data)
	if err != nil {
		return File{}, fmt.Errorf("load %s: %w", path, err)
	}
	return f, nil
}

// Parse overlays the YAML in data on Default, strictly, and validates the
// result. Errors name the field by YAML path and give its line.
func Parse(data []byte) (File, error) {
	f := Default()
	lines, err := decode(data, &f)
	if err != nil {
		return File{}, err
	}
	problems := f.problems()
	if len(problems) == 0 {
		return f, nil
	}
	errs := make([]error, len(problems))
	for i, p := range problems {
		p.Line = lines[p.Path]
		errs[i] = p
	}
	return File{}, errors.Join(errs...)
}

// FieldError is one problem with one field of the file.
type FieldError struct {
	// Path is the field's YAML path, e.g. agent.models[0].endpoint.
	Path string
	// Line is the 1-based line of the field in the file; 0 when unknown.
	Line int
	// Msg says what is wrong.
	Msg string
}

func (e *FieldError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("config: %s: %s (line %d)", e.Path, e.Msg, e.Line)
	}
	return fmt.Sprintf("config: %s: %s", e.Path, e.Msg)
}

// Unwrap makes every FieldError match chorus.ErrInvalid.
func (e *FieldError) Unwrap() error { return chorus.ErrInvalid }

var (
	namePattern   = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	envVarPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// Validate checks every field and reports all problems, one per line.
func (f File) Validate() error {
	problems := f.problems()
	errs := make([]error, len(problems))
	for i, p := range problems {
		errs[i] = p
	}
	return errors.Join(errs...)
}

func (f File) problems() []*FieldError {
	var ps []*FieldError
	bad := func(path, format string, args ...any) {
		ps = append(ps, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}

	a := f.Agent
	if a.ID != "" && !namePattern.MatchString(a.ID) {
		bad("agent.id", "must match [A-Za-z0-9_.-]+, got %q", a.ID)
	}
	switch {
	case a.Role == "":
		bad("agent.role", "must not be empty")
	case !namePattern.MatchString(a.Role):
		bad("agent.role", "must match [A-Za-z0-9_.-]+ (it becomes part of a gossip topic name), got %q", a.Role)
	}
	if a.MaxTasks < 1 || a.MaxTasks > MaxTasksLimit {
		bad("agent.max_tasks", "must be between 1 and %d, got %d", MaxTasksLimit, a.MaxTasks)
	}
	for i, e := range a.Expertise {
		if strings.TrimSpace(e) == "" {
			bad(fmt.Sprintf("agent.expertise[%d]", i), "must not be empty")
		}
	}
	for i, c := range a.Capabilities {
		if strings.TrimSpace(c) == "" {
			bad(fmt.Sprintf("agent.capabilities[%d]", i), "must not be empty")
		}
	}
	seen := make(map[string]int)
	for i, m := range a.Models {
		p := fmt.Sprintf("agent.models[%d].", i)
		switch first, dup := seen[m.Name]; {
		case strings.TrimSpace(m.Name) == "":
			bad(p+"name", "must not be empty")
		case dup:
			bad(p+"name", "duplicate model name %q (also agent.models[%d])", m.Name, first)
		default:
			seen[m.Name] = i
		}
		if m.Provider != ProviderOllama && m.Provider != ProviderOpenAI {
			bad(p+"provider", "must be %s or %s, got %q", ProviderOllama, ProviderOpenAI, m.Provider)
		}
		if u, err := url.Parse(m.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(p+"endpoint", "must be an http(s) URL, got %q", m.Endpoint)
		}
		if m.APIKeyEnv != "" && !envVarPattern.MatchString(m.APIKeyEnv) {
			bad(p+"api_key_env", "must be an environment variable name, got %q", m.APIKeyEnv)
		}
		if m.APIKeyEnv != "" && m.APIKeyFile != "" {
			bad(p+"api_key_file", "set only one of api_key_env and api_key_file")
		}
	}

	x := f.Execution
	if strings.TrimSpace(x.Image) == "" {
		bad("execution.image", "must not be empty")
	}
	if x.Timeout <= 0 {
		bad("execution.timeout", "must be positive, got %s", x.Timeout)
	}
	if x.Memory < MinMemory {
		bad("execution.memory", "must be at least %s (Docker's minimum), got %s", MinMemory, x.Memory)
	}
	if x.CPUs <= 0 || math.IsNaN(x.CPUs) || math.IsInf(x.CPUs, 0) {
		bad("execution.cpus", "must be a positive number, got %v", x.CPUs)
	}
	if x.Pids < 1 {
		bad("execution.pids", "must be at least 1, got %d", x.Pids)
	}
	if x.WarmPool < 0 || x.WarmPool > 16 {
		bad("execution.warm_pool", "must be between 0 and 16, got %d", x.WarmPool)
	}
	for name, v := range map[string]int{"task_tokens": x.Budget.TaskTokens, "task_steps": x.Budget.TaskSteps, "daily_tokens": x.Budget.DailyTokens, "daily_calls": x.Budget.DailyCalls} {
		if v < 0 {
			bad("execution.budget."+name, "must not be negative, got %d", v)
		}
	}
	if x.Budget.TaskWall < 0 {
		bad("execution.budget.task_wall", "must not be negative, got %s", x.Budget.TaskWall)
	}
	repos := make(map[string]int)
	for i, r := range x.Repositories {
		p := fmt.Sprintf("execution.repositories[%d].", i)
		if first, dup := repos[r.Name]; dup {
			bad(p+"name", "duplicate repository %q (also execution.repositories[%d])", r.Name, first)
		} else if !repoName.MatchString(r.Name) {
			bad(p+"name", "must be owner/name or name of [A-Za-z0-9._-], got %q", r.Name)
		}
		repos[r.Name] = i
		if !filepath.IsAbs(r.Path) {
			bad(p+"path", "must be an absolute directory path, got %q", r.Path)
		}
	}
	f.Coordination.problems(bad)
	if f.Providers.GitHub.Enabled() {
		f.Providers.GitHub.problems("providers.github", false, bad)
	}
	if f.Providers.Gitea.Enabled() {
		f.Providers.Gitea.problems("providers.gitea", true, bad)
	}
	return ps
}

// ToAgent returns the agent description shared with the rest of the system.
func (a Agent) ToAgent() chorus.Agent {
	return chorus.Agent{
		ID:             a.ID,
		Role:           a.Role,
		Expertise:      slices.Clone(a.Expertise),
		Capabilities:   slices.Clone(a.Capabilities),
		MaxTasks:       a.MaxTasks,
		Specialization: a.Specialization,
	}
}

var repoName = regexp.MustCompile(`^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)?$`)

// Coordination configures meta-coordination (SPEC section 7). Zero values
// keep the SPEC's defaults: scan every 30s, at most 5 participants, 30m and
// 10 messages before a session goes to humans, cleanup every 10m.
type Coordination struct {
	// Rules are dependency rules added to the built-in api_contract,
	// database_schema, configuration and security rules.
	Rules           []DependencyRule `yaml:"rules"`
	ScanInterval    Duration         `yaml:"scan_interval"`
	MaxParticipants int              `yaml:"max_participants"`
	SessionTimeout  Duration         `yaml:"session_timeout"`
	MaxMessages     int              `yaml:"max_messages"`
	CleanupInterval Duration         `yaml:"cleanup_interval"`
}

// DependencyRule is a custom dependency rule: a task whose title or
// description has one of Task's keywords depends on a task of another
// repository that has one of DependsOn's (Task's when empty). A keyword is
// lower-case letters and digits, matched as a whole word, or as a prefix
// when it ends in "*".
type DependencyRule struct {
	Name      string   `yaml:"name"`
	Task      []string `yaml:"task"`
	DependsOn []string `yaml:"depends_on"`
	// Confidence is 0..1; 0 means 0.8.
	Confidence float64 `yaml:"confidence"`
}

var (
	ruleNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)
	keywordPattern  = regexp.MustCompile(`^[\p{Ll}\p{Nd}]+\*?$`)
	builtinRules    = []string{"api_contract", "database_schema", "configuration", "security"}
)

func (c Coordination) problems(bad func(path, format string, args ...any)) {
	names := map[string]int{}
	for i, r := range c.Rules {
		p := fmt.Sprintf("coordination.rules[%d].", i)
		first, dup := names[r.Name]
		switch {
		case !ruleNamePattern.MatchString(r.Name):
			bad(p+"name", "must be lower-case letters, digits, _ . or -, got %q", r.Name)
		case slices.Contains(builtinRules, r.Name):
			bad(p+"name", "%q is a built-in rule", r.Name)
		case dup:
			bad(p+"name", "duplicate rule %q (also coordination.rules[%d])", r.Name, first)
		default:
			names[r.Name] = i
		}
		if len(r.Task) == 0 {
			bad(p+"task", "at least one keyword is needed")
		}
		for _, side := range []struct {
			field string
			words []string
		}{{"task", r.Task}, {"depends_on", r.DependsOn}} {
			for j, w := range side.words {
				if !keywordPattern.MatchString(w) {
					bad(fmt.Sprintf("%s%s[%d]", p, side.field, j), "must be lower-case letters or digits, optionally ending in *, got %q", w)
				}
			}
		}
		if r.Confidence < 0 || r.Confidence > 1 || math.IsNaN(r.Confidence) {
			bad(p+"confidence", "must be within 0..1, got %v", r.Confidence)
		}
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{{"scan_interval", c.ScanInterval}, {"session_timeout", c.SessionTimeout}, {"cleanup_interval", c.CleanupInterval}} {
		if d.v < 0 {
			bad("coordination."+d.name, "must not be negative, got %s", d.v)
		}
	}
	if c.MaxParticipants < 0 || c.MaxParticipants > 16 {
		bad("coordination.max_participants", "must be between 1 and 16 (0 for the default of 5), got %d", c.MaxParticipants)
	}
	if c.MaxMessages < 0 {
		bad("coordination.max_messages", "must not be negative, got %d", c.MaxMessages)
	}
}
