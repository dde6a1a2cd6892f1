// Package confspec describes YAML configuration from the Go types the
// loaders decode it into, so that the checks, the editor schema and the
// reference documentation cannot drift apart:
//
//   - CheckKeys reports every key of a document that names no field (yaml
//     tags), with its line;
//   - Interpolate expands ${VAR} and ${VAR:-default} in a document's values,
//     naming the variable, never its value, in errors;
//   - JSONSchema and Reference describe a type: JSON Schema (draft
//     2020-12) for editors, and rows of key, type, default and meaning for
//     a Markdown reference. Descriptions are the fields' Go doc comments
//     (ParseDocs), defaults are read from a value the loader filled in.
//
// Struct tags refine the description: enum:"a,b,c" lists the accepted
// values, required:"true" marks a key that must be present. A type that
// describes itself implements Describer.
package confspec
