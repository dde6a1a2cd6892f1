package declarative

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/sagabridge/sagabridge/internal/confspec"
)

// ParseDefinitions reads the definitions in one YAML file: one document
// per definition, separated by "---". file names it in messages. Every
// unknown key and type error is reported, each with file:line; what the
// definitions mean is checked by NewDefinitions.
func ParseDefinitions(file string, data []byte) ([]Definition, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var defs []Definition
	var errs []error
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs = append(errs, confspec.SyntaxError(file, data, err))
			break
		}
		got, err := ParseDefinitionNode(file, &doc)
		defs = append(defs, got...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return defs, errors.Join(errs...)
}

// ParseDefinitionNode reads definitions from a YAML node: a document or a
// mapping (one definition) or a sequence of them, such as a `sagas:`
// section of a larger config file.
func ParseDefinitionNode(file string, n *yaml.Node) ([]Definition, error) {
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil, nil
		}
		n = n.Content[0]
	}
	switch n.Kind {
	case yaml.SequenceNode:
		var defs []Definition
		var errs []error
		for _, item := range n.Content {
			d, err := parseOne(file, item)
			defs = append(defs, d)
			errs = append(errs, err)
		}
		return defs, errors.Join(errs...)
	case yaml.MappingNode:
		d, err := parseOne(file, n)
		return []Definition{d}, err
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return nil, nil
		}
	}
	return nil, fmt.Errorf("%s:%d: a saga definition is a mapping", file, n.Line)
}

// parseOne decodes one definition. It goes on past unknown keys and bad
// values, so that one run reports them all; the definition is returned
// (as far as it decoded) with the errors, so NewDefinitions can report
// what else is wrong with it.
func parseOne(file string, n *yaml.Node) (Definition, error) {
	errs := checkKeys(file, n, reflect.TypeFor[Definition]())
	var d Definition
	if err := n.Decode(&d); err != nil {
		errs = append(errs, positioned(file, err))
	}
	var stashed []string
	var walk func(steps []StepDef)
	walk = func(steps []StepDef) {
		for _, st := range steps {
			stashed = append(stashed, st.decodeErrs...)
			if st.Compensation != nil {
				stashed = append(stashed, st.Compensation.decodeErrs...)
			}
			walk(st.Parallel)
		}
	}
	walk(d.Steps)
	if len(stashed) > 0 {
		errs = append(errs, positioned(file, &yaml.TypeError{Errors: stashed}))
	}
	d.file, d.Source = file, fmt.Sprintf("%s:%d", file, n.Line)
	return d, errors.Join(errs...)
}

// positioned rewrites yaml.v3's "line N: msg" as "file:N: msg".
func positioned(file string, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return fmt.Errorf("%s: %w", file, err)
	}
	errs := make([]error, 0, len(te.Errors))
	for _, e := range te.Errors {
		if rest, ok := strings.CutPrefix(e, "line "); ok {
			if n, msg, ok := strings.Cut(rest, ": "); ok {
				errs = append(errs, fmt.Errorf("%s:%s: %s", file, n, msg))
				continue
			}
		}
		errs = append(errs, fmt.Errorf("%s: %s", file, e))
	}
	return errors.Join(errs...)
}

// ErrNoSagaFiles: a pattern of saga files matches no file.
var ErrNoSagaFiles = errors.New("no file matches")

// LoadDefinitions parses every file of fsys matching the patterns
// (fs.Glob syntax) and reports every problem of every file.
func LoadDefinitions(fsys fs.FS, patterns ...string) ([]Definition, error) {
	return loadDefinitions(fsys, func(f string) string { return f }, patterns)
}

// LoadDefinitionsIn is LoadDefinitions on the directory dir (patterns
// relative to it), naming files in messages by their path with dir, so
// that file:line opens the file from where the program runs.
func LoadDefinitionsIn(dir string, patterns ...string) ([]Definition, error) {
	return loadDefinitions(os.DirFS(dir), func(f string) string { return filepath.Join(dir, f) }, patterns)
}

func loadDefinitions(fsys fs.FS, name func(string) string, patterns []string) ([]Definition, error) {
	var files []string
	var errs []error
	for _, p := range patterns {
		m, err := fs.Glob(fsys, p)
		if err != nil {
			errs = append(errs, fmt.Errorf("saga files %q: %w", p, err))
			continue
		}
		if len(m) == 0 {
			errs = append(errs, fmt.Errorf("saga files %q: %w", p, ErrNoSagaFiles))
		}
		files = append(files, m...)
	}
	sort.Strings(files)
	var defs []Definition
	for i, f := range files {
		if i > 0 && files[i-1] == f {
			continue
		}
		data, err := fs.ReadFile(fsys, f)
		if err != nil {
			errs = append(errs, fmt.Errorf("saga file %s: %w", name(f), err))
			continue
		}
		got, err := ParseDefinitions(name(f), data)
		defs = append(defs, got...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return defs, errors.Join(errs...)
}

// checkKeys reports every mapping key that names no field of t, with its
// line. yaml.v3's KnownFields does not reach into types that decode
// themselves (StepDef, CompensationDef), so the check is done here, once,
// for the whole tree.
func checkKeys(file string, n *yaml.Node, t reflect.Type) []error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n.Kind {
	case yaml.AliasNode:
		return checkKeys(file, n.Alias, t)
	case yaml.SequenceNode:
		if t.Kind() != reflect.Slice {
			return nil
		}
		var errs []error
		for _, c := range n.Content {
			errs = append(errs, checkKeys(file, c, t.Elem())...)
		}
		return errs
	case yaml.MappingNode:
		if t.Kind() != reflect.Struct {
			return nil // a map or an arbitrary value: any key goes
		}
		fields := yamlFields(t)
		var errs []error
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			ft, ok := fields[k.Value]
			if !ok {
				errs = append(errs, fmt.Errorf("%s:%d: unknown key %q (expected one of %s)", file, k.Line, k.Value, knownKeys(fields)))
				continue
			}
			errs = append(errs, checkKeys(file, v, ft)...)
		}
		return errs
	}
	return nil
}

func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
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
		out[name] = f.Type
	}
	return out
}

func knownKeys(fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
