// Package celjson turns the value of a CEL expression into JSON: what a
// route hands the engine as a workflow's input or an event's payload, and
// what a declarative saga sends as a command's data.
package celjson

import (
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/google/cel-go/common/types/ref"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
)

var valueType = reflect.TypeOf(&structpb.Value{})

// Marshal encodes v as compact JSON. A value JSON cannot hold (bytes, a
// duration, a timestamp inside a map, a type) is an error that says so.
func Marshal(v ref.Val) (json.RawMessage, error) {
	native, err := v.ConvertToNative(valueType)
	if err != nil {
		return nil, fmt.Errorf("result is not JSON-representable: %w", err)
	}
	b, err := protojson.Marshal(native.(*structpb.Value))
	if err != nil {
		return nil, err
	}
	// protojson varies its white space from run to run on purpose, and
	// the result goes into histories that are compared byte for byte.
	var buf json.RawMessage
	if err := json.Unmarshal(b, &buf); err != nil {
		return nil, err
	}
	return json.Marshal(buf)
}
