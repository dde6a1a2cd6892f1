package declarative

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"

	"github.com/sagabridge/sagabridge/internal/celjson"
	"github.com/sagabridge/sagabridge/sagas"
)

// The CEL of a declarative saga's messages sees these variables:
//
//	input           the saga's input (the data of the event that started it)
//	results         each finished step's result, by step name
//	instanceId, saga, step, attempt, idempotencyKey, commandId
//	reply           the reply's payload (only in a reply's expressions)
//
// Every expression is compiled and type-checked when the saga loads.
func stepEnv() (*cel.Env, error) {
	return cel.NewEnv(
		cel.OptionalTypes(),
		cel.Variable("input", cel.DynType),
		cel.Variable("results", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("instanceId", cel.StringType),
		cel.Variable("saga", cel.StringType),
		cel.Variable("step", cel.StringType),
		cel.Variable("attempt", cel.IntType),
		cel.Variable("idempotencyKey", cel.StringType),
		cel.Variable("commandId", cel.StringType),
		cel.Variable("reply", cel.DynType),
	)
}

// celWant is the type an expression must have.
type celWant int

const (
	celAny celWant = iota
	celBool
	celString
)

func (w celWant) String() string { return [...]string{"value", "bool", "string"}[w] }

// celProgram compiles expr and checks its type.
func celProgram(env *cel.Env, expr string, want celWant) (cel.Program, error) {
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return nil, iss.Err()
	}
	out := ast.OutputType()
	ok := out.Kind() == types.DynKind || want == celAny ||
		(want == celBool && out.Kind() == types.BoolKind) ||
		(want == celString && out.Kind() == types.StringKind)
	if !ok {
		return nil, fmt.Errorf("must be a %s, expression is %s", want, out)
	}
	return env.Program(ast, cel.EvalOptions(cel.OptOptimize))
}

// celVars is the activation of a step's expressions.
func celVars(s *sagas.State, c sagas.CommandRef, reply json.RawMessage) (map[string]any, error) {
	vars := map[string]any{
		"instanceId": c.InstanceID, "saga": c.Saga, "step": c.Step, "attempt": c.Attempt,
		"idempotencyKey": c.IdempotencyKey, "commandId": c.ID, "input": nil, "reply": nil,
	}
	var err error
	if s != nil {
		if vars["input"], err = fromJSON(s.Input); err != nil {
			return nil, fmt.Errorf("saga input: %w", err)
		}
		results := make(map[string]any, len(s.Results))
		for name, raw := range s.Results {
			if results[name], err = fromJSON(raw); err != nil {
				return nil, fmt.Errorf("result of %s: %w", name, err)
			}
		}
		vars["results"] = results
	} else {
		vars["results"] = map[string]any{}
	}
	if vars["reply"], err = fromJSON(reply); err != nil {
		return nil, fmt.Errorf("reply: %w", err)
	}
	return vars, nil
}

func fromJSON(raw json.RawMessage) (any, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// celJSON evaluates a program to JSON.
func celJSON(p cel.Program, vars map[string]any) (json.RawMessage, error) {
	out, _, err := p.Eval(vars)
	if err != nil {
		return nil, err
	}
	return celjson.Marshal(out)
}

func evalCELString(p cel.Program, vars map[string]any) (string, error) {
	out, _, err := p.Eval(vars)
	if err != nil {
		return "", err
	}
	s, ok := out.(types.String)
	if !ok {
		return "", fmt.Errorf("got %s, want string", out.Type())
	}
	return string(s), nil
}

func celBoolean(p cel.Program, vars map[string]any) (bool, error) {
	out, _, err := p.Eval(vars)
	if err != nil {
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("got %s, want bool", out.Type())
	}
	return bool(b), nil
}

// failAt reports a problem of the key (a dotted path such as
// "headers.X-Client", "" for the block) of a command or reply.
type failAt func(key string, err error)

// messageOf compiles a command's mapping; nil when it sets none.
func messageOf(env *cel.Env, cd *CommandDef, fail failAt) *sagas.Message {
	if cd == nil || (cd.Format == "" && cd.Data == "" && len(cd.Headers) == 0) {
		return nil
	}
	m := &sagas.Message{}
	switch cd.Format {
	case "", FormatCloudEvents:
	case FormatJSON:
		m.Plain = true
	default:
		fail("format", fmt.Errorf("format %q is not %s or %s", cd.Format, FormatCloudEvents, FormatJSON))
	}
	if cd.Data != "" {
		p, err := celProgram(env, cd.Data, celAny)
		if err != nil {
			fail("data", fmt.Errorf("data: %w", err))
		} else {
			m.Data = func(s *sagas.State, c sagas.CommandRef) (any, error) {
				vars, err := celVars(s, c, nil)
				if err != nil {
					return nil, err
				}
				return celJSON(p, vars)
			}
		}
	} else if m.Plain {
		fail("format", errors.New("format json needs data: the body to send"))
	}
	if len(cd.Headers) > 0 {
		progs := map[string]cel.Program{}
		for _, k := range sortedKeys(cd.Headers) {
			p, err := celProgram(env, cd.Headers[k], celString)
			if err != nil {
				fail("headers."+k, fmt.Errorf("headers: %s: %w", k, err))
				continue
			}
			progs[k] = p
		}
		m.Headers = func(s *sagas.State, c sagas.CommandRef) (map[string]string, error) {
			vars, err := celVars(s, c, nil)
			if err != nil {
				return nil, err
			}
			out := make(map[string]string, len(progs))
			for _, k := range sortedKeys(progs) {
				if out[k], err = evalCELString(progs[k], vars); err != nil {
					return nil, fmt.Errorf("header %s: %w", k, err)
				}
			}
			return out, nil
		}
	}
	return m
}

// replyOf compiles a reply's CEL: success (bool), reason (string) and
// result (any); the rule is nil when success is not set.
func replyOf(env *cel.Env, rd *ReplyDef, fail failAt) (sagas.ReplyRule, func(json.RawMessage) (json.RawMessage, error)) {
	var rule sagas.ReplyRule
	var result func(json.RawMessage) (json.RawMessage, error)
	vars := func(payload json.RawMessage) (map[string]any, error) {
		return celVars(nil, sagas.CommandRef{}, payload)
	}
	if rd.Success != "" {
		if rd.StatusField != "" || len(rd.OK) > 0 || rd.ReasonField != "" {
			fail("success", errors.New("reply: success replaces statusField, ok and reasonField; set one or the other"))
		}
		ok, err := celProgram(env, rd.Success, celBool)
		if err != nil {
			fail("success", fmt.Errorf("reply: success: %w", err))
		}
		var why cel.Program
		if rd.Reason != "" {
			if why, err = celProgram(env, rd.Reason, celString); err != nil {
				fail("reason", fmt.Errorf("reply: reason: %w", err))
			}
		}
		if ok != nil {
			rule = func(payload json.RawMessage) (bool, string) {
				v, err := vars(payload)
				if err != nil {
					return false, "undecodable reply: " + err.Error()
				}
				good, err := celBoolean(ok, v)
				if err != nil {
					return false, "reply: success: " + err.Error()
				}
				if good {
					return true, ""
				}
				if why != nil {
					if s, err := evalCELString(why, v); err == nil && s != "" {
						return false, s
					}
				}
				return false, "the reply's success expression is false"
			}
		}
	} else if rd.Reason != "" {
		fail("reason", errors.New("reply: reason needs success"))
	}
	if rd.Result != "" {
		p, err := celProgram(env, rd.Result, celAny)
		if err != nil {
			fail("result", fmt.Errorf("reply: result: %w", err))
		} else {
			result = func(payload json.RawMessage) (json.RawMessage, error) {
				v, err := vars(payload)
				if err != nil {
					return nil, err
				}
				return celJSON(p, v)
			}
		}
	}
	return rule, result
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
