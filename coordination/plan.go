package coordination

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"chorus"
	"chorus/ai"
	"chorus/gossip"
)

// Chatter is what the planner needs from a model client; *ollama.Client,
// *openai.Client (and so ai.Client and activities.Chatter values) satisfy
// it.
type Chatter interface {
	Chat(ctx context.Context, req ai.Request) (ai.Response, error)
}

// Model is one model the planner may ask, by name.
type Model struct {
	Name   string
	Client Chatter
}

// PlannerConfig configures a Planner.
type PlannerConfig struct {
	// Models are tried in order; none means every plan is the template.
	Models []Model
	// Timeout bounds one model call (retries included).
	Timeout time.Duration
	// MaxTokens bounds the model's reply.
	MaxTokens int
	// Logger receives a warning when a model fails; nil discards.
	Logger *slog.Logger
}

// DefaultPlannerConfig returns a config without models.
func DefaultPlannerConfig() PlannerConfig {
	return PlannerConfig{
		// A plan is a few lines; a model that needs longer than this is
		// too slow for a session that lasts 30 minutes at most, and the
		// template is always there.
		Timeout: 60 * time.Second,
		// About 12 lines of plan plus the JSON around them.
		MaxTokens: 800,
	}
}

// Validate names the first bad field.
func (c PlannerConfig) Validate() error {
	switch {
	case c.Timeout <= 0:
		return fmt.Errorf("%w: Timeout: %s must be positive", chorus.ErrInvalid, c.Timeout)
	case c.MaxTokens < 1:
		return fmt.Errorf("%w: MaxTokens: %d must be at least 1", chorus.ErrInvalid, c.MaxTokens)
	}
	for i, m := range c.Models {
		if m.Client == nil || m.Name == "" {
			return fmt.Errorf("%w: Models[%d]: needs a name and a client", chorus.ErrInvalid, i)
		}
	}
	return nil
}

// Planner writes coordination plans: from a model when one answers, from a
// template otherwise. It is safe for concurrent use.
type Planner struct {
	cfg PlannerConfig
	log *slog.Logger
}

// NewPlanner returns a planner.
func NewPlanner(cfg PlannerConfig) (*Planner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("coordination planner: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg.Models = slices.Clone(cfg.Models)
	return &Planner{cfg: cfg, log: log}, nil
}

// PlanInput is what a plan is about.
type PlanInput struct {
	Kind Kind
	// Tasks are the session's tasks.
	Tasks []chorus.Task
	// Dependencies are the alerts that opened the session.
	Dependencies []gossip.DependencyAlert
	// Objections are earlier objections ("agent: text"), for a revised
	// plan.
	Objections []string
}

// Plan is a coordination plan.
type Plan struct {
	// Text is what the participants read.
	Text string `json:"text"`
	// Order is the tasks' keys in the order the plan proposes.
	Order []string `json:"order"`
	// Template is set when the plan is the built-in template; Text then
	// starts with TemplateMarker.
	Template bool `json:"template"`
	// Model is the model that wrote the plan; empty for the template.
	Model string `json:"model,omitempty"`
	// Why says why the template was used.
	Why string `json:"why,omitempty"`
}

// TemplateMarker starts the text of every template plan.
const TemplateMarker = "[template plan: no model was reachable]"

// Plan returns a plan for in. It asks each model in turn and uses the first
// usable reply: a JSON object with a non-empty "plan" (an "order" that is
// not exactly the session's task keys is replaced by the dependency
// order). When no model is configured, none answers in time, or none gives
// a usable reply, the plan is the template; Plan never fails.
func (p *Planner) Plan(ctx context.Context, in PlanInput) Plan {
	order := dependencyOrder(in)
	why := "no model is configured"
	for _, m := range p.cfg.Models {
		plan, err := p.ask(ctx, m, in, order)
		if err == nil {
			return plan
		}
		p.log.Warn("coordination plan from model failed", "model", m.Name, "error", err)
		why = fmt.Sprintf("model %s: %v", m.Name, err)
		if ctx.Err() != nil {
			break
		}
	}
	return templatePlan(in, order, why)
}

// modelReply is the JSON object the prompt asks for.
type modelReply struct {
	Order []string `json:"order"`
	Plan  string   `json:"plan"`
}

func (p *Planner) ask(ctx context.Context, m Model, in PlanInput, order []string) (Plan, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	temp := 0.2
	resp, err := m.Client.Chat(ctx, ai.Request{
		Messages:    []ai.Message{{Role: ai.RoleSystem, Content: systemPrompt}, {Role: ai.RoleUser, Content: Prompt(in)}},
		MaxTokens:   p.cfg.MaxTokens,
		Temperature: &temp,
		JSON:        true,
	})
	if err != nil {
		return Plan{}, err
	}
	var r modelReply
	if err := json.Unmarshal([]byte(strings.TrimSpace(resp.Content)), &r); err != nil {
		return Plan{}, fmt.Errorf("%w: the reply is not the JSON object asked for: %v", ai.ErrMalformedReply, err)
	}
	if strings.TrimSpace(r.Plan) == "" {
		return Plan{}, fmt.Errorf("%w: the reply has no plan", ai.ErrMalformedReply)
	}
	plan := Plan{Text: strings.TrimSpace(r.Plan), Order: order, Model: m.Name}
	if sameKeys(r.Order, order) {
		plan.Order = r.Order
	}
	return plan, nil
}

func sameKeys(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

const systemPrompt = `You coordinate a team of AI coding agents. Each works on one task in one repository; some tasks depend on others in other repositories. Write a short coordination plan: which task goes first, what the agents must agree on before the dependent work starts (interfaces, schemas, configuration keys, permissions), and how to check the result. Reply with one JSON object and nothing else: {"order": [the task keys, the one to finish first first], "plan": "the plan, at most 12 short lines"}.`

// Prompt is the user message sent to the model: the session's kind, each
// task with its repository, title and (shortened) description, each
// dependency with its rule and reason, and earlier objections.
func Prompt(in PlanInput) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Session kind: %s\n\nTasks:\n", in.Kind)
	for _, t := range in.Tasks {
		fmt.Fprintf(&b, "- %s (repository %s): %q\n", t.Key(), t.Repository, t.Title)
		if d := strings.TrimSpace(t.Description); d != "" {
			fmt.Fprintf(&b, "  %s\n", shorten(strings.Join(strings.Fields(d), " "), 600))
		}
	}
	if len(in.Dependencies) > 0 {
		b.WriteString("\nDependencies:\n")
		for _, a := range in.Dependencies {
			fmt.Fprintf(&b, "- %s (repository %s) depends on %s (repository %s): rule %s, confidence %.2f; %s\n",
				a.Task.TaskKey, a.Task.Repository, a.DependsOn.TaskKey, a.DependsOn.Repository, a.Rule, a.Confidence, a.Reason)
		}
	}
	if len(in.Objections) > 0 {
		b.WriteString("\nObjections to the previous plan (address them):\n")
		for _, o := range in.Objections {
			fmt.Fprintf(&b, "- %s\n", o)
		}
	}
	return b.String()
}

func shorten(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

// dependencyOrder puts every task after the tasks it depends on (a
// topological order, ties by key); a cycle is broken at the smallest key.
func dependencyOrder(in PlanInput) []string {
	var keys []string
	for _, t := range in.Tasks {
		keys = append(keys, t.Key().String())
	}
	for _, a := range in.Dependencies {
		keys = append(keys, a.Task.TaskKey, a.DependsOn.TaskKey)
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	waits := map[string][]string{} // task -> the tasks it depends on
	for _, a := range in.Dependencies {
		waits[a.Task.TaskKey] = append(waits[a.Task.TaskKey], a.DependsOn.TaskKey)
	}
	done := map[string]bool{}
	var order []string
	for len(order) < len(keys) {
		next := ""
		for _, k := range keys {
			if !done[k] && !slices.ContainsFunc(waits[k], func(d string) bool { return !done[d] }) {
				next = k
				break
			}
		}
		if next == "" { // a cycle: take the smallest remaining key
			for _, k := range keys {
				if !done[k] {
					next = k
					break
				}
			}
		}
		done[next] = true
		order = append(order, next)
	}
	return order
}

// ruleAdvice is the template's sentence for each built-in rule.
var ruleAdvice = map[string]string{
	RuleAPIContract:    "agree on the API contract (endpoints, request and response shapes, errors, versioning) and publish it before implementing against it",
	RuleDatabaseSchema: "agree on the schema change and the migration order; the migration lands first and stays backward compatible until both tasks are done",
	RuleConfiguration:  "agree on the configuration keys and environment variables, their names, defaults and where they are documented",
	RuleSecurity:       "agree on the authentication and permission model and on how tokens are issued, stored and checked; review the security-relevant changes together",
}

// templatePlan is the plan written without a model.
func templatePlan(in PlanInput, order []string, why string) Plan {
	titles := map[string]string{}
	repos := map[string]string{}
	for _, t := range in.Tasks {
		titles[t.Key().String()], repos[t.Key().String()] = t.Title, t.Repository
	}
	for _, a := range in.Dependencies {
		for _, r := range []gossip.TaskRef{a.Task, a.DependsOn} {
			if titles[r.TaskKey] == "" {
				titles[r.TaskKey] = r.Title
			}
			if repos[r.TaskKey] == "" {
				repos[r.TaskKey] = r.Repository
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s)\n", TemplateMarker, why)
	fmt.Fprintf(&b, "Kind: %s. Order:\n", in.Kind)
	for i, k := range order {
		fmt.Fprintf(&b, "%d. %s (%s): %q", i+1, k, repos[k], titles[k])
		var deps []string
		for _, a := range in.Dependencies {
			if a.Task.TaskKey == k {
				deps = append(deps, a.DependsOn.TaskKey)
			}
		}
		slices.Sort(deps)
		if deps = slices.Compact(deps); len(deps) > 0 {
			fmt.Fprintf(&b, ", after %s", strings.Join(deps, ", "))
		}
		b.WriteString("\n")
	}
	var rules []string
	for _, a := range in.Dependencies {
		if !slices.Contains(rules, a.Rule) {
			rules = append(rules, a.Rule)
		}
	}
	for _, r := range rules {
		advice, ok := ruleAdvice[r]
		if !ok {
			advice = fmt.Sprintf("agree on what the tasks share (%s) before the dependent task starts", r)
		}
		fmt.Fprintf(&b, "- %s: %s.\n", r, advice)
	}
	if len(in.Objections) > 0 {
		fmt.Fprintf(&b, "- Objections raised so far, to be settled by the agents concerned or a human: %s.\n", strings.Join(in.Objections, "; "))
	}
	b.WriteString("- Each agent says agreement or objection; without consensus the session goes to a human.")
	return Plan{Text: b.String(), Order: order, Template: true, Why: why}
}
