package route

import (
	"regexp"
	"testing"
)

// The rule validIDChars implements, as the documentation states it.
var idRule = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:@-]*$`)

func TestValidIDCharsIsTheDocumentedRule(t *testing.T) {
	for _, id := range []string{"", "a", "Z9", "9", "order-42", "a_b.c:d@e-f", "_a", ".a", ":a", "@a", "-a",
		"a/b", "a b", "a\x00", "é", "aé", "a\n", "a#", "Ω", "x::y", "x:"} {
		if got, want := validIDChars(id), idRule.MatchString(id); got != want {
			t.Errorf("validIDChars(%q) = %v, the rule says %v", id, got, want)
		}
	}
}

func FuzzValidIDChars(f *testing.F) {
	for _, s := range []string{"order-42", "-a", "a/b", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if got, want := validIDChars(id), idRule.MatchString(id); got != want {
			t.Errorf("validIDChars(%q) = %v, the rule says %v", id, got, want)
		}
	})
}
