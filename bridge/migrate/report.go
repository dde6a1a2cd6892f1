package migrate

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sagabridge/sagabridge/topics"
	"github.com/sagabridge/sagabridge/topics/kafka"
	"github.com/sagabridge/sagabridge/topics/natsjs"
)

// Report summarises the migrating sagas' instances that finished in a time
// window: a team reads it to decide whether to raise the canary share.
type Report struct {
	Since time.Time    `json:"since"`
	Until time.Time    `json:"until"`
	Sagas []SagaReport `json:"sagas"`
}

// SagaReport is one saga's part of a Report.
type SagaReport struct {
	Saga string `json:"saga"`
	// Stage and Percent are those of the latest instance in the window.
	Stage   string `json:"stage"`
	Percent int    `json:"percent"`
	// Instances = Active + Shadow.
	Instances int `json:"instances"`
	// Active instances were driven by the saga; ActiveStatus counts their
	// outcomes (completed, compensated, failed).
	Active       int            `json:"active"`
	ActiveStatus map[string]int `json:"activeStatus,omitempty"`
	// Shadow instances followed the legacy flow: Agreeing ones found no
	// divergence, Diverging ones at least one.
	Shadow    int `json:"shadow"`
	Agreeing  int `json:"agreeing"`
	Diverging int `json:"diverging"`
	// ByKind counts diverging instances per kind of divergence; Stuck is
	// ByKind["stuck"].
	ByKind map[string]int `json:"byKind,omitempty"`
	Stuck  int            `json:"stuck"`
	// Examples lists instance IDs per kind, a few each.
	Examples map[string][]string `json:"examples,omitempty"`
}

// Summarize builds the report from outcome data (active outcomes and shadow
// outcomes) whose FinishedAt falls in [since, until); outcomes of sagas not
// under migration are left out. examples bounds the IDs listed per kind.
func Summarize(outcomes []topics.Outcome, since, until time.Time, examples int) Report {
	r := Report{Since: since, Until: until}
	bySaga := map[string]*SagaReport{}
	latest := map[string]time.Time{}
	seen := map[string]bool{}
	for _, o := range outcomes {
		m := o.Migration
		if m == nil || o.FinishedAt.Before(since) || !o.FinishedAt.Before(until) {
			continue
		}
		// One instance counts once, whatever number of copies was read.
		if k := o.Saga + "\x00" + o.InstanceID + "\x00" + m.Mode; seen[k] {
			continue
		} else {
			seen[k] = true
		}
		s := bySaga[o.Saga]
		if s == nil {
			s = &SagaReport{Saga: o.Saga, ActiveStatus: map[string]int{}, ByKind: map[string]int{}, Examples: map[string][]string{}}
			bySaga[o.Saga] = s
		}
		if !o.FinishedAt.Before(latest[o.Saga]) {
			latest[o.Saga] = o.FinishedAt
			s.Stage, s.Percent = m.Stage, m.Percent
		}
		s.Instances++
		if m.Mode != topics.ModeShadow {
			s.Active++
			s.ActiveStatus[o.Status]++
			continue
		}
		s.Shadow++
		if len(m.Divergences) == 0 {
			s.Agreeing++
			continue
		}
		s.Diverging++
		kinds := map[string]bool{}
		for _, d := range m.Divergences {
			kinds[d.Kind] = true
		}
		for k := range kinds {
			s.ByKind[k]++
			if len(s.Examples[k]) < examples {
				s.Examples[k] = append(s.Examples[k], o.InstanceID)
			}
		}
	}
	for _, s := range bySaga {
		s.Stuck = s.ByKind[topics.DivergenceStuck]
		for _, ids := range s.Examples {
			sort.Strings(ids)
		}
		r.Sagas = append(r.Sagas, *s)
	}
	sort.Slice(r.Sagas, func(i, j int) bool { return r.Sagas[i].Saga < r.Sagas[j].Saga })
	return r
}

// ReadOutcomes reads the outcome events stored on a NATS JetStream topic
// since a time. Events that are not outcomes are skipped.
func ReadOutcomes(ctx context.Context, js jetstream.JetStream, topic string, since time.Time) ([]topics.Outcome, error) {
	var out []topics.Outcome
	// An outcome is stored after its instance finished: starting the read
	// at since finds every one that finished after it.
	err := natsjs.ReadTopic(ctx, js, topic, since, func(m natsjs.Stored) error {
		out = appendOutcome(out, m.Data)
		return nil
	})
	return out, err
}

// ReadKafkaOutcomes is ReadOutcomes on a Kafka topic.
func ReadKafkaOutcomes(ctx context.Context, r *kafka.Reader, topic string, since time.Time) ([]topics.Outcome, error) {
	from, err := r.OffsetAt(ctx, topic, since)
	if err != nil {
		return nil, err
	}
	var out []topics.Outcome
	err = r.Read(ctx, topic, from, func(m kafka.Stored) error {
		out = appendOutcome(out, m.Message.Payload)
		return nil
	})
	return out, err
}

// appendOutcome adds the outcome a stored event holds, if it is one.
func appendOutcome(out []topics.Outcome, data []byte) []topics.Outcome {
	var ev topics.CloudEvent
	if json.Unmarshal(data, &ev) != nil {
		return out
	}
	switch ev.Type {
	case topics.OutcomeCompleted, topics.OutcomeCompensated, topics.OutcomeFailed:
	default:
		return out
	}
	var o topics.Outcome
	if json.Unmarshal(ev.Data, &o) == nil {
		out = append(out, o)
	}
	return out
}

// WriteTable prints the report for a person.
func WriteTable(w io.Writer, r Report) error {
	fmt.Fprintf(w, "window %s → %s\n", r.Since.Format(time.RFC3339), r.Until.Format(time.RFC3339))
	if len(r.Sagas) == 0 {
		_, err := fmt.Fprintln(w, "no instance of a migrating saga finished in this window")
		return err
	}
	for _, s := range r.Sagas {
		stage := s.Stage
		if stage == "canary" {
			stage = fmt.Sprintf("canary %d%%", s.Percent)
		}
		fmt.Fprintf(w, "\n%s (%s)\n", s.Saga, stage)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "  instances\t%d\n", s.Instances)
		fmt.Fprintf(tw, "  driven by the saga\t%d\t%s\n", s.Active, counts(s.ActiveStatus))
		fmt.Fprintf(tw, "  shadow (legacy drove)\t%d\n", s.Shadow)
		fmt.Fprintf(tw, "    agreeing\t%d\t%s\n", s.Agreeing, pct(s.Agreeing, s.Shadow))
		fmt.Fprintf(tw, "    diverging\t%d\t%s\n", s.Diverging, pct(s.Diverging, s.Shadow))
		kinds := make([]string, 0, len(s.ByKind))
		for k := range s.ByKind {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for _, k := range kinds {
			fmt.Fprintf(tw, "      %s\t%d\te.g. %s\n", k, s.ByKind[k], strings.Join(s.Examples[k], ", "))
		}
		fmt.Fprintf(tw, "    stuck\t%d\n", s.Stuck)
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func pct(n, of int) string {
	if of == 0 {
		return ""
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(of))
}
