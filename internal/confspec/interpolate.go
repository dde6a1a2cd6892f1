package confspec

import (
	"fmt"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// Interpolate replaces, in every scalar value of n (not in keys),
// ${NAME} with the variable's value and ${NAME:-default} with its value,
// or default when it is unset or empty; $$ stands for a literal $. A plain
// (unquoted) scalar is typed again after the replacement, so
// `concurrency: ${C:-16}` is a number. lookup is os.LookupEnv in
// production. Errors name the variable and the line, never a value.
//
// refs maps each line that had a reference to the variables named there,
// so a later error about that line's value can name them instead of
// printing what they hold.
func Interpolate(file string, n *yaml.Node, lookup func(string) (string, bool)) (refs map[int][]string, errs []error) {
	refs = map[int][]string{}
	var walk func(n *yaml.Node, isKey bool)
	walk = func(n *yaml.Node, isKey bool) {
		switch n.Kind {
		case yaml.DocumentNode, yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c, false)
			}
		case yaml.MappingNode:
			for i, c := range n.Content {
				walk(c, i%2 == 0)
			}
		case yaml.ScalarNode:
			if isKey || !strings.Contains(n.Value, "$") {
				return
			}
			v, names, err := expand(n.Value, lookup)
			refs[n.Line] = append(refs[n.Line], names...)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s:%d: %w", file, n.Line, err))
				return
			}
			if v != n.Value {
				n.Value = v
				if n.Style == 0 {
					n.Tag = "" // resolved again from the new value
				}
			}
		}
	}
	walk(n, false)
	return refs, errs
}

var varName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func expand(s string, lookup func(string) (string, bool)) (string, []string, error) {
	var b strings.Builder
	var names []string
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case i+1 < len(s) && s[i+1] == '$':
			b.WriteByte('$')
			i++
			continue
		case i+1 >= len(s) || s[i+1] != '{':
			b.WriteByte('$')
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", names, fmt.Errorf("%q opens a variable reference that does not close (write $$ for a literal $)", truncateRef(s[i:]))
		}
		ref := s[i+2 : i+end]
		name, def, hasDef := strings.Cut(ref, ":-")
		if !varName.MatchString(name) {
			return "", names, fmt.Errorf("${%s}: %q is not a variable name (${NAME} or ${NAME:-default}; $$ for a literal $)", truncateRef(ref), truncateRef(name))
		}
		names = append(names, name)
		v, ok := lookup(name)
		switch {
		case hasDef && (!ok || v == ""):
			v = def
		case !ok:
			return "", names, fmt.Errorf("${%s} is not set (set it, or give a default: ${%s:-value})", name, name)
		}
		b.WriteString(v)
		i += end
	}
	return b.String(), names, nil
}

// truncateRef keeps an error short; references are names, not secrets.
func truncateRef(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
