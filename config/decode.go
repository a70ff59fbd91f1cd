package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"

	"chorus"
)

// decode overlays the single YAML document in data onto *f. It walks the
// node tree itself, guided by the yaml struct tags, rather than using
// yaml.Decoder.KnownFields: that way every error carries the field's full
// path (even inside flow mappings, where several fields share a line), and
// the lines of all set fields are returned so later validation errors can
// point into the file too.
func decode(data []byte, f *File) (lines map[string]int, err error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		return nil, nil // empty file: all defaults
	case err != nil:
		return nil, fmt.Errorf("config: %w: %w", chorus.ErrInvalid, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, fmt.Errorf("config: %w: %w", chorus.ErrInvalid, err)
		}
		return nil, fmt.Errorf("config: %w: only one YAML document is allowed, found another at line %d", chorus.ErrInvalid, extra.Line)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, nil
		}
		root = root.Content[0]
	}
	w := walker{lines: make(map[string]int)}
	if err := w.value(root, reflect.ValueOf(f).Elem(), ""); err != nil {
		return nil, err
	}
	return w.lines, nil
}

type walker struct {
	lines map[string]int // YAML path -> line of its key or item
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// value decodes n into v, which must be settable; path names v in errors.
func (w walker) value(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil // null keeps the default
	}
	if v.Addr().Type().Implements(unmarshalerType) {
		if err := n.Decode(v.Addr().Interface()); err != nil {
			return fieldErr(path, n, "%v", err)
		}
		return nil
	}
	switch v.Kind() {
	case reflect.Struct:
		return w.mapping(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return fieldErr(path, n, "must be a list, got %s", describeNode(n))
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			w.lines[p] = item.Line
			if err := w.value(item, s.Index(i), p); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		return fieldErr(path, n, "must be %s, got %s", describeType(v.Type()), describeNode(n))
	}
	if err := n.Decode(v.Addr().Interface()); err != nil {
		return fieldErr(path, n, "must be %s, got %s", describeType(v.Type()), describeNode(n))
	}
	return nil
}

// mapping overlays the mapping n onto the struct v, key by key.
func (w walker) mapping(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind != yaml.MappingNode {
		name := path
		if name == "" {
			name = "the file"
		}
		return fieldErr(name, n, "must be a mapping, got %s", describeNode(n))
	}
	fields := yamlFields(v.Type())
	seen := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return fieldErr(join(path, "?"), k, "keys must be plain names, got %s", describeNode(k))
		}
		p := join(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			return fieldErr(p, k, "set twice (first on line %d)", first)
		}
		seen[k.Value] = k.Line
		idx, ok := fields[k.Value]
		if !ok {
			return fieldErr(p, k, "unknown field")
		}
		w.lines[p] = k.Line
		if err := w.value(val, v.Field(idx), p); err != nil {
			return err
		}
	}
	return nil
}

// yamlFields maps the YAML key of each exported field of t to its index.
func yamlFields(t reflect.Type) map[string]int {
	fields := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = strings.ToLower(sf.Name)
		}
		fields[name] = i
	}
	return fields
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func fieldErr(path string, n *yaml.Node, format string, args ...any) *FieldError {
	return &FieldError{Path: path, Line: n.Line, Msg: fmt.Sprintf(format, args...)}
}

// describeNode says what the file holds at n, for error messages.
func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// describeType names the kind of value a Go type expects.
func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	}
	return "a " + t.String()
}
