package secret

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"

	"chorus"
)

// Redacted is what a Secret shows instead of its value.
const Redacted = "[REDACTED]"

// Secret holds a credential: an API key, a token, a webhook secret. The
// value sits behind a pointer
// so that printing a struct holding a Secret in an unexported field shows an
// address, not the value; every formatting method of Secret itself shows
// Redacted.
type Secret struct{ v *string }

// New wraps s; an empty s gives the zero Secret.
func New(s string) Secret {
	if s == "" {
		return Secret{}
	}
	return Secret{v: &s}
}

// IsSet reports whether the secret holds a value.
func (s Secret) IsSet() bool { return s.v != nil }

// Reveal returns the value, for an Authorization header or an HMAC key only.
func (s Secret) Reveal() string {
	if s.v == nil {
		return ""
	}
	return *s.v
}

// String returns Redacted, or "" for the zero Secret.
func (s Secret) String() string {
	if s.v == nil {
		return ""
	}
	return Redacted
}

// GoString returns String, quoted.
func (s Secret) GoString() string { return fmt.Sprintf("%q", s.String()) }

// Format makes every fmt verb print String.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		io.WriteString(f, s.GoString())
		return
	}
	io.WriteString(f, s.String())
}

// LogValue makes slog print String.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText makes encoders print String.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Scrub replaces every occurrence of the value in text with Redacted.
func (s Secret) Scrub(text string) string {
	if s.v == nil || !strings.Contains(text, *s.v) {
		return text
	}
	return strings.ReplaceAll(text, *s.v, Redacted)
}

// ScrubBytes is Scrub for a byte slice; b is returned as is when it does
// not hold the value.
func (s Secret) ScrubBytes(b []byte) []byte {
	if s.v == nil || !bytes.Contains(b, []byte(*s.v)) {
		return b
	}
	return bytes.ReplaceAll(b, []byte(*s.v), []byte(Redacted))
}

var envVarPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// CheckSource validates where a secret comes from: at most one of env and
// file, env a variable name. envField and fileField name the fields in
// errors (for example "token_env" and "token_file").
func CheckSource(envField, env, fileField, file string) error {
	switch {
	case env != "" && file != "":
		return fmt.Errorf("%w: %s: set only one of %s and %s", chorus.ErrInvalid, fileField, envField, fileField)
	case env != "" && !envVarPattern.MatchString(env):
		return fmt.Errorf("%w: %s: must be an environment variable name, got %q", chorus.ErrInvalid, envField, env)
	}
	return nil
}

// maxSecretFile bounds a secret file: a token is a line, not a document.
const maxSecretFile = 16 << 10

// Load reads a secret from the environment variable env (through
// getenv, os.Getenv when nil) or from the file at path file; neither gives
// the zero Secret. Surrounding white space is trimmed; a source that is
// named but empty is an error, and so is a value that cannot travel in an
// HTTP header. Errors name the field and the variable or file, never the
// value.
func Load(envField, env, fileField, file string, getenv func(string) string) (Secret, error) {
	if err := CheckSource(envField, env, fileField, file); err != nil {
		return Secret{}, err
	}
	var value, field, source string
	switch {
	case env != "":
		if getenv == nil {
			getenv = os.Getenv
		}
		value, field, source = getenv(env), envField, "environment variable "+env
	case file != "":
		b, err := readSecretFile(file)
		if err != nil {
			return Secret{}, fmt.Errorf("%w: %s: %w", chorus.ErrInvalid, fileField, err)
		}
		value, field, source = string(b), fileField, "file "+file
	default:
		return Secret{}, nil
	}
	value = strings.TrimSpace(value)
	if value == "" {
		return Secret{}, fmt.Errorf("%w: %s: %s is empty or unset", chorus.ErrInvalid, field, source)
	}
	for _, r := range value {
		if r < 0x21 || r > 0x7e {
			return Secret{}, fmt.Errorf("%w: %s: the value in %s holds characters not allowed in an HTTP header", chorus.ErrInvalid, field, source)
		}
	}
	return New(value), nil
}

func readSecretFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxSecretFile {
		return nil, fmt.Errorf("%s is larger than %d bytes; it should hold only the secret", path, maxSecretFile)
	}
	return bytes.TrimSpace(b), nil
}
