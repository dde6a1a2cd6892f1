package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/internal/confspec"
	"github.com/sagabridge/sagabridge/sagas/declarative"
)

const root = "../../.."

// TestGeneratedFilesAreCurrent: the committed schemas and reference are
// what the loader's types give today.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	files, err := Render(root)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(root, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is stale (%v): run `make schema` and commit the result", name, err)
		}
	}
}

// TestEveryKeyDocumented: the reference gives every key of bridge.yaml a
// meaning.
func TestEveryKeyDocumented(t *testing.T) {
	docs := confspec.Docs{}
	if err := docs.ParseDocs(module+"/bridge/config", filepath.Join(root, "bridge/config")); err != nil {
		t.Fatal(err)
	}
	rows := confspec.Reference(BridgeNode(docs))
	if len(rows) < 100 {
		t.Fatalf("%d keys: the reference misses blocks", len(rows))
	}
	for _, r := range rows {
		if strings.TrimSpace(r.Desc) == "" {
			t.Errorf("%s has no description: give its field a doc comment in bridge/config", r.Key)
		}
	}
	for _, key := range []string{"broker.kafka.tls.certFile", "broker.kafka.tls.keyFile", "broker.kafka.tls.insecureSkipVerify",
		"engine.embedded.synchronous", "broker.kafka.topicPartitions", "routes[].start.workflow", "migration.workflows.<name>.mode",
		"access.workflows.<name>.start.routes", "metrics.listen"} {
		found := false
		for _, r := range rows {
			found = found || r.Key == key
		}
		if !found {
			t.Errorf("the reference has no %s", key)
		}
	}
}

// schemaLine is how an example names its schema, for editors and for
// TestExamplesMatchSchema.
var schemaLine = regexp.MustCompile(`(?m)^# yaml-language-server: \$schema=(\S+)$`)

// TestExamplesMatchSchema: every bridge config and saga file in the
// repository names its schema on its first lines and satisfies it, and
// loads with the loader too (the schema says no more than the loader).
func TestExamplesMatchSchema(t *testing.T) {
	compiler := jsonschema.NewCompiler()
	schemas := map[string]*jsonschema.Schema{}
	compile := func(path string) *jsonschema.Schema {
		t.Helper()
		abs, err := filepath.Abs(path)
		if err != nil {
			t.Fatal(err)
		}
		if s, ok := schemas[abs]; ok {
			return s
		}
		f, err := os.Open(abs)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		doc, err := jsonschema.UnmarshalJSON(f)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if err := compiler.AddResource("file://"+abs, doc); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		s, err := compiler.Compile("file://" + abs)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		schemas[abs] = s
		return s
	}
	checked := map[string]int{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); name == ".git" || name == "bin" || name == "data" || name == "testdata" || name == "node_modules" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".yaml") && !strings.HasSuffix(path, ".yml") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		kind := classify(t, path, b)
		if kind == "" {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		m := schemaLine.FindSubmatch(b)
		want := map[string]string{"bridge": "bridge.schema.json", "saga": "saga.schema.json"}[kind]
		if m == nil || filepath.Base(string(m[1])) != want {
			t.Errorf("%s (a %s file) lacks the line `# yaml-language-server: $schema=<relative path>/docs/schema/%s`", rel, kind, want)
			return nil
		}
		sch := compile(filepath.Join(filepath.Dir(path), string(m[1])))
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for i := 0; ; i++ {
			var doc any
			if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Errorf("%s: %v", rel, err)
				break
			}
			inst := asJSON(t, doc)
			if err := sch.Validate(inst); err != nil {
				t.Errorf("%s, document %d: %v", rel, i+1, err)
			}
		}
		checked[kind]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked["bridge"] < 5 || checked["saga"] < 1 {
		t.Errorf("checked %v: the walk missed the examples", checked)
	}
}

// TestSchemaRefusesWhatTheLoaderRefuses: a few mistakes the loader
// reports are caught by the editor schema too.
func TestSchemaRefusesWhatTheLoaderRefuses(t *testing.T) {
	compiler := jsonschema.NewCompiler()
	abs, _ := filepath.Abs(filepath.Join(root, BridgeSchema))
	f, err := os.Open(abs)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := compiler.AddResource("file://"+abs, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := compiler.Compile("file://" + abs)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		yaml string
		ok   bool
	}{
		{"broker: {kind: nats, concurrency: 8}", true},
		{"broker: {kind: nats, concurrency: '${CONC:-8}', ackWait: '${WAIT:-10s}'}", true},
		{"broker: {kind: rabbit}", false},
		{"broker: {colour: blue}", false},
		{"broker: {ackWait: 10}", false},
		{"broker: {ackWait: ten seconds}", false},
		{"routes: [{name: a, topics: [t], start: {workflow: W, instanceId: x}}]", true},
		{"routes: [{topics: [t]}]", false},
	} {
		var v any
		if err := yaml.Unmarshal([]byte(c.yaml), &v); err != nil {
			t.Fatal(err)
		}
		err := sch.Validate(asJSON(t, v))
		if (err == nil) != c.ok {
			t.Errorf("%s: schema says %v, want ok=%v", c.yaml, err, c.ok)
		}
		_, lerr := config.Parse("x.yaml", []byte(c.yaml))
		if c.ok && lerr != nil && !strings.Contains(c.yaml, "${") {
			t.Errorf("%s: the loader refuses what the schema accepts: %v", c.yaml, lerr)
		}
	}
}

// fragments are bridge configs that only load merged into another; the
// schema still checks them.
var fragments = map[string]string{
	"sagas/order/migration.yaml": "merged into bridge.yaml by `sagabridge dev --legacy` (config.MergeMigration)",
}

// classify says whether a YAML file is a bridge config, a saga file, or
// something else (Kubernetes and Dapr manifests).
func classify(t *testing.T, path string, b []byte) string {
	var top map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&top); err != nil {
		return ""
	}
	switch {
	case top["apiVersion"] != nil || top["kind"] != nil:
		return ""
	case top["routes"] != nil || top["broker"] != nil || top["engine"] != nil:
		rel, _ := filepath.Rel(root, path)
		if _, fragment := fragments[filepath.ToSlash(rel)]; fragment {
			return "bridge"
		}
		if _, err := config.Parse(path, b); err != nil {
			t.Errorf("%s does not load: %v", path, err)
		}
		return "bridge"
	case top["steps"] != nil && top["name"] != nil:
		if _, err := declarative.ParseDefinitions(path, b); err != nil {
			t.Errorf("%s does not load: %v", path, err)
		}
		return "saga"
	}
	return ""
}

// asJSON turns a YAML value into what a JSON decoder gives, which is what
// the validator checks.
func asJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}
