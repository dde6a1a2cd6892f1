package benchmark

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

// WriteTable prints the results with the bridge/direct ratio per row.
func (r Report) WriteTable(w io.Writer) error {
	// With the broker in its own process, the CPU column is this
	// process's alone; the broker's and the direct/bridge ratio of the
	// two paths' CPU per saga follow it, then the driver's when it has a
	// process of its own too, and the engine's transactions per saga (it
	// commits more of them per saga when fewer sagas are in it at once).
	split := slices.ContainsFunc(r.Results, func(res Result) bool { return res.BrokerProcess })
	driver := slices.ContainsFunc(r.Results, func(res Result) bool { return res.DriverProcess })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "broker\tmode\tin flight\tsagas\tsagas/s\tp50 ms\tp95 ms\tp99 ms\tmax ms\tbridge/direct\tCPU s/1k\t"
	if split {
		head += "broker CPU s/1k\tdirect/bridge CPU\t"
	}
	if driver {
		head += "driver CPU s/1k\t"
	}
	if split {
		head += "engine tx/saga\t"
	}
	fmt.Fprintln(tw, head+"peak RSS MiB\t")
	for _, res := range r.Results {
		ratio, cpuRatio := "", ""
		if res.Mode == ModeBridge {
			if d, ok := r.find(res.Broker, ModeDirect, res.Concurrency); ok && d.PerSecond > 0 {
				ratio = fmt.Sprintf("%.2f", res.PerSecond/d.PerSecond)
				cpuRatio = fmt.Sprintf("%.2f", d.CPUSecondsPer1k/res.CPUSecondsPer1k)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.0f\t%.1f\t%.1f\t%.1f\t%.1f\t%s\t%.2f\t",
			res.Broker, res.Mode, res.Concurrency, res.Sagas, res.PerSecond,
			res.P50Ms, res.P95Ms, res.P99Ms, res.MaxMs, ratio, res.CPUSecondsPer1k)
		if split {
			fmt.Fprintf(tw, "%.2f\t%s\t", res.BrokerCPUSecondsPer1k, cpuRatio)
		}
		if driver {
			fmt.Fprintf(tw, "%.2f\t", res.DriverCPUSecondsPer1k)
		}
		if split {
			fmt.Fprintf(tw, "%.2f\t", res.EngineTxPerSaga)
		}
		fmt.Fprintf(tw, "%.0f\t\n", res.PeakRSSMiB)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range r.Parked {
		fmt.Fprintf(w, "\n%s: %d parked instances (waiting for an event): RSS +%.1f MiB (%.1f KiB each), database %.1f MiB, started in %.1fs\n",
			p.Broker, p.Instances, p.RSSGrowthMiB, p.KiBPerInstance, p.DBMiB, p.StartSeconds)
	}
	return nil
}

func (r Report) find(broker, mode string, c int) (Result, bool) {
	for _, res := range r.Results {
		if res.Broker == broker && res.Mode == mode && res.Concurrency == c {
			return res, true
		}
	}
	return Result{}, false
}

// WriteJSON writes the report to path.
func (r Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// WriteSVG draws throughput and p99 latency against concurrency, one line
// per broker and mode, two panels side by side.
func (r Report) WriteSVG(path string) error {
	type series struct {
		name   string
		points [][2]float64 // concurrency, value
	}
	collect := func(val func(Result) float64) []series {
		by := map[string]*series{}
		var names []string
		for _, res := range r.Results {
			k := res.Broker + " " + res.Mode
			if by[k] == nil {
				by[k] = &series{name: k}
				names = append(names, k)
			}
			by[k].points = append(by[k].points, [2]float64{float64(res.Concurrency), val(res)})
		}
		sort.Strings(names)
		out := make([]series, 0, len(names))
		for _, n := range names {
			s := by[n]
			sort.Slice(s.points, func(i, j int) bool { return s.points[i][0] < s.points[j][0] })
			out = append(out, *s)
		}
		return out
	}
	colors := []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"}
	var sb strings.Builder
	const w, h, pw, ph, m = 960, 420, 400, 300, 60
	fmt.Fprintf(&sb, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&sb, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	panel := func(x0 int, title, unit string, ss []series) {
		maxC, maxV := 1.0, 1.0
		for _, s := range ss {
			for _, p := range s.points {
				maxC, maxV = math.Max(maxC, p[0]), math.Max(maxV, p[1])
			}
		}
		maxV *= 1.1
		// x is log2(concurrency)
		lx := func(c float64) float64 { return float64(x0+m) + math.Log2(c)/math.Log2(math.Max(maxC, 2))*pw }
		ly := func(v float64) float64 { return float64(m+ph) - v/maxV*ph }
		fmt.Fprintf(&sb, `<text x="%d" y="30" font-size="14" font-weight="bold">%s</text>`+"\n", x0+m, title)
		fmt.Fprintf(&sb, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", x0+m, m+ph, x0+m+pw, m+ph)
		fmt.Fprintf(&sb, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", x0+m, m, x0+m, m+ph)
		for i := 0; i <= 4; i++ {
			v := maxV * float64(i) / 4
			fmt.Fprintf(&sb, `<text x="%d" y="%.0f" text-anchor="end">%.0f</text>`+"\n", x0+m-5, ly(v)+4, v)
			fmt.Fprintf(&sb, `<line x1="%d" y1="%.0f" x2="%d" y2="%.0f" stroke="#eee"/>`+"\n", x0+m, ly(v), x0+m+pw, ly(v))
		}
		for c := 1.0; c <= maxC; c *= 2 {
			fmt.Fprintf(&sb, `<text x="%.0f" y="%d" text-anchor="middle">%.0f</text>`+"\n", lx(c), m+ph+16, c)
		}
		fmt.Fprintf(&sb, `<text x="%d" y="%d" text-anchor="middle">sagas in flight</text>`+"\n", x0+m+pw/2, m+ph+34)
		fmt.Fprintf(&sb, `<text x="%d" y="%d" transform="rotate(-90 %d %d)" text-anchor="middle">%s</text>`+"\n", x0+14, m+ph/2, x0+14, m+ph/2, unit)
		for i, s := range ss {
			col := colors[i%len(colors)]
			var pts []string
			for _, p := range s.points {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", lx(p[0]), ly(p[1])))
				fmt.Fprintf(&sb, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", lx(p[0]), ly(p[1]), col)
			}
			fmt.Fprintf(&sb, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(pts, " "), col)
			fmt.Fprintf(&sb, `<text x="%d" y="%d" fill="%s">%s</text>`+"\n", x0+m+10, m+14+i*16, col, s.name)
		}
	}
	panel(0, "Throughput", "sagas/s", collect(func(r Result) float64 { return r.PerSecond }))
	panel(w/2, "p99 latency, event published → outcome received", "ms", collect(func(r Result) float64 { return r.P99Ms }))
	sb.WriteString("</svg>\n")
	return os.WriteFile(path, []byte(sb.String()), 0o644)
}
