package confspec_test

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/sagabridge/sagabridge/internal/confspec"
)

func TestInterpolate(t *testing.T) {
	env := map[string]string{"HOST": "h", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, c := range []struct{ in, want, err string }{
		{"plain", "plain", ""},
		{"${HOST}:${PORT:-4222}", "h:4222", ""},
		{"${EMPTY:-d}", "d", ""},
		{"${EMPTY}", "", ""},
		{"$$HOST and $${HOST} and a $ alone", "$HOST and ${HOST} and a $ alone", ""},
		{"${MISSING}", "", "${MISSING} is not set"},
		{"${HOST", "", "does not close"},
		{"${a-b}", "", `"a-b" is not a variable name`},
	} {
		var n yaml.Node
		if err := yaml.Unmarshal([]byte("k: "+quote(c.in)), &n); err != nil {
			t.Fatal(err)
		}
		refs, errs := confspec.Interpolate("f.yaml", &n, lookup)
		if c.err != "" {
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), c.err) || !strings.HasPrefix(errs[0].Error(), "f.yaml:1: ") {
				t.Errorf("%q: errors %v, want %q", c.in, errs, c.err)
			}
			continue
		}
		if len(errs) > 0 {
			t.Errorf("%q: %v", c.in, errs)
			continue
		}
		if got := n.Content[0].Content[1].Value; got != c.want {
			t.Errorf("%q → %q, want %q", c.in, got, c.want)
		}
		if strings.Contains(c.in, "${HOST}") && !strings.Contains(c.in, "$${HOST}") && refs[1][0] != "HOST" {
			t.Errorf("%q: refs %v", c.in, refs)
		}
	}
}

func quote(s string) string {
	b, _ := yaml.Marshal(s)
	return strings.TrimSpace(string(b))
}
