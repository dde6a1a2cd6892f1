// Package declarative is the YAML saga schema: a saga declared in YAML
// (Definition) is parsed with every problem at its file:line, compiled to
// the saga runtime's sagas.Saga (its messages' CEL type-checked at load),
// validated, and loaded with its other versions into Definitions, which
// runs each saga as a workflow of its own name, pinned to the version an
// instance started with. The schema is in sagas/README.md.
package declarative
