package confspec_test

import (
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/sagabridge/sagabridge/internal/confspec"
)

// TestSyntaxErrorLine: a YAML syntax error is reported at the line where
// the mistake is, not at the enclosing block yaml.v3 names.
func TestSyntaxErrorLine(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"flow mapping left open", "routes:\n  - name: a\n    topics: [t]\n    start: {workflow: W, instanceId: x\n    match: a\n", "bridge.yaml:4: "},
		{"flow sequence left open", "a: 1\nb: [1, 2\nc: 3\n", "bridge.yaml:2: "},
		{"quote left open", "a: 1\nb: \"x\nc: 3\n", "bridge.yaml:2: "},
		{"key out of a list", "a: 1\nb:\n  - c: 1\n  d: 2\ne: 4\n", "bridge.yaml:4: "},
		{"over-indented key", "a: 1\nb:\n  c: 1\n   d: 2\ne: 4\n", "bridge.yaml:4: "},
		{"tab", "a: 1\nb:\n  c: 1\ne: 4\n\tf: 1\n", "bridge.yaml:5: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n yaml.Node
			err := yaml.Unmarshal([]byte(tc.yaml), &n)
			if err == nil {
				t.Fatal("the YAML parses")
			}
			got := confspec.SyntaxError("bridge.yaml", []byte(tc.yaml), err).Error()
			if len(got) < len(tc.want) || got[:len(tc.want)] != tc.want {
				t.Errorf("got %q, want it to start with %q (yaml.v3 said %q)", got, tc.want, err)
			}
		})
	}
}
