package celjson_test

import (
	"strings"
	"testing"

	"github.com/google/cel-go/cel"

	"github.com/sagabridge/sagabridge/internal/celjson"
)

func eval(t *testing.T, expr string) []byte {
	t.Helper()
	env, err := cel.NewEnv()
	if err != nil {
		t.Fatal(err)
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		t.Fatal(iss.Err())
	}
	prg, err := env.Program(ast)
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := prg.Eval(map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := celjson.Marshal(out)
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return b
}

func TestMarshalCompact(t *testing.T) {
	for expr, want := range map[string]string{
		`{"b": [1, 2.5, true, null], "a": "x"}`: `{"a":"x","b":[1,2.5,true,null]}`,
		`"text"`:                                `"text"`,
		`3`:                                     `3`,
	} {
		if got := string(eval(t, expr)); got != want {
			t.Errorf("%s: %s, want %s", expr, got, want)
		}
	}
}

func TestMarshalRefusesWhatJSONCannotHold(t *testing.T) {
	env, _ := cel.NewEnv()
	ast, _ := env.Compile(`{"d": duration("1s"), "t": type(1)}`)
	prg, _ := env.Program(ast)
	out, _, err := prg.Eval(map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := celjson.Marshal(out); err == nil || !strings.Contains(err.Error(), "not JSON-representable") {
		t.Fatalf("error %v, want not JSON-representable", err)
	}
}
