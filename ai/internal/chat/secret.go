package chat

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

// Secret holds an API key. The value sits behind a pointer so that even
// printing a struct that embeds a Secret in an unexported field shows an
// address, not the key; every formatting method shows Redacted.
type Secret struct{ v *string }

// NewSecret wraps s; an empty s gives the zero Secret.
func NewSecret(s string) Secret {
	if s == "" {
		return Secret{}
	}
	return Secret{v: &s}
}

// IsSet reports whether the secret holds a value.
func (s Secret) IsSet() bool { return s.v != nil }

// Reveal returns the value, for the Authorization header only.
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

// GoString returns the same as String, quoted.
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

// Scrub replaces every occurrence of the value in b with Redacted.
func (s Secret) Scrub(b []byte) []byte {
	if s.v == nil || !bytes.Contains(b, []byte(*s.v)) {
		return b
	}
	return bytes.ReplaceAll(b, []byte(*s.v), []byte(Redacted))
}

var envVarPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// CheckKeySource validates where a key comes from, naming the field: at
// most one of env and file, and env a variable name.
func CheckKeySource(env, file string) error {
	switch {
	case env != "" && file != "":
		return fmt.Errorf("%w: api_key_file: set only one of api_key_env and api_key_file", chorus.ErrInvalid)
	case env != "" && !envVarPattern.MatchString(env):
		return fmt.Errorf("%w: api_key_env: must be an environment variable name, got %q", chorus.ErrInvalid, env)
	}
	return nil
}

// maxKeyFile bounds the key file read: a key is a line, not a document.
const maxKeyFile = 16 << 10

// LoadKey reads the API key from the environment variable env (through
// getenv) or from the file at path file; neither gives the zero Secret.
// Surrounding white space is trimmed. A source that is named but empty is
// an error. Errors name the variable or file, never the value.
func LoadKey(env, file string, getenv func(string) string) (Secret, error) {
	if err := CheckKeySource(env, file); err != nil {
		return Secret{}, err
	}
	var key, field, source string
	switch {
	case env != "":
		if getenv == nil {
			getenv = os.Getenv
		}
		key, field, source = getenv(env), "api_key_env", "environment variable "+env
	case file != "":
		b, err := readKeyFile(file)
		if err != nil {
			return Secret{}, fmt.Errorf("%w: api_key_file: %w", chorus.ErrInvalid, err)
		}
		key, field, source = string(b), "api_key_file", "file "+file
	default:
		return Secret{}, nil
	}
	key = strings.TrimSpace(key)
	if key == "" {
		return Secret{}, fmt.Errorf("%w: %s: %s is empty or unset", chorus.ErrInvalid, field, source)
	}
	for _, r := range key {
		if r < 0x21 || r > 0x7e {
			return Secret{}, fmt.Errorf("%w: %s: the key in %s holds characters not allowed in an HTTP header", chorus.ErrInvalid, field, source)
		}
	}
	return NewSecret(key), nil
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxKeyFile {
		return nil, fmt.Errorf("%s is larger than %d bytes; it should hold only the key", path, maxKeyFile)
	}
	return b, nil
}
