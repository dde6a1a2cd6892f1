package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Level is how close govulncheck found the code to an advisory.
type Level int

const (
	// LevelModule: a required module is affected, no affected package is
	// imported.
	LevelModule Level = iota
	// LevelPackage: an affected package is imported, no affected function
	// is called.
	LevelPackage
	// LevelSymbol: the code calls an affected function (govulncheck's
	// "your code is affected").
	LevelSymbol
)

func (l Level) String() string {
	switch l {
	case LevelSymbol:
		return "called"
	case LevelPackage:
		return "imported"
	default:
		return "required"
	}
}

// Frame is one step of a call path, as govulncheck reports it.
type Frame struct {
	Module   string `json:"module"`
	Version  string `json:"version,omitempty"`
	Package  string `json:"package,omitempty"`
	Function string `json:"function,omitempty"`
	Receiver string `json:"receiver,omitempty"`
	Position *struct {
		Filename string `json:"filename,omitempty"`
		Line     int    `json:"line,omitempty"`
	} `json:"position,omitempty"`
}

func (f Frame) symbol() string {
	s := f.Package
	if strings.HasPrefix(f.Receiver, "*") {
		s += ".(" + f.Receiver + ")"
	} else if f.Receiver != "" {
		s += "." + f.Receiver
	}
	if f.Function != "" {
		s += "." + f.Function
	}
	return s
}

// Advisory is one advisory govulncheck reported, at the closest level it
// found.
type Advisory struct {
	ID           string
	Summary      string
	Module       string // the affected module ("stdlib" for Go itself)
	Version      string // the version in use
	FixedVersion string // "" when no fixed version exists
	Level        Level
	// Trace is one call path of the closest finding: from the affected
	// symbol (first) to the module's own code (last).
	Trace []Frame
}

// Reachable reports whether the module's code calls the advisory's code.
func (a Advisory) Reachable() bool { return a.Level == LevelSymbol }

// Scan is what one govulncheck run reported.
type Scan struct {
	Scanner    string // govulncheck and its version
	GoVersion  string
	Advisories []Advisory // sorted by ID
}

// message is one object of govulncheck's -json stream; the fields not
// read here are left out.
type message struct {
	Config *struct {
		ScannerName    string `json:"scanner_name"`
		ScannerVersion string `json:"scanner_version"`
		GoVersion      string `json:"go_version"`
	} `json:"config"`
	OSV *struct {
		ID      string `json:"id"`
		Summary string `json:"summary"`
	} `json:"osv"`
	Finding *struct {
		OSV          string  `json:"osv"`
		FixedVersion string  `json:"fixed_version"`
		Trace        []Frame `json:"trace"`
	} `json:"finding"`
}

// ParseScan reads govulncheck's -json output (a stream of objects). An
// advisory is reported once per level it was found at; the closest wins.
func ParseScan(r io.Reader) (*Scan, error) {
	dec := json.NewDecoder(r)
	scan := &Scan{}
	summaries := map[string]string{}
	byID := map[string]*Advisory{}
	sawConfig := false
	for {
		var m message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("govulncheck output: %w", err)
		}
		switch {
		case m.Config != nil:
			sawConfig = true
			scan.Scanner = strings.TrimSpace(m.Config.ScannerName + " " + m.Config.ScannerVersion)
			scan.GoVersion = m.Config.GoVersion
		case m.OSV != nil:
			summaries[m.OSV.ID] = m.OSV.Summary
		case m.Finding != nil:
			f := m.Finding
			if f.OSV == "" || len(f.Trace) == 0 {
				return nil, fmt.Errorf("govulncheck output: finding without advisory or trace: %+v", f)
			}
			top := f.Trace[0]
			level := LevelModule
			switch {
			case top.Function != "":
				level = LevelSymbol
			case top.Package != "":
				level = LevelPackage
			}
			if a, ok := byID[f.OSV]; ok && a.Level >= level {
				continue
			}
			byID[f.OSV] = &Advisory{
				ID: f.OSV, Module: top.Module, Version: top.Version,
				FixedVersion: f.FixedVersion, Level: level, Trace: f.Trace,
			}
		}
	}
	if !sawConfig {
		return nil, errors.New("govulncheck output: no config message (is it -json output?)")
	}
	for id, a := range byID {
		a.Summary = summaries[id]
		scan.Advisories = append(scan.Advisories, *a)
	}
	sort.Slice(scan.Advisories, func(i, j int) bool { return scan.Advisories[i].ID < scan.Advisories[j].ID })
	return scan, nil
}
