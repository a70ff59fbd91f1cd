package shhh

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/prometheus/client_golang/prometheus"

	"chorus"
)

// DefaultReplacement is what a secret becomes.
const DefaultReplacement = "[REDACTED]"

// Config says which rules a Redactor applies and what it writes instead of a
// secret.
type Config struct {
	// Rules are custom rules, applied after the built-in ones.
	Rules []Rule
	// DisableDefaults drops the built-in rules, leaving only Rules.
	DisableDefaults bool
	// Replacement replaces each secret; empty means DefaultReplacement.
	Replacement string
	// Metrics receives the chorus_shhh_* metrics (metrics.go); nil means
	// none.
	Metrics prometheus.Registerer
}

// DefaultConfig returns the configuration every caller should start from.
func DefaultConfig() Config {
	return Config{
		// No custom rules: the built-in ones cover the secrets every chorus
		// deployment handles (provider tokens, AI keys, cloud keys).
		Rules: nil,
		// Defaults on: a redactor that misses known secrets fails open.
		DisableDefaults: false,
		// The marker operators grep for and that Redact leaves alone, so
		// redacting twice is the same as redacting once.
		Replacement: DefaultReplacement,
		// No metrics unless the caller has a registry.
		Metrics: nil,
	}
}

// fieldError names the configuration field that is wrong. It matches
// chorus.ErrInvalid with errors.Is and unwraps to the underlying cause (a
// *syntax.Error for a bad pattern).
type fieldError struct {
	field string
	err   error
}

func (e *fieldError) Error() string        { return "shhh: " + e.field + ": " + e.err.Error() }
func (e *fieldError) Unwrap() error        { return e.err }
func (e *fieldError) Is(target error) bool { return target == chorus.ErrInvalid }

// Validate reports every bad custom rule, each naming the rule by its index
// in Rules and the field, e.g. "shhh: rules[2].pattern: error parsing
// regexp: ...". The errors match chorus.ErrInvalid.
func (c Config) Validate() error {
	_, err := c.compile()
	return err
}

var severities = map[string]bool{SeverityLow: true, SeverityMedium: true, SeverityHigh: true, SeverityCritical: true}

// compile checks c and returns the rules to apply, built-in ones first.
func (c Config) compile() ([]compiled, error) {
	var (
		out   []compiled
		errs  []error
		names = map[string]bool{}
	)
	if !c.DisableDefaults {
		for _, d := range defaults {
			cr := newCompiled(d.Rule, regexp.MustCompile(d.Pattern))
			cr.anchors, cr.confirm, cr.lineLocal = d.anchors, d.confirm, d.lineLocal
			out = append(out, cr)
			names[d.Name] = true
		}
	}
	bad := func(field string, err error) { errs = append(errs, &fieldError{field, err}) }
	for i, r := range c.Rules {
		at := fmt.Sprintf("rules[%d].", i)
		switch {
		case r.Name == "":
			bad(at+"name", errors.New("empty"))
		case names[r.Name]:
			bad(at+"name", fmt.Errorf("duplicate rule name %q", r.Name))
		}
		names[r.Name] = true
		if !severities[r.Severity] {
			bad(at+"severity", fmt.Errorf("%q is not one of low, medium, high, critical", r.Severity))
		}
		if r.Pattern == "" {
			bad(at+"pattern", errors.New("empty"))
			continue
		}
		re, err := regexp.Compile(r.Pattern)
		if err != nil {
			bad(at+"pattern", err)
			continue
		}
		if re.MatchString("") {
			bad(at+"pattern", errors.New("matches the empty string"))
			continue
		}
		out = append(out, newCompiled(r, re))
	}
	if len(out) == 0 && len(errs) == 0 {
		bad("rules", errors.New("no rules: defaults disabled and no custom rules given"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}
