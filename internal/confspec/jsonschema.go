package confspec

import (
	"reflect"
	"sort"
)

// SchemaOptions name the schema and say what its values may hold.
type SchemaOptions struct {
	ID, Title, Description string
	// Interpolated documents accept a ${VAR} reference wherever a value
	// goes (Interpolate expands it before decoding).
	Interpolated bool
}

// DurationPattern matches what time.ParseDuration reads ("0" included).
const DurationPattern = `^(0|-?([0-9]+(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+)$`

// JSONSchema renders root as a JSON Schema (draft 2020-12). Every struct
// type becomes a definition under $defs, named by its Go type name.
func JSONSchema(root *Node, o SchemaOptions) map[string]any {
	g := &schemaGen{opts: o, defs: map[string]any{}}
	out := map[string]any{
		"$schema": "https://json-schema.org/draft/2020-12/schema",
	}
	if o.ID != "" {
		out["$id"] = o.ID
	}
	if o.Title != "" {
		out["title"] = o.Title
	}
	for k, v := range g.schema(root) {
		out[k] = v
	}
	if o.Description != "" {
		out["description"] = o.Description
	}
	if o.Interpolated {
		g.defs["interpolation"] = map[string]any{
			"type":        "string",
			"pattern":     `\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}`,
			"description": "A ${VAR} or ${VAR:-default} reference, replaced by the environment variable's value when the file is loaded.",
		}
	}
	if len(g.defs) > 0 {
		out["$defs"] = g.defs
	}
	return out
}

type schemaGen struct {
	opts SchemaOptions
	defs map[string]any
}

// schema is n's schema with its description and default.
func (g *schemaGen) schema(n *Node) map[string]any {
	s := g.shape(n)
	if n.Desc != "" {
		s["description"] = n.Desc
	}
	if n.Default != nil {
		s["default"] = n.Default
	}
	return s
}

func (g *schemaGen) shape(n *Node) map[string]any {
	if len(n.OneOf) > 0 {
		var alts []any
		for _, a := range n.OneOf {
			alts = append(alts, g.schema(a))
		}
		return map[string]any{"oneOf": alts}
	}
	var s map[string]any
	switch n.Kind {
	case "string":
		s = map[string]any{"type": "string"}
		if len(n.Enum) > 0 {
			s["enum"] = n.Enum
		}
	case "duration":
		s = map[string]any{"type": "string", "pattern": DurationPattern}
	case "integer", "number", "boolean":
		s = map[string]any{"type": n.Kind}
	case "list":
		return map[string]any{"type": "array", "items": g.schema(n.Items)}
	case "map":
		return map[string]any{"type": "object", "additionalProperties": g.schema(n.Values)}
	case "object":
		return g.object(n)
	default:
		return map[string]any{}
	}
	if g.opts.Interpolated && (n.Kind != "string" || len(n.Enum) > 0) {
		return map[string]any{"anyOf": []any{s, map[string]any{"$ref": "#/$defs/interpolation"}}}
	}
	return s
}

// object puts a struct's schema under $defs and refers to it.
func (g *schemaGen) object(n *Node) map[string]any {
	name := "object"
	if n.Type != nil && n.Type.Name() != "" {
		name = n.Type.Name()
	}
	ref := map[string]any{"$ref": "#/$defs/" + name}
	if _, done := g.defs[name]; done || n.Props == nil && n.Type != nil && n.Type.Kind() == reflect.Struct {
		return ref
	}
	g.defs[name] = nil // reserved: a recursive type refers to itself
	props := map[string]any{}
	var required []string
	for _, p := range n.Props {
		props[p.Key] = g.schema(p)
		if p.Required {
			required = append(required, p.Key)
		}
	}
	def := map[string]any{"type": "object", "additionalProperties": false, "properties": props}
	if n.TypeDesc != "" {
		def["description"] = n.TypeDesc
	}
	if len(required) > 0 {
		sort.Strings(required)
		def["required"] = required
	}
	g.defs[name] = def
	return ref
}
