package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sagabridge/sagabridge/bridge"
	"github.com/sagabridge/sagabridge/internal/testkit"
	"github.com/sagabridge/sagabridge/sagas/trip"
	tripsim "github.com/sagabridge/sagabridge/sagas/trip/simulated"
)

// syncBuffer is a bytes.Buffer the command and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDevRunsAUsersConfig: `sagabridge dev -c my-bridge.yaml --broker
// nats|kafka` runs a user's own config and saga files (the TripSaga
// example) on the in-process broker with the embedded engine, prints the
// broker's address, and prints the outcome of each saga the user's
// services take part in.
func TestDevRunsAUsersConfig(t *testing.T) {
	for _, broker := range []string{"nats", "kafka"} {
		t.Run(broker, func(t *testing.T) {
			dir := t.TempDir()
			for name, data := range map[string][]byte{"trip.yaml": trip.YAML(), "my-bridge.yaml": trip.ConfigYAML()} {
				if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			var out syncBuffer
			done := make(chan error, 1)
			root := newRoot(mustOwnSagas())
			root.SetOut(&out)
			root.SetErr(&out)
			root.SetArgs([]string{"dev", "-c", filepath.Join(dir, "my-bridge.yaml"), "--broker", broker,
				"--data", filepath.Join(dir, "data"), "--admin", "127.0.0.1:0"})
			go func() { done <- root.ExecuteContext(ctx) }()
			t.Cleanup(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("dev: %v", err)
				}
			})

			addr := regexp.MustCompile(`broker\s+(\S+)`)
			testkit.WaitUntil(t, time.Minute, "dev to print the broker", func() bool {
				return addr.MatchString(out.String()) && strings.Contains(out.String(), "running ")
			})
			url := addr.FindStringSubmatch(out.String())[1]
			t.Logf("dev printed: %s", url)
			// The user's services and producer connect over the network
			// to the address dev printed.
			connect := func(group string) bridge.Broker { return mustPubSub(t, url, group) }
			if broker == "kafka" {
				brokers := strings.Split(strings.TrimPrefix(url, "kafka://"), ",")
				connect = func(group string) bridge.Broker { return mustKafkaClient(t, brokers, group) }
			}
			legacy := connect("hotel-and-airline")
			runServices(t, tripsim.New(tripsim.Config{}, legacy.Publisher(), legacy.Subscriber()))
			publishTrips(t, connect("travel-desk").Publisher())
			testkit.WaitUntil(t, time.Minute, "the three outcomes in dev's output", func() bool {
				s := out.String()
				return strings.Contains(s, "trip-dev-1") && strings.Contains(s, "trip-dev-2") && strings.Contains(s, "trip-dev-3")
			})
			s := out.String()
			for _, want := range []string{
				`trip-dev-1\s+completed`,
				`trip-dev-2\s+compensated\s+step book-flight failed: flight FULL is full\s+\(undone: \[hold-room\]\)`,
				`trip-dev-3\s+compensated\s+step hold-room failed: no room for 20 nights`,
			} {
				if !regexp.MustCompile(want).MatchString(s) {
					t.Errorf("dev output lacks %s:\n%s", want, s)
				}
			}
		})
	}
}

func runServices(t *testing.T, svc *tripsim.Services) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func publishTrips(t *testing.T, pub message.Publisher) {
	for i, tr := range []tripsim.Trip{
		{TripID: "dev-1", Traveller: "Ada", Flight: "LH123", Nights: 2},
		{TripID: "dev-2", Traveller: "Bob", Flight: tripsim.FullFlight, Nights: 2},
		{TripID: "dev-3", Traveller: "Cy", Flight: "LH123", Nights: 20},
	} {
		if err := tripsim.PublishTrip(pub, fmt.Sprintf("evt-dev-%d", i+1), tr); err != nil {
			t.Fatal(err)
		}
	}
}
