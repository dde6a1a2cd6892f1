package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Entry accepts one advisory the code reaches, for a while.
type Entry struct {
	ID     string // GO-YYYY-NNNN
	Module string // the affected module, as govulncheck names it
	// Why says why the advisory is unreachable or harmless for this
	// product, and what would fix it.
	Why string
	// Revisit is the last day the entry holds; after it the advisory
	// fails the check again until someone looks and moves the date.
	Revisit time.Time
	// Line is where the entry starts in the file.
	Line int
}

type entryYAML struct {
	ID      string `yaml:"id"`
	Module  string `yaml:"module"`
	Why     string `yaml:"why"`
	Revisit string `yaml:"revisit"`
}

// ParseAllowList reads the allow-list: a YAML list of entries with id,
// module, why and revisit (YYYY-MM-DD), all required. name is used in
// errors, which carry line numbers and are joined.
func ParseAllowList(name string, r io.Reader) ([]Entry, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	// Strict: a misspelt key is an error, not an entry without a date.
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var raw []entryYAML
	if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: empty; write [] for no entries", name)
	} else if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	// The same document as nodes, for the line of each entry.
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	items := doc.Content[0].Content
	var entries []Entry
	var errs []error
	seen := map[string]int{}
	for i, e := range raw {
		line := items[i].Line
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s:%d: %s", name, line, fmt.Sprintf(format, args...)))
		}
		entry := Entry{ID: strings.TrimSpace(e.ID), Module: strings.TrimSpace(e.Module), Why: strings.TrimSpace(e.Why), Line: line}
		if !strings.HasPrefix(entry.ID, "GO-") {
			bad("id %q: want a Go advisory id (GO-YYYY-NNNN)", entry.ID)
		}
		if entry.Module == "" {
			bad("%s: module missing", entry.ID)
		}
		if entry.Why == "" {
			bad("%s: why missing: say why it is unreachable or harmless here", entry.ID)
		}
		var err error
		if entry.Revisit, err = time.Parse(time.DateOnly, e.Revisit); err != nil {
			bad("%s: revisit %q: want a date (YYYY-MM-DD)", entry.ID, e.Revisit)
		}
		if line, dup := seen[entry.ID]; dup && entry.ID != "" {
			bad("%s: listed again (first at line %d)", entry.ID, line)
		}
		seen[entry.ID] = line
		entries = append(entries, entry)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return entries, nil
}
