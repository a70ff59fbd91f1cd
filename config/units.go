package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written in Go syntax ("90s", "10m").
type Duration time.Duration

// String formats d in Go syntax.
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML reads a duration scalar.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("must be a duration such as 90s or 10m, got %s", describeNode(n))
	}
	return d.UnmarshalText([]byte(n.Value))
}

// UnmarshalText parses a non-negative duration; a bare number is refused
// because its unit would be a guess.
func (d *Duration) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: use a number with a unit, such as 90s or 10m", s)
	}
	if v < 0 {
		return fmt.Errorf("invalid duration %q: must not be negative", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes d in Go syntax, so a File can be written back.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Size is a number of bytes.
type Size int64

// Binary size units.
const (
	B   Size = 1
	KiB Size = 1 << 10
	MiB Size = 1 << 20
	GiB Size = 1 << 30
)

// unitSize returns the size of an accepted unit name, in any case.
func unitSize(unit string) (Size, bool) {
	switch strings.ToLower(unit) {
	case "", "b":
		return B, true
	case "kib":
		return KiB, true
	case "mib":
		return MiB, true
	case "gib":
		return GiB, true
	}
	return 0, false
}

// ParseSize parses "512MiB", "1.5 GiB", "100B" or a plain byte count. Units
// are matched without regard to case; decimal units (KB, MB, GB) and
// suffixes such as "M" are refused, since they are read differently by
// different tools.
func ParseSize(s string) (Size, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("invalid size %q: must not be negative", s)
	}
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(s)
	}
	num, unit := s[:i], strings.TrimSpace(s[i:])
	mult, ok := unitSize(unit)
	switch {
	case num == "":
		return 0, fmt.Errorf("invalid size %q: must start with a number", s)
	case !ok:
		return 0, fmt.Errorf("invalid size %q: unknown unit %q, use B, KiB, MiB or GiB", s, unit)
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n > math.MaxInt64/int64(mult) {
			return 0, fmt.Errorf("invalid size %q: too large", s)
		}
		return Size(n) * mult, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q: %q is not a number", s, num)
	}
	v := f * float64(mult)
	switch {
	case v >= math.MaxInt64:
		return 0, fmt.Errorf("invalid size %q: too large", s)
	case v != math.Trunc(v):
		return 0, fmt.Errorf("invalid size %q: not a whole number of bytes", s)
	}
	return Size(v), nil
}

// String formats s in the largest unit that divides it exactly.
func (s Size) String() string {
	for _, u := range []struct {
		size Size
		name string
	}{{GiB, "GiB"}, {MiB, "MiB"}, {KiB, "KiB"}} {
		if s != 0 && s%u.size == 0 {
			return strconv.FormatInt(int64(s/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}

// UnmarshalYAML reads a size scalar.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("must be a size such as 512MiB, got %s", describeNode(n))
	}
	return s.UnmarshalText([]byte(n.Value))
}

// UnmarshalText parses a size; see ParseSize.
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// MarshalText writes s with its unit, so a File can be written back.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
