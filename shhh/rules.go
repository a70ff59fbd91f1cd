package shhh

import (
	"slices"
	"strings"
)

// Severities, lowest first.
const (
	SeverityLow      = "low"
	SeverityMedium   = "medium"
	SeverityHigh     = "high"
	SeverityCritical = "critical"
)

// Rule is one detector: a regular expression (RE2 syntax, as accepted by
// package regexp) with a severity and free-form tags.
//
// If Pattern has one or more capture groups named "secret", only the first
// of them that took part in a match is redacted and hashed; the rest of the
// match is context that stays (the key of an assignment, "Bearer ", the user
// of a URL). Without such a group the whole match is the secret.
type Rule struct {
	Name     string
	Pattern  string
	Severity string // low|medium|high|critical
	Tags     []string
}

// defaultRule is a built-in Rule plus hints that only speed it up; they
// never change what it matches, with one exception: the anchors are ASCII,
// so a key spelled with a non-ASCII case fold that (?i) accepts (the long s
// U+017F, the Kelvin sign U+212A) is not seen.
type defaultRule struct {
	Rule
	// anchors are lower-case literals at least one of which occurs in any
	// match; input holding none of them skips the rule.
	anchors []string
	// confirm, if set, is a cheap check that holds for every anchor
	// occurrence that a match contains: lower[start:end] is the anchor.
	// Lines where it holds for no occurrence are skipped.
	confirm func(lower string, start, end int) bool
	// lineLocal means the pattern cannot match across a newline and treats
	// a newline like the edge of the text, so it may run on single lines.
	lineLocal bool
}

// assigned reports whether the anchor is followed by what assign requires:
// an optional quote, blanks, then = or :.
func assigned(lower string, _, end int) bool {
	if end < len(lower) && (lower[end] == '"' || lower[end] == '\'') {
		end++
	}
	for end < len(lower) && (lower[end] == ' ' || lower[end] == '\t') {
		end++
	}
	return end < len(lower) && (lower[end] == '=' || lower[end] == ':')
}

// blankAfter reports whether a space or tab follows the anchor.
func blankAfter(lower string, _, end int) bool {
	return end < len(lower) && (lower[end] == ' ' || lower[end] == '\t')
}

// notAfterWord reports whether the anchor starts the text or follows a
// character other than a letter, digit, _ or -.
func notAfterWord(lower string, start, _ int) bool {
	if start == 0 {
		return true
	}
	c := lower[start-1]
	return !(c == '_' || c == '-' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z')
}

// userinfoPassword reports whether "://" is followed by user:password@.
func userinfoPassword(lower string, _, end int) bool {
	i := end
	for i < len(lower) && !strings.ContainsRune(" \t\n\r\f:@/?#", rune(lower[i])) {
		i++
	}
	if i >= len(lower) || lower[i] != ':' {
		return false
	}
	i++
	j := i
	for j < len(lower) && !strings.ContainsRune(" \t\n\r\f@/?#", rune(lower[j])) {
		j++
	}
	return j > i && j < len(lower) && lower[j] == '@'
}

// Shared pieces of the assignment rules: an optional closing quote after the
// key, a separator (=, :, :=, =>) on one line, and a value that is either
// quoted (everything up to the closing quote) or bare (up to a space, quote,
// comma, semicolon or ampersand).
const (
	assign    = `["']?[ \t]*(?:=>|:=|[:=])[ \t]*`
	value     = `(?:"(?P<secret>[^"\n]+)"|'(?P<secret>[^'\n]+)'|(?P<secret>[^\s"'&,;]+))`
	longValue = `(?:"(?P<secret>[^"\n]{8,})"|'(?P<secret>[^'\n]{8,})'|(?P<secret>[^\s"'&,;]{8,}))`
)

// defaults is ordered from most to least specific: when two rules find the
// same span, the earlier one names the finding.
var defaults = []defaultRule{
	{
		Rule: Rule{
			Name: "private_key", Severity: SeverityCritical, Tags: []string{"key", "pem"},
			// The body up to END, or to the end of the text if a log line
			// cut the block short; the BEGIN and END lines stay.
			Pattern: `(?s)-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----\s*(?P<secret>.*?)\s*(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|$)`,
		},
		anchors: []string{"-----begin"},
	},
	{
		Rule: Rule{
			Name: "jwt", Severity: SeverityHigh, Tags: []string{"token", "jwt"},
			// Header and payload are base64url JSON objects, so both start
			// with eyJ ({"); the signature may be empty (alg none).
			Pattern: `\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`,
		},
		anchors: []string{"eyj"}, lineLocal: true,
	},
	{
		Rule: Rule{
			Name: "openai_api_key", Severity: SeverityHigh, Tags: []string{"api_key", "openai"},
			// Not preceded by a word character or a hyphen, so task-sk-1 and
			// disk-... never start a match.
			Pattern: `(?:^|[^A-Za-z0-9_-])(?P<secret>sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{32,})`,
		},
		anchors: []string{"sk-"}, confirm: notAfterWord, lineLocal: true,
	},
	{
		Rule: Rule{
			Name: "github_token", Severity: SeverityHigh, Tags: []string{"token", "github"},
			Pattern: `\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})\b`,
		},
		anchors: []string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"}, lineLocal: true,
	},
	{
		Rule: Rule{
			Name: "aws_access_key_id", Severity: SeverityHigh, Tags: []string{"cloud", "aws"},
			Pattern: `\b(?:AKIA|ASIA)[A-Z0-9]{16}\b`,
		},
		anchors: []string{"akia", "asia"}, lineLocal: true,
	},
	{
		Rule: Rule{
			Name: "aws_secret_access_key", Severity: SeverityCritical, Tags: []string{"cloud", "aws"},
			Pattern: `(?i)aws_?secret_?access_?key` + assign + `["']?(?P<secret>[A-Za-z0-9/+]{40,})`,
		},
		anchors: []string{"access_key", "accesskey"}, confirm: assigned, lineLocal: true,
	},
	{
		Rule: Rule{
			Name: "bearer_token", Severity: SeverityHigh, Tags: []string{"token", "oauth"},
			// At least 20 characters, so prose ("bearer authentication")
			// is left alone.
			Pattern: `(?i)\bbearer[ \t]+(?P<secret>[A-Za-z0-9._~+/-]{20,}=*)`,
		},
		anchors: []string{"bearer"}, confirm: blankAfter, lineLocal: true,
	},
	{
		Rule: Rule{
			Name: "authorization_header", Severity: SeverityHigh, Tags: []string{"token", "http"},
			Pattern: `(?i)\b(?:proxy-)?authorization` + assign + `["']?(?:(?:bearer|basic|token|digest)[ \t]+)?(?P<secret>[^\s"',;]+)`,
		},
		anchors: []string{"authorization"}, confirm: assigned, lineLocal: true,
	},
	{
		Rule: Rule{
			Name: "api_key_assignment", Severity: SeverityHigh, Tags: []string{"api_key"},
			Pattern: `(?i)api[_-]?key` + assign + longValue,
		},
		anchors: []string{"apikey", "api_key", "api-key"}, confirm: assigned, lineLocal: true,
	},
	{
		Rule: Rule{
			Name: "token_assignment", Severity: SeverityHigh, Tags: []string{"token", "oauth"},
			// Any key ending in token: access_token, refresh_token,
			// csrf_token, x-auth-token, githubToken.
			Pattern: `(?i)token` + assign + longValue,
		},
		anchors: []string{"token"}, confirm: assigned, lineLocal: true,
	},
	{
		Rule: Rule{
			Name: "url_password", Severity: SeverityHigh, Tags: []string{"password", "url"},
			Pattern: `\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:@/?#]*:(?P<secret>[^\s@/?#]+)@`,
		},
		anchors: []string{"://"}, confirm: userinfoPassword, lineLocal: true,
	},
	{
		Rule: Rule{
			Name: "password_assignment", Severity: SeverityHigh, Tags: []string{"password"},
			// Any key ending in one of the words: db_password, PGPASSWORD,
			// client_secret, "passwd": ... but not password_policy.
			Pattern: `(?i)(?:password|passwd|passphrase|pwd|secret)` + assign + value,
		},
		anchors: []string{"password", "passwd", "passphrase", "pwd", "secret"}, confirm: assigned, lineLocal: true,
	},
}

// DefaultRules returns a copy of the built-in rules, most specific first.
func DefaultRules() []Rule {
	out := make([]Rule, len(defaults))
	for i, d := range defaults {
		out[i] = d.Rule
		out[i].Tags = slices.Clone(d.Tags)
	}
	return out
}
