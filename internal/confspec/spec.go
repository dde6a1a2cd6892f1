package confspec

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"
)

// Node describes one key (or the document itself) of a YAML config.
type Node struct {
	// Key is the YAML key; "" for the root and for list items.
	Key string
	// Kind is string, integer, number, boolean, duration, object, list,
	// map or any.
	Kind string
	// Desc is what the key means; TypeDesc what its type is (a struct's
	// doc comment), which Desc falls back to.
	Desc     string
	TypeDesc string
	Default  any
	Enum     []string
	Required bool
	// Props are an object's keys in declaration order, Items a list's
	// element, Values a map's values.
	Props  []*Node
	Items  *Node
	Values *Node
	// OneOf lists alternative shapes (a value that is a name or a
	// mapping, say); Kind is then "".
	OneOf []*Node
	// Type is the Go type, for the references between definitions.
	Type reflect.Type
}

// Override describes a type that decodes itself. It returns the node for
// t; the caller sets Key, Desc and Default.
type Override func(t reflect.Type, b *Builder) *Node

// Builder turns Go types into Nodes.
type Builder struct {
	Docs      Docs
	Overrides map[reflect.Type]Override
	seen      map[reflect.Type]bool
}

// Describe builds the node of t; defaults, when valid, is a value of t
// whose non-zero fields are the defaults (for a list, its first element
// holds an item's defaults; for a map, any one value).
func (b *Builder) Describe(t reflect.Type, defaults reflect.Value) *Node {
	if b.seen == nil {
		b.seen = map[reflect.Type]bool{}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	for defaults.IsValid() && defaults.Kind() == reflect.Pointer {
		if defaults.IsNil() {
			defaults = reflect.Value{}
		} else {
			defaults = defaults.Elem()
		}
	}
	if o, ok := b.Overrides[t]; ok {
		n := o(t, b)
		n.Type = t
		return n
	}
	n := &Node{Type: t}
	switch {
	case t == reflect.TypeFor[time.Duration]():
		n.Kind = "duration"
	case t.Kind() == reflect.String:
		n.Kind = "string"
	case t.Kind() == reflect.Bool:
		n.Kind = "boolean"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		n.Kind = "integer"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		n.Kind = "number"
	case t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
		n.Kind = "list"
		var item reflect.Value
		if defaults.IsValid() && defaults.Len() > 0 {
			item = defaults.Index(0)
		}
		n.Items = b.Describe(t.Elem(), item)
	case t.Kind() == reflect.Map:
		n.Kind = "map"
		var val reflect.Value
		if defaults.IsValid() && defaults.Len() > 0 {
			val = defaults.MapIndex(defaults.MapKeys()[0])
		}
		n.Values = b.Describe(t.Elem(), val)
	case t.Kind() == reflect.Struct:
		return b.Struct(t, defaults)
	default:
		n.Kind = "any"
	}
	return n
}

// Struct describes struct type t field by field, whatever override it
// has (an override of a type that also takes a mapping uses it).
func (b *Builder) Struct(t reflect.Type, defaults reflect.Value) *Node {
	if b.seen == nil {
		b.seen = map[reflect.Type]bool{}
	}
	n := &Node{Type: t, Kind: "object"}
	if b.seen[t] {
		return n // recursive: the schema refers to the definition
	}
	b.seen[t] = true
	defer delete(b.seen, t)
	n.TypeDesc = b.Docs[t.PkgPath()+"."+t.Name()]
	n.Desc = n.TypeDesc
	for _, f := range Fields(t) {
		var fd reflect.Value
		if defaults.IsValid() {
			fd = defaults.Field(f.Index)
		}
		c := b.Describe(f.Type, fd)
		c.Key = f.Key
		if d := b.Docs[t.PkgPath()+"."+t.Name()+"."+f.Name]; d != "" {
			c.Desc = keyFirst(d, f.Name, f.Key)
		}
		if e := f.Tag.Get("enum"); e != "" {
			c.Enum = strings.Split(e, ",")
		}
		c.Required = f.Tag.Get("required") == "true"
		if fd.IsValid() && isScalar(c.Kind) && !fd.IsZero() {
			c.Default = scalar(fd)
		}
		n.Props = append(n.Props, c)
	}
	return n
}

func isScalar(kind string) bool {
	switch kind {
	case "string", "integer", "number", "boolean", "duration":
		return true
	}
	return false
}

func scalar(v reflect.Value) any {
	// An optional key (a pointer, so that unset and zero differ) has the
	// default it points at.
	for v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Type() == reflect.TypeFor[time.Duration]() {
		return time.Duration(v.Int()).String()
	}
	return v.Interface()
}

// keyFirst rewrites a doc comment that starts with the Go field name to
// start with the YAML key the reader writes.
func keyFirst(doc, goName, key string) string {
	if rest, ok := strings.CutPrefix(doc, goName+" "); ok {
		return key + " " + rest
	}
	return doc
}

// FormatDefault prints a default as the YAML would say it.
func FormatDefault(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		b, _ := json.Marshal(x)
		return string(b)
	default:
		return fmt.Sprint(x)
	}
}
