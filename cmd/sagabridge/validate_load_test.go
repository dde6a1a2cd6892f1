package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tripSaga is a valid saga file; the cases below break it one way each.
const tripSaga = `name: Trip
version: 1
steps:
  - name: book
    command: {topic: hotel.commands, type: hotel.book, replyEvent: book.reply}
    timeout: 30s
    compensation: release-inventory
`

// tripConfig starts and raises on Trip.
const tripConfig = `sagas: [trip.yaml]
routes:
  - name: trip-requested
    topics: [trips]
    match: event.type == "trip.requested"
    start: {workflow: Trip, version: 1, instanceId: '"trip-" + event.data.id'}
  - name: hotel-replied
    topics: [hotel.replies]
    raise: {instanceId: '"trip-" + event.data.id', eventName: book.reply}
`

// TestValidateLoadsWhatRunLoads: every kind of mistake a config can hide
// from a check that reads bridge.yaml alone fails validate with its
// file:line and exit 2, and run refuses the same config with the same
// message and exit code before it connects anything. Likely mistakes that
// still load are warnings: validate exits 0.
func TestValidateLoadsWhatRunLoads(t *testing.T) {
	for _, tc := range []struct {
		name         string
		config, saga string
		errs         []string // "file:line: text"; file is bridge.yaml or trip.yaml
		warnings     []string
	}{
		{
			name:   "saga file missing",
			config: strings.Replace(tripConfig, "sagas: [trip.yaml]", "sagas: [trip.yaml, trips/*.yaml]", 1),
			saga:   tripSaga,
			errs:   []string{`bridge.yaml:1: saga files "trips/*.yaml": no file matches`},
		},
		{
			name:   "unknown key in a saga file",
			config: tripConfig,
			saga:   strings.Replace(tripSaga, "    timeout: 30s\n", "    timeout: 30s\n    retries: 3\n", 1),
			errs:   []string{`trip.yaml:7: unknown key "retries"`},
		},
		{
			name:   "duration without a unit",
			config: tripConfig,
			saga:   strings.Replace(tripSaga, "timeout: 30s", "timeout: 30", 1),
			errs:   []string{`trip.yaml:6: duration "30": write it with a unit`},
		},
		{
			name:   "unknown compensation",
			config: tripConfig,
			saga:   strings.Replace(tripSaga, "compensation: release-inventory", "compensation: cancel-hotel", 1),
			errs:   []string{`trip.yaml:7: saga Trip v1 step book: compensation "cancel-hotel" is not registered`},
		},
		{
			name:   "match that is not a bool",
			config: strings.Replace(tripConfig, `match: event.type == "trip.requested"`, `match: event.type`, 1),
			saga:   tripSaga,
			errs:   []string{`bridge.yaml:5: route "trip-requested": match: match must be a bool, expression is string`},
		},
		{
			name:   "start of a saga nobody loaded",
			config: strings.Replace(tripConfig, "workflow: Trip,", "workflow: Journey,", 1),
			saga:   tripSaga,
			errs:   []string{`bridge.yaml:6: route "trip-requested": workflow "Journey" is not registered`},
		},
		{
			name:   "start of a version nobody loaded",
			config: strings.Replace(tripConfig, "version: 1", "version: 2", 1),
			saga:   tripSaga,
			errs:   []string{`bridge.yaml:6: route "trip-requested": saga "Trip" has no version 2 (loaded: [1])`},
		},
		{
			name:   "reply success that is not a bool, header that is not a string",
			config: tripConfig,
			saga: strings.Replace(tripSaga, "    timeout: 30s\n",
				"    timeout: 30s\n    reply: {success: size(reply.outcome)}\n", 1) +
				"  - name: pay\n    command: {topic: p, type: p, replyEvent: p.reply, headers: {X-Try: attempt}}\n    timeout: 30s\n",
			errs: []string{
				`trip.yaml:7: saga Trip v1 step book: reply: success: must be a bool, expression is int`,
				`trip.yaml:10: saga Trip v1 step pay: command: headers: X-Try: must be a string, expression is int`,
			},
		},
		{
			name:   "yaml syntax error in bridge.yaml",
			config: strings.Replace(tripConfig, `instanceId: '"trip-" + event.data.id'}`, `instanceId: '"trip-" + event.data.id'`, 1),
			saga:   tripSaga,
			errs:   []string{`bridge.yaml:6: yaml: `},
		},
		{
			name:   "yaml syntax error in a saga file",
			config: tripConfig,
			saga:   strings.Replace(tripSaga, "    timeout: 30s\n", "    timeout: 30s\n   retry: {maxAttempts: 2}\n", 1),
			errs:   []string{`trip.yaml:7: yaml: `},
		},
		{
			name: "every mistake at once",
			config: strings.Replace(strings.Replace(tripConfig, `match: event.type == "trip.requested"`, `match: event.type`, 1),
				"sagas: [trip.yaml]", "sagas: [trip.yaml, trips/*.yaml]", 1),
			saga: strings.Replace(strings.Replace(tripSaga, "timeout: 30s", "timeout: 30", 1),
				"compensation: release-inventory", "compensation: cancel-hotel", 1),
			errs: []string{
				`bridge.yaml:1: saga files "trips/*.yaml": no file matches`,
				`trip.yaml:6: duration "30": write it with a unit`,
				`trip.yaml:7: saga Trip v1 step book: compensation "cancel-hotel" is not registered`,
				`bridge.yaml:5: route "trip-requested": match: match must be a bool`,
			},
		},
		{
			name:     "raise of an event no saga waits for",
			config:   strings.Replace(tripConfig, "eventName: book.reply", "eventName: booked", 1),
			saga:     tripSaga,
			warnings: []string{`bridge.yaml:9: warning: route "hotel-replied" raises event "booked", which no loaded saga waits for`},
		},
		{
			name:     "step timeout not longer than ackWait",
			config:   tripConfig + "broker: {ackWait: 30s}\n",
			saga:     tripSaga,
			warnings: []string{`trip.yaml:4: warning: saga Trip v1 step book: timeout 30s is not longer than broker.ackWait 30s`},
		},
		{name: "clean", config: tripConfig, saga: tripSaga},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "bridge.yaml")
			config := tc.config + fmt.Sprintf("engine: {embedded: {dbPath: %q}}\n", filepath.Join(dir, "wf.db")) +
				"admin: {listen: 127.0.0.1:0}\n"
			nats := fmt.Sprintf("embedded: {dataDir: %q}", filepath.Join(dir, "nats"))
			if strings.Contains(tc.config, "broker:") {
				config = strings.Replace(config, "broker: {ackWait: 30s}", "broker: {ackWait: 30s, "+nats+"}", 1)
			} else {
				config += "broker: {" + nats + "}\n"
			}
			if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "trip.yaml"), []byte(tc.saga), 0o600); err != nil {
				t.Fatal(err)
			}
			abs := func(s string) string {
				s = strings.Replace(s, "bridge.yaml:", path+":", 1)
				return strings.Replace(s, "trip.yaml:", filepath.Join(dir, "trip.yaml")+":", 1)
			}

			root := newRoot(mustOwnSagas())
			var out, errOut bytes.Buffer
			root.SetOut(&out)
			root.SetErr(&errOut)
			root.SetArgs([]string{"validate", "-c", path})
			err := root.Execute()
			for _, w := range tc.warnings {
				if !strings.Contains(errOut.String(), abs(w)) {
					t.Errorf("warning %q missing from:\n%s", abs(w), errOut.String())
				}
			}
			if len(tc.warnings) == 0 && errOut.Len() > 0 && err == nil {
				t.Errorf("unexpected warnings:\n%s", errOut.String())
			}
			if len(tc.errs) == 0 {
				if err != nil {
					t.Fatalf("validate: %v", err)
				}
				return
			}
			var ee exitError
			if !errors.As(err, &ee) || ee.code != exitUsage {
				t.Fatalf("validate: want exit %d, got %v", exitUsage, err)
			}
			for _, want := range tc.errs {
				if !strings.Contains(err.Error(), abs(want)) {
					t.Errorf("validate: missing %q in:\n%v", abs(want), err)
				}
			}

			// run refuses the same config with the same messages.
			root = newRoot(mustOwnSagas())
			root.SetOut(&out)
			root.SetErr(&errOut)
			root.SetArgs([]string{"run", "-c", path, "--log-level", "error"})
			runErr := root.Execute()
			if !errors.As(runErr, &ee) || ee.code != exitUsage {
				t.Fatalf("run: want exit %d, got %v", exitUsage, runErr)
			}
			if runErr.Error() != err.Error() {
				t.Errorf("run says:\n%v\nvalidate says:\n%v", runErr, err)
			}
		})
	}
}
