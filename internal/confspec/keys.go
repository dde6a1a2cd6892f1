package confspec

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Field is one YAML key of a struct.
type Field struct {
	Key   string
	Index int
	reflect.StructField
}

// Fields lists the YAML keys of struct type t, in declaration order:
// exported fields, named by their yaml tag (the lowercased field name
// without one), "-" skipped.
func Fields(t reflect.Type) []Field {
	var out []Field
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out = append(out, Field{Key: name, Index: i, StructField: f})
	}
	return out
}

// CheckKeys reports every mapping key of n that names no field of t, each
// with file:line. Maps and values of interface type take any key.
func CheckKeys(file string, n *yaml.Node, t reflect.Type) []error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n.Kind {
	case yaml.DocumentNode, yaml.AliasNode:
		if n.Kind == yaml.AliasNode {
			return CheckKeys(file, n.Alias, t)
		}
		var errs []error
		for _, c := range n.Content {
			errs = append(errs, CheckKeys(file, c, t)...)
		}
		return errs
	case yaml.SequenceNode:
		if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
			return nil
		}
		var errs []error
		for _, c := range n.Content {
			errs = append(errs, CheckKeys(file, c, t.Elem())...)
		}
		return errs
	case yaml.MappingNode:
		switch t.Kind() {
		case reflect.Map:
			var errs []error
			for i := 1; i < len(n.Content); i += 2 {
				errs = append(errs, CheckKeys(file, n.Content[i], t.Elem())...)
			}
			return errs
		case reflect.Struct:
		default:
			return nil
		}
		fields := map[string]reflect.Type{}
		var names []string
		for _, f := range Fields(t) {
			fields[f.Key] = f.Type
			names = append(names, f.Key)
		}
		sort.Strings(names)
		var errs []error
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			ft, ok := fields[k.Value]
			if !ok {
				errs = append(errs, fmt.Errorf("%s:%d: unknown key %q (expected one of %s)", file, k.Line, k.Value, strings.Join(names, ", ")))
				continue
			}
			errs = append(errs, CheckKeys(file, v, ft)...)
		}
		return errs
	}
	return nil
}
