package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
)

// Report is a whole run.
type Report struct {
	Date     string            `json:"date"`
	Machine  string            `json:"machine"`
	Commit   string            `json:"commit"`
	Load     []string          `json:"loadAverage"` // at start and end: time, 1, 5, 15 minutes
	Versions map[string]string `json:"versions"`
	Rounds   int               `json:"rounds"`
	Results  []Result          `json:"results"`
	// Failures lists the systems that could not start or failed a round,
	// with the command and its error; a failed system is not run again,
	// and its earlier rounds stay in Results.
	Failures []Failure `json:"failures,omitempty"`
	// Notes say how a figure was taken where it differs from the rule
	// (every process's CPU over the measured sagas), or what could not be
	// counted.
	Notes []string `json:"notes,omitempty"`
}

// Failure is a system that could not run here, or stopped.
type Failure struct {
	System  string `json:"system"`
	Command string `json:"command"`
	Error   string `json:"error"`
}

// baseline is the row every other is compared with: sagabridge's embedded
// engine driven through its own client.
const baseline = "sagabridge-direct"

var labels = map[string]string{
	"sagabridge-direct":           "sagabridge, engine direct",
	"sagabridge-bridge-nats":      "sagabridge, bridge on NATS",
	"sagabridge-bridge-kafka":     "sagabridge, bridge on Kafka",
	"sagabridge-dapr-direct":      "sagabridge on daprd, engine direct",
	"sagabridge-dapr-bridge-nats": "sagabridge on daprd, bridge on NATS",
	sysTemporal:                   "Temporal, SQLite file",
	sysTemporalMemory:             "Temporal, SQLite in memory",
	sysDBOS:                       "DBOS, PostgreSQL",
	sysDBOSSQLite:                 "DBOS, SQLite file",
}

func label(system string) string {
	if l, ok := labels[system]; ok {
		return l
	}
	return system
}

// systemOrder lists the systems measured: sagabridge's rows first, then
// the peers in a fixed order.
func systemOrder[T any](m map[string]T) []string {
	order := []string{"sagabridge-direct", "sagabridge-bridge-nats", "sagabridge-bridge-kafka",
		"sagabridge-dapr-direct", "sagabridge-dapr-bridge-nats",
		sysTemporal, sysTemporalMemory, sysDBOS, sysDBOSSQLite}
	var out []string
	for _, s := range order {
		if _, ok := m[s]; ok {
			out = append(out, s)
		}
	}
	var rest []string
	for s := range m {
		if !slices.Contains(order, s) {
			rest = append(rest, s)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

func (r Report) find(system string, c int) (Result, bool) {
	for _, res := range r.Results {
		if res.System == system && res.Concurrency == c {
			return res, true
		}
	}
	return Result{}, false
}

// writeTable prints every row with its ratio to sagabridge's engine at the
// same concurrency: throughput (higher is better for the row) and CPU per
// saga (lower is better for the row).
func (r Report) writeTable(w io.Writer) error {
	fmt.Fprintf(w, "\n%s — %s — sagabridge %s — load average %s\n", r.Date, r.Machine, r.Commit, strings.Join(r.Load, " → "))
	keys := make([]string, 0, len(r.Versions))
	for k := range r.Versions {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %s %s\n", k, r.Versions[k])
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "system\tin flight\tsagas\tsagas/s\tp50 ms\tp99 ms\tCPU s/1k\tworker CPU s/1k\tpeak MiB\tsagas/s ÷ sagabridge\tCPU ÷ sagabridge\t")
	for _, res := range r.Results {
		tput, cpu := "", ""
		if b, ok := r.find(baseline, res.Concurrency); ok && res.System != baseline {
			tput = fmt.Sprintf("%.2f", res.PerSecond/b.PerSecond)
			cpu = fmt.Sprintf("%.2f", res.CPUSecondsPer1k/b.CPUSecondsPer1k)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%.1f\t%.1f\t%.2f\t%.2f\t%.0f\t%s\t%s\t\n",
			label(res.System), res.Concurrency, res.Sagas, res.PerSecond, res.P50Ms, res.P99Ms,
			res.CPUSecondsPer1k, res.WorkerCPUSecondsPer1k, res.PeakRSSMiB, tput, cpu)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, f := range r.Failures {
		fmt.Fprintf(w, "\n%s failed and was not run again: `%s`: %s\n", f.System, f.Command, f.Error)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "\nNote: %s\n", n)
	}
	return nil
}

func (r Report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// writeSVG draws throughput and CPU per 1,000 sagas against sagas in
// flight, one line per system, two panels side by side.
func (r Report) writeSVG(path string) error {
	type series struct {
		name   string
		points [][2]float64 // concurrency, value
	}
	bySystem := map[string][]Result{}
	for _, res := range r.Results {
		bySystem[res.System] = append(bySystem[res.System], res)
	}
	names := systemOrder(bySystem)
	collect := func(val func(Result) float64) []series {
		out := make([]series, 0, len(names))
		for _, n := range names {
			s := series{name: label(n)}
			for _, res := range bySystem[n] {
				s.points = append(s.points, [2]float64{float64(res.Concurrency), val(res)})
			}
			sort.Slice(s.points, func(i, j int) bool { return s.points[i][0] < s.points[j][0] })
			out = append(out, s)
		}
		return out
	}
	colors := []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"}
	var sb strings.Builder
	const w, h, pw, ph, m = 1000, 460, 400, 300, 70
	fmt.Fprintf(&sb, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	sb.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
	fmt.Fprintf(&sb, `<text x="%d" y="%d" fill="#555">%s, sagabridge %s</text>`+"\n", m, h-12, esc(r.Date), esc(r.Commit))
	panel := func(x0 int, title, unit string, ss []series) {
		maxC, maxV := 1.0, 0.0
		for _, s := range ss {
			for _, p := range s.points {
				maxC, maxV = math.Max(maxC, p[0]), math.Max(maxV, p[1])
			}
		}
		if maxV == 0 {
			maxV = 1
		}
		maxV *= 1.1
		lx := func(c float64) float64 { return float64(x0+m) + math.Log2(c)/math.Log2(math.Max(maxC, 2))*pw }
		ly := func(v float64) float64 { return float64(m+ph) - v/maxV*ph }
		fmt.Fprintf(&sb, `<text x="%d" y="30" font-size="14" font-weight="bold">%s</text>`+"\n", x0+m, esc(title))
		fmt.Fprintf(&sb, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", x0+m, m+ph, x0+m+pw, m+ph)
		fmt.Fprintf(&sb, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", x0+m, m, x0+m, m+ph)
		for i := 0; i <= 4; i++ {
			v := maxV * float64(i) / 4
			fmt.Fprintf(&sb, `<text x="%d" y="%.0f" text-anchor="end">%s</text>`+"\n", x0+m-5, ly(v)+4, tick(v))
			fmt.Fprintf(&sb, `<line x1="%d" y1="%.0f" x2="%d" y2="%.0f" stroke="#eee"/>`+"\n", x0+m, ly(v), x0+m+pw, ly(v))
		}
		seen := map[float64]bool{}
		for _, s := range ss {
			for _, p := range s.points {
				if !seen[p[0]] {
					seen[p[0]] = true
					fmt.Fprintf(&sb, `<text x="%.0f" y="%d" text-anchor="middle">%.0f</text>`+"\n", lx(p[0]), m+ph+16, p[0])
				}
			}
		}
		fmt.Fprintf(&sb, `<text x="%d" y="%d" text-anchor="middle">sagas in flight</text>`+"\n", x0+m+pw/2, m+ph+34)
		fmt.Fprintf(&sb, `<text x="%d" y="%d" transform="rotate(-90 %d %d)" text-anchor="middle">%s</text>`+"\n", x0+20, m+ph/2, x0+20, m+ph/2, esc(unit))
		for i, s := range ss {
			col := colors[i%len(colors)]
			var pts []string
			for _, p := range s.points {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", lx(p[0]), ly(p[1])))
				fmt.Fprintf(&sb, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", lx(p[0]), ly(p[1]), col)
			}
			fmt.Fprintf(&sb, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(pts, " "), col)
			fmt.Fprintf(&sb, `<text x="%d" y="%d" fill="%s">%s</text>`+"\n", x0+m+10, m+14+i*16, col, esc(s.name))
		}
	}
	panel(0, "Throughput", "sagas/s", collect(func(r Result) float64 { return r.PerSecond }))
	panel(w/2, "CPU per 1,000 sagas, all processes", "CPU seconds", collect(func(r Result) float64 { return r.CPUSecondsPer1k }))
	sb.WriteString("</svg>\n")
	return os.WriteFile(path, []byte(sb.String()), 0o644)
}

func tick(v float64) string {
	if v < 10 {
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
