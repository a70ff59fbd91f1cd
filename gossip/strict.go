package gossip

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"time"
)

// strictUnmarshal decodes one JSON value from b into v, refusing unknown
// object keys and trailing data: what a json.Decoder with
// DisallowUnknownFields followed by an io.EOF check does, without the
// decoder's read buffer (a copy of the input, grown twice), which is most
// of what validating a message on every hop allocates. The keys of the top
// level are checked against v's fields here (as encoding/json matches
// them: exactly, else case-insensitively); a type with nested structs, or
// a key with escapes, takes the decoder instead.
func strictUnmarshal(b []byte, v any) error { return strictDecode(b, v, false) }

// strictDecode is strictUnmarshal; with alias, json.RawMessage fields of a
// flat struct share b's bytes instead of copying them.
func strictDecode(b []byte, v any, alias bool) error {
	fs := fieldsOf(reflect.TypeOf(v))
	if fs == nil {
		return decodeStrict(b, v)
	}
	rv := reflect.ValueOf(v)
	if rv.IsNil() {
		return decodeStrict(b, v)
	}
	if fs.decodeFlat(b, rv.Elem(), alias) {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		var se *json.SyntaxError
		switch {
		case len(bytes.TrimSpace(b)) == 0:
			return errors.New("EOF: no JSON value")
		case errors.As(err, &se) && strings.Contains(se.Error(), "after top-level value"):
			return errors.New("trailing data after the value")
		}
		return err
	}
	unknown, found, ok := fs.unknownKey(b)
	if !ok {
		return decodeStrict(b, v)
	}
	if found {
		return fmt.Errorf("json: unknown field %q", unknown)
	}
	return nil
}

// decodeStrict is the reference: a strict decoder and nothing after the
// value.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the value")
	}
	return nil
}

// fieldSet is a flat struct's fields: their JSON names and how each
// decodes (flat.go).
type fieldSet struct{ fields []flatField }

var fieldSets sync.Map // reflect.Type -> *fieldSet (nil: not flat)

var timeType = reflect.TypeFor[time.Time]()

// fieldsOf returns the field names of the struct t points to, or nil when
// t is not a pointer to a struct whose fields are all free of nested
// structs (other than time.Time), which the top-level check cannot cover.
func fieldsOf(t reflect.Type) *fieldSet {
	if v, ok := fieldSets.Load(t); ok {
		return v.(*fieldSet)
	}
	fs := buildFields(t)
	fieldSets.Store(t, fs)
	return fs
}

func buildFields(t reflect.Type) *fieldSet {
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil
	}
	fs := &fieldSet{}
	st := t.Elem()
	for i := range st.NumField() {
		f := st.Field(i)
		if f.Anonymous {
			return nil
		}
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, clash := fs.field([]byte(name)); clash {
			return nil // encoding/json's rules for clashing names apply
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice || ft.Kind() == reflect.Array || ft.Kind() == reflect.Map {
			if ft == rawMessage {
				break
			}
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft != timeType {
			return nil
		}
		ff, ok := newFlatField(f, name, opts)
		if !ok {
			return nil
		}
		fs.fields = append(fs.fields, ff)
	}
	return fs
}

// unknownKey returns the first top-level key of the JSON object b that
// names no field (found false when all do). ok is false when b is not an
// object or a key holds an escape; b must be valid JSON.
func (fs *fieldSet) unknownKey(b []byte) (unknown string, found, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return "", false, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return "", false, true
	}
	for i < len(b) {
		if b[i] != '"' {
			return "", false, false
		}
		end := i + 1
		for end < len(b) && b[end] != '"' {
			if b[end] == '\\' {
				return "", false, false
			}
			end++
		}
		if end >= len(b) {
			return "", false, false
		}
		if key := b[i+1 : end]; !fs.has(key) {
			return string(key), true, true
		}
		i = skipSpace(b, end+1)
		if i >= len(b) || b[i] != ':' {
			return "", false, false
		}
		i = skipValue(b, skipSpace(b, i+1))
		i = skipSpace(b, i)
		if i >= len(b) {
			return "", false, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return "", false, true
		default:
			return "", false, false
		}
	}
	return "", false, false
}

func (fs *fieldSet) has(key []byte) bool {
	if _, ok := fs.field(key); ok {
		return true
	}
	for _, f := range fs.fields {
		if bytes.EqualFold([]byte(f.name), key) {
			return true
		}
	}
	return false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the index just after the valid JSON value at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(b) && !strings.ContainsRune(",}] \t\n\r", rune(b[i])) {
		i++ // a number, true, false or null
	}
	return i
}

// skipString returns the index just after the string starting at b[i].
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// compact reports whether the valid JSON d has no whitespace outside its
// strings, as json.Compact would leave it.
func compact(d []byte) bool {
	for len(d) > 0 {
		c := d[0]
		switch c {
		case ' ', '\t', '\n', '\r':
			return false
		case '"':
			// Jump to the closing quote: the next one not escaped.
			i := 1
			for {
				j := bytes.IndexByte(d[i:], '"')
				if j < 0 {
					return true // unterminated: not valid JSON, not our case
				}
				i += j
				bs := 0
				for k := i - 1; k > 0 && d[k] == '\\'; k-- {
					bs++
				}
				if bs%2 == 0 {
					break
				}
				i++
			}
			d = d[i+1:]
			continue
		}
		d = d[1:]
	}
	return true
}
