package gossip

import (
	"bytes"
	"encoding"
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// A flat decoder decodes a JSON object into a flat struct (see fieldsOf)
// in one pass over the bytes, without encoding/json's validity scan that
// precedes every Unmarshal nor its reflection per value. It takes only the
// plain form encoders produce: keys that are exactly a field's JSON name
// and hold no escape, and values of the field's own JSON kind. Fields whose
// type decodes itself (time.Time, json.RawMessage) and composite fields
// (slices, maps, pointers) get their value's bytes handed to json.Unmarshal,
// which checks them. On anything else it gives up, and strictUnmarshal
// decodes with encoding/json, which decides; FuzzStrictUnmarshal holds the
// two to the same results.

// flatField is how one field of a flat struct decodes.
type flatField struct {
	name  string
	index int
	kind  reflect.Kind
	// delegate: the value's bytes go to json.Unmarshal.
	delegate bool
	// unmarshaler: the field's type decodes itself (UnmarshalJSON), and
	// gets the value's bytes as encoding/json would give them.
	unmarshaler bool
	// raw: the field is a json.RawMessage, which may share the input.
	raw bool
}

var rawMessage = reflect.TypeFor[json.RawMessage]()

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// newFlatField says how field f (of JSON name name) decodes, or false when
// its options put it beyond the flat decoder.
func newFlatField(f reflect.StructField, name string, opts string) (flatField, bool) {
	if slices.Contains(strings.Split(opts, ","), "string") {
		return flatField{}, false
	}
	ff := flatField{name: name, index: f.Index[0], kind: f.Type.Kind()}
	pt := reflect.PointerTo(f.Type)
	switch {
	case ff.kind != reflect.Pointer && pt.Implements(jsonUnmarshaler):
		ff.unmarshaler = true
		ff.raw = f.Type == rawMessage
	case pt.Implements(jsonUnmarshaler) || pt.Implements(textUnmarshaler):
		ff.delegate = true
	default:
		switch ff.kind {
		case reflect.String, reflect.Bool, reflect.Float32, reflect.Float64,
			reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		default:
			ff.delegate = true
		}
	}
	return ff, true
}

// field returns the field whose JSON name is exactly key.
func (fs *fieldSet) field(key []byte) (*flatField, bool) {
	for i := range fs.fields {
		if fs.fields[i].name == string(key) {
			return &fs.fields[i], true
		}
	}
	return nil, false
}

// decodeFlat decodes the JSON object b into the struct v points to (with
// alias, its json.RawMessage fields share b) and
// reports true, or reports false, with v partly written, when b is not in
// the plain form (or not valid JSON, or a value does not fit its field):
// then the caller decodes b again with encoding/json. When it reports
// true, b is valid JSON and v holds what json.Unmarshal would have put
// there, and no key of b is unknown.
func (fs *fieldSet) decodeFlat(b []byte, v reflect.Value, alias bool) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipSpace(b, i+1) == len(b)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return false
		}
		end, escaped, ok := scanString(b, i)
		if !ok || escaped {
			return false
		}
		f, ok := fs.field(b[i+1 : end-1])
		if !ok {
			return false
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		if i >= len(b) {
			return false
		}
		if i, ok = f.decode(b, i, v.Field(f.index), alias); !ok {
			return false
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return skipSpace(b, i+1) == len(b)
		default:
			return false
		}
	}
}

// decode decodes the value at b[i] into dst and returns the index after it.
func (f *flatField) decode(b []byte, i int, dst reflect.Value, alias bool) (int, bool) {
	if f.delegate || f.unmarshaler {
		end, ok := validValue(b, i, 0)
		if !ok {
			return 0, false
		}
		if f.raw && alias {
			dst.SetBytes(b[i:end:end])
			return end, true
		}
		if f.unmarshaler {
			return end, dst.Addr().Interface().(json.Unmarshaler).UnmarshalJSON(b[i:end]) == nil
		}
		return end, json.Unmarshal(b[i:end], dst.Addr().Interface()) == nil
	}
	if b[i] == 'n' {
		// null leaves a scalar as it is.
		if !literal(b, i, "null") {
			return 0, false
		}
		return i + 4, true
	}
	switch f.kind {
	case reflect.String:
		if b[i] != '"' {
			return 0, false
		}
		end, escaped, ok := scanString(b, i)
		if !ok {
			return 0, false
		}
		raw := b[i+1 : end-1]
		if escaped {
			s, ok := unquote(raw)
			if !ok {
				return 0, false
			}
			dst.SetString(s)
		} else {
			if !utf8.Valid(raw) {
				return 0, false // encoding/json replaces bad bytes; let it
			}
			dst.SetString(string(raw))
		}
		return end, true
	case reflect.Bool:
		switch {
		case literal(b, i, "true"):
			dst.SetBool(true)
			return i + 4, true
		case literal(b, i, "false"):
			dst.SetBool(false)
			return i + 5, true
		}
		return 0, false
	}
	end, integer, ok := scanNumber(b, i)
	if !ok {
		return 0, false
	}
	tok := string(b[i:end])
	switch f.kind {
	case reflect.Float32, reflect.Float64:
		x, err := strconv.ParseFloat(tok, dst.Type().Bits())
		if err != nil || dst.OverflowFloat(x) {
			return 0, false
		}
		dst.SetFloat(x)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		x, err := strconv.ParseInt(tok, 10, 64)
		if !integer || err != nil || dst.OverflowInt(x) {
			return 0, false
		}
		dst.SetInt(x)
	default: // unsigned
		x, err := strconv.ParseUint(tok, 10, 64)
		if !integer || err != nil || dst.OverflowUint(x) {
			return 0, false
		}
		dst.SetUint(x)
	}
	return end, true
}

func literal(b []byte, i int, lit string) bool {
	return len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit
}

// scanString scans the JSON string starting at b[i] (a quote) and returns
// the index after its closing quote and whether it holds escapes. ok is
// false for an unterminated string or a control character in it; the
// escapes themselves are checked by unquote.
func scanString(b []byte, i int) (end int, escaped, ok bool) {
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, escaped, true
		case c == '\\':
			escaped = true
			i++
		case c < 0x20:
			return 0, false, false
		}
	}
	return 0, false, false
}

// scanNumber scans the JSON number at b[i] and returns the index after it
// and whether it is an integer (no fraction, no exponent).
func scanNumber(b []byte, i int) (end int, integer, ok bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(b, i)
	default:
		return 0, false, false
	}
	integer = true
	if i < len(b) && b[i] == '.' {
		integer = false
		if i = digits(b, i+1); b[i-1] == '.' {
			return 0, false, false // no digit after the point
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		integer = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		start := i
		if i = digits(b, i); i == start {
			return 0, false, false
		}
	}
	return i, integer, true
}

// digits returns the index after the run of decimal digits at b[i].
func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// unquote decodes the body of a JSON string that holds escapes, as
// encoding/json does: a lone or mismatched surrogate becomes U+FFFD. ok
// is false for a bad escape or invalid UTF-8 (which encoding/json would
// replace: it decides then).
func unquote(s []byte) (string, bool) {
	var out strings.Builder
	out.Grow(len(s))
	for len(s) > 0 {
		// Copy the run up to the next escape in one piece.
		run := s
		if j := bytes.IndexByte(s, '\\'); j >= 0 {
			run = s[:j]
		}
		if !utf8.Valid(run) {
			return "", false
		}
		out.Write(run)
		s = s[len(run):]
		if len(s) == 0 {
			break
		}
		if len(s) < 2 {
			return "", false
		}
		switch s[1] {
		case '"', '\\', '/':
			out.WriteByte(s[1])
		case 'b':
			out.WriteByte('\b')
		case 'f':
			out.WriteByte('\f')
		case 'n':
			out.WriteByte('\n')
		case 'r':
			out.WriteByte('\r')
		case 't':
			out.WriteByte('\t')
		case 'u':
			r, ok := hex4(s, 2)
			if !ok {
				return "", false
			}
			s = s[6:]
			if utf16.IsSurrogate(r) {
				if r2, ok := hex4(s, 2); ok && s[0] == '\\' && s[1] == 'u' {
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						out.WriteRune(dec)
						s = s[6:]
						continue
					}
				}
				r = utf8.RuneError
			}
			out.WriteRune(r)
			continue
		default:
			return "", false
		}
		s = s[2:]
	}
	return out.String(), true
}

// hex4 decodes the four hex digits at s[i:i+4].
func hex4(s []byte, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range s[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// maxDepth bounds the nesting validValue follows; deeper values are left
// to encoding/json (whose own limit is far higher).
const maxDepth = 64

// validValue returns the index after the JSON value at b[i], ok false when
// it is not valid JSON (as json.Valid judges: bytes in strings are not
// checked for UTF-8) or nests deeper than maxDepth.
func validValue(b []byte, i, depth int) (end int, ok bool) {
	if i >= len(b) {
		return 0, false
	}
	switch c := b[i]; {
	case c == '"':
		end, escaped, ok := scanString(b, i)
		if ok && escaped && !validEscapes(b[i+1:end-1]) {
			return 0, false
		}
		return end, ok
	case c == '{' || c == '[':
		if depth >= maxDepth {
			return 0, false
		}
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == closer {
			return i + 1, true
		}
		for {
			if c == '{' {
				if i >= len(b) || b[i] != '"' {
					return 0, false
				}
				if i, ok = validValue(b, i, depth+1); !ok {
					return 0, false
				}
				i = skipSpace(b, i)
				if i >= len(b) || b[i] != ':' {
					return 0, false
				}
				i = skipSpace(b, i+1)
			}
			if i, ok = validValue(b, i, depth+1); !ok {
				return 0, false
			}
			i = skipSpace(b, i)
			switch {
			case i >= len(b):
				return 0, false
			case b[i] == ',':
				i = skipSpace(b, i+1)
			case b[i] == closer:
				return i + 1, true
			default:
				return 0, false
			}
		}
	case c == 't':
		return i + 4, literal(b, i, "true")
	case c == 'f':
		return i + 5, literal(b, i, "false")
	case c == 'n':
		return i + 4, literal(b, i, "null")
	}
	end, _, ok = scanNumber(b, i)
	return end, ok
}

// validEscapes reports whether every backslash in the body of a JSON
// string starts a valid escape.
func validEscapes(s []byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			continue
		}
		if i+1 >= len(s) {
			return false
		}
		switch s[i+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i++
		case 'u':
			if _, ok := hex4(s, i+2); !ok {
				return false
			}
			i += 5
		default:
			return false
		}
	}
	return true
}
