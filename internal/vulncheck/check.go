package main

import "time"

// Verdict is what the allow-list makes of one reachable advisory.
type Verdict int

const (
	// Unlisted: reachable and on no entry; fails.
	Unlisted Verdict = iota
	// Allowed: reachable, and an entry for its id and module holds.
	Allowed
	// Expired: reachable, and its entry's revisit date has passed; fails.
	Expired
	// WrongModule: an entry has its id but names another module; fails.
	WrongModule
)

// Judged is a reachable advisory and what the allow-list says of it.
type Judged struct {
	Advisory
	Verdict Verdict
	Entry   *Entry // nil when Unlisted
}

// Result is a scan held against the allow-list.
type Result struct {
	Reachable []Judged
	// NotCalled are advisories in imported packages or required modules
	// whose affected code the module does not call: reported, never
	// failing.
	NotCalled []Advisory
	// Stale are entries whose advisory is no longer reachable: reported,
	// never failing; remove them.
	Stale []Entry
}

// Failed reports whether a reachable advisory is not accepted.
func (r Result) Failed() bool {
	for _, j := range r.Reachable {
		if j.Verdict != Allowed {
			return true
		}
	}
	return false
}

// Check holds the scan's advisories against the allow-list on the day
// today (an entry holds through its revisit date).
func Check(scan *Scan, entries []Entry, today time.Time) Result {
	byID := map[string]*Entry{}
	for i := range entries {
		byID[entries[i].ID] = &entries[i]
	}
	used := map[string]bool{}
	var r Result
	for _, a := range scan.Advisories {
		if !a.Reachable() {
			r.NotCalled = append(r.NotCalled, a)
			continue
		}
		j := Judged{Advisory: a, Verdict: Unlisted}
		if e, ok := byID[a.ID]; ok {
			used[a.ID] = true
			j.Entry = e
			switch {
			case e.Module != a.Module:
				j.Verdict = WrongModule
			case today.After(e.Revisit):
				j.Verdict = Expired
			default:
				j.Verdict = Allowed
			}
		}
		r.Reachable = append(r.Reachable, j)
	}
	for _, e := range entries {
		if !used[e.ID] {
			r.Stale = append(r.Stale, e)
		}
	}
	return r
}
