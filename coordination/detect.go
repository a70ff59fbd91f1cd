package coordination

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"chorus"
	"chorus/gossip"
)

// DefaultConfidence is the confidence of the built-in rules (SPEC section
// 7) and of a custom rule that gives none.
const DefaultConfidence = 0.8

// Names of the built-in rules.
const (
	RuleAPIContract    = "api_contract"
	RuleDatabaseSchema = "database_schema"
	RuleConfiguration  = "configuration"
	RuleSecurity       = "security"
)

// Rule is one dependency rule. A task matches a side of the rule when its
// lower-cased title and description contain one of the side's keywords as
// a word. A keyword is letters and digits; a trailing "*" makes it a
// prefix ("config*" matches config, configs, configuration), without one it
// must be the whole word ("auth" matches auth, not author). Words are the
// runs of letters and digits of the text, so "user_api", "REST-API" and
// "api/v2" all contain the word "api", and "rapid" does not.
type Rule struct {
	// Name identifies the rule in alerts (gossip.DependencyAlert.Rule).
	Name string
	// Task are the keywords of the task that depends on the other.
	Task []string
	// DependsOn are the keywords of the task depended on; empty means the
	// same as Task, a symmetric rule.
	DependsOn []string
	// Confidence is put in the alert, 0..1; 0 means DefaultConfidence.
	Confidence float64
}

// BuiltinRules returns the four rules of SPEC section 7, in this order:
//
//   - api_contract: the dependent task mentions implement* and the other
//     api* (the implementation waits for the API it implements against);
//   - database_schema: both mention database*, schema*, migration*, table
//     or tables;
//   - configuration: both mention config* or environment*;
//   - security: both mention security*, auth, authn, authz, authenticat*,
//     authoriz*, oauth*, permission* or token*.
func BuiltinRules() []Rule {
	return []Rule{
		{Name: RuleAPIContract, Task: []string{"implement*"}, DependsOn: []string{"api*"}, Confidence: DefaultConfidence},
		{Name: RuleDatabaseSchema, Task: []string{"database*", "schema*", "migration*", "table", "tables"}, Confidence: DefaultConfidence},
		{Name: RuleConfiguration, Task: []string{"config*", "environment*"}, Confidence: DefaultConfidence},
		{Name: RuleSecurity, Task: []string{"security*", "auth", "authn", "authz", "authenticat*", "authoriz*", "oauth*", "permission*", "token*"},
			Confidence: DefaultConfidence},
	}
}

var (
	ruleName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)
	keyword  = regexp.MustCompile(`^[\p{Ll}\p{Nd}]+\*?$`)
)

// Validate names the first bad field of the rule.
func (r Rule) Validate() error {
	switch {
	case !ruleName.MatchString(r.Name):
		return fmt.Errorf("%w: name: %q must be lower-case letters, digits, _ . or -", chorus.ErrInvalid, r.Name)
	case len(r.Task) == 0:
		return fmt.Errorf("%w: rule %s: task: at least one keyword is needed", chorus.ErrInvalid, r.Name)
	case r.Confidence < 0 || r.Confidence > 1 || r.Confidence != r.Confidence:
		return fmt.Errorf("%w: rule %s: confidence: %v must be within 0..1", chorus.ErrInvalid, r.Name, r.Confidence)
	}
	for _, f := range []struct {
		field string
		words []string
	}{{"task", r.Task}, {"depends_on", r.DependsOn}} {
		for i, w := range f.words {
			if !keyword.MatchString(w) {
				return fmt.Errorf("%w: rule %s: %s[%d]: %q must be lower-case letters or digits, optionally ending in *", chorus.ErrInvalid, r.Name, f.field, i, w)
			}
		}
	}
	return nil
}

// Detector finds likely dependencies between tasks of different
// repositories. It holds only its rules and is safe for concurrent use.
type Detector struct {
	rules []Rule
}

// NewDetector returns a detector with the built-in rules followed by the
// custom ones, in the order given. A custom rule is refused when it does
// not validate or reuses a rule's name.
func NewDetector(custom []Rule) (*Detector, error) {
	rules := BuiltinRules()
	for i, r := range custom {
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("dependency rule %d: %w", i, err)
		}
		if slices.ContainsFunc(rules, func(o Rule) bool { return o.Name == r.Name }) {
			return nil, fmt.Errorf("dependency rule %d: %w: name: %q is already a rule", i, chorus.ErrInvalid, r.Name)
		}
		if r.Confidence == 0 {
			r.Confidence = DefaultConfidence
		}
		r.Task, r.DependsOn = slices.Clone(r.Task), slices.Clone(r.DependsOn)
		rules = append(rules, r)
	}
	return &Detector{rules: rules}, nil
}

// Rules returns the detector's rules in the order they are tried.
func (d *Detector) Rules() []Rule {
	out := make([]Rule, len(d.rules))
	for i, r := range d.rules {
		r.Task, r.DependsOn = slices.Clone(r.Task), slices.Clone(r.DependsOn)
		out[i] = r
	}
	return out
}

// words returns the set of words of a task's lower-cased title and
// description.
func words(t chorus.Task) []string {
	ws := strings.FieldsFunc(strings.ToLower(t.Title+"\n"+t.Description), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	slices.Sort(ws)
	return slices.Compact(ws)
}

// match returns the first keyword (in the rule's order) found among words,
// and the word it matched.
func match(keywords, words []string) (kw, word string, ok bool) {
	for _, k := range keywords {
		prefix, isPrefix := strings.CutSuffix(k, "*")
		for _, w := range words {
			if w == prefix || (isPrefix && strings.HasPrefix(w, prefix)) {
				return k, w, true
			}
		}
	}
	return "", "", false
}

// side is what one task shows of one rule.
type side struct {
	task, dependsOn   bool
	taskWord, depWord string
}

// Detect returns the dependency alerts among tasks: for every pair of
// tasks in different repositories (compared without regard to case) and
// every rule, at most one alert. Within one repository nothing is reported.
//
// Direction: for an asymmetric rule the task showing the Task side depends
// on the one showing the DependsOn side; when each shows both (or the rule
// is symmetric) the later task (CreatedAt, then key) depends on the earlier.
//
// The result is sorted by depends_on key, then task key, then rule order,
// whatever the order of tasks, and every alert carries detectedAt.
func (d *Detector) Detect(tasks []chorus.Task, detectedAt time.Time) []gossip.DependencyAlert {
	ts := slices.Clone(tasks)
	slices.SortFunc(ts, func(a, b chorus.Task) int { return strings.Compare(a.Key().String(), b.Key().String()) })
	ts = slices.CompactFunc(ts, func(a, b chorus.Task) bool { return a.Key() == b.Key() })
	sides := make([][]side, len(ts))
	for i, t := range ts {
		ws := words(t)
		sides[i] = make([]side, len(d.rules))
		for j, r := range d.rules {
			dep := r.DependsOn
			if len(dep) == 0 {
				dep = r.Task
			}
			var s side
			_, s.taskWord, s.task = match(r.Task, ws)
			_, s.depWord, s.dependsOn = match(dep, ws)
			sides[i][j] = s
		}
	}
	type found struct {
		alert gossip.DependencyAlert
		rule  int
	}
	var out []found
	for i := range ts {
		for k := i + 1; k < len(ts); k++ {
			a, b := ts[i], ts[k]
			if strings.EqualFold(a.Repository, b.Repository) {
				continue
			}
			for j, r := range d.rules {
				sa, sb := sides[i][j], sides[k][j]
				aOnB := sa.task && sb.dependsOn // a depends on b
				bOnA := sb.task && sa.dependsOn
				if !aOnB && !bOnA {
					continue
				}
				task, dep, st, sd := a, b, sa, sb
				if !aOnB || (bOnA && later(b, a)) {
					task, dep, st, sd = b, a, sb, sa
				}
				out = append(out, found{rule: j, alert: gossip.DependencyAlert{
					Rule:       r.Name,
					Confidence: r.Confidence,
					Task:       ref(task),
					DependsOn:  ref(dep),
					Reason: fmt.Sprintf("%s: %s mentions %q and %s mentions %q",
						r.Name, task.Key(), st.taskWord, dep.Key(), sd.depWord),
					DetectedAt: detectedAt,
				}})
			}
		}
	}
	slices.SortFunc(out, func(x, y found) int {
		if c := strings.Compare(x.alert.DependsOn.TaskKey, y.alert.DependsOn.TaskKey); c != 0 {
			return c
		}
		if c := strings.Compare(x.alert.Task.TaskKey, y.alert.Task.TaskKey); c != 0 {
			return c
		}
		return x.rule - y.rule
	})
	alerts := make([]gossip.DependencyAlert, len(out))
	for i, f := range out {
		alerts[i] = f.alert
	}
	return alerts
}

// later reports whether a was created after b (by key when at the same
// time), so that a is the one that waits.
func later(a, b chorus.Task) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.After(b.CreatedAt)
	}
	return a.Key().String() > b.Key().String()
}

func ref(t chorus.Task) gossip.TaskRef {
	return gossip.TaskRef{TaskKey: t.Key().String(), Repository: t.Repository, Title: t.Title}
}
