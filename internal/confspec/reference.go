package confspec

import "strings"

// Row is one key of a configuration reference.
type Row struct {
	// Key is the dotted path: routes[].start.workflow, access.workflows.<name>.start.
	Key      string
	Type     string
	Default  string
	Enum     []string
	Required bool
	Desc     string
	// Depth is how many blocks the key is nested in.
	Depth int
}

// Reference lists every key under root, depth first, in declaration
// order.
func Reference(root *Node) []Row {
	var rows []Row
	var walk func(n *Node, path string, depth int)
	walk = func(n *Node, path string, depth int) {
		for _, p := range n.Props {
			key := p.Key
			if path != "" {
				key = path + "." + p.Key
			}
			rows = append(rows, Row{Key: key, Type: typeName(p), Default: FormatDefault(p.Default), Enum: p.Enum,
				Required: p.Required, Desc: p.Desc, Depth: depth})
			walk(inner(p), key+suffix(p), depth+1)
		}
	}
	walk(root, "", 0)
	return rows
}

// inner is the node whose keys continue a path: an object, a list's or a
// map's element.
func inner(n *Node) *Node {
	switch n.Kind {
	case "list":
		return inner(n.Items)
	case "map":
		return inner(n.Values)
	}
	for _, a := range n.OneOf {
		if a.Kind == "object" {
			return a
		}
	}
	return n
}

func suffix(n *Node) string {
	switch n.Kind {
	case "list":
		return "[]" + suffix(n.Items)
	case "map":
		return ".<name>" + suffix(n.Values)
	}
	return ""
}

func typeName(n *Node) string {
	switch n.Kind {
	case "list":
		return "list of " + plural(typeName(n.Items))
	case "map":
		return "map of " + plural(typeName(n.Values))
	case "object":
		return "object"
	case "":
		var alts []string
		for _, a := range n.OneOf {
			alts = append(alts, typeName(a))
		}
		return strings.Join(alts, " or ")
	}
	return n.Kind
}

func plural(s string) string {
	if strings.HasSuffix(s, "s") || strings.Contains(s, " ") {
		return s
	}
	return s + "s"
}
