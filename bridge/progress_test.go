package bridge_test

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/sagas/order/simulated"
	"github.com/sagabridge/sagabridge/topics"
)

// TestProgressBoardFedByRun: a running bridge keeps a progress board of the
// sagas on the broker, outside its consumer group: a saga whose
// participant does not answer shows the step it waits at, and one that
// finished shows its outcome.
func TestProgressBoardFedByRun(t *testing.T) {
	for _, newKit := range brokers(t) {
		kit := newKit(t)
		t.Run(kit.name, func(t *testing.T) {
			board, err := sagas.NewProgressBoard(100)
			if err != nil {
				t.Fatal(err)
			}
			cfg := devConfig(t, kit, t.TempDir())
			s := startStack(t, kit, cfg, stackOptions{progress: board})
			// The board's subscription reads from the latest offset once it
			// is in place: probe until it hears.
			waitFor(t, 30*time.Second, "the board to listen", func() bool {
				probe(t, s)
				_, ok := board.Get("probe")
				return ok
			})
			publishOrder(t, s, "evt-waiting", simulated.Order{OrderID: "waiting", Amount: 2})
			var p sagas.Progress
			waitFor(t, 30*time.Second, "the saga's progress", func() bool {
				var ok bool
				p, ok = board.Get("order-waiting")
				return ok
			})
			if p.Status != sagas.ProgressRunning || p.Step != "reserve-inventory" || p.Kind != sagas.KindCommand ||
				len(p.WaitingFor) != 1 || p.WaitingFor[0] != "event reserve-inventory.reply" {
				t.Errorf("progress %+v", p)
			}

			// The same order answered: its board entry ends with the outcome.
			legacy := kit.pubsub(t, "legacy-services")
			parts, err := simulated.New(simulated.Config{}, legacy.Publisher(), legacy.Subscriber(), nil)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- parts.Run(t.Context()) }()
			waitFor(t, 60*time.Second, "the outcome on the board", func() bool {
				p, _ = board.Get("order-waiting")
				return p.Outcome != nil
			})
			if p.Status != topics.StatusCompleted || p.Outcome.Status != topics.StatusCompleted {
				t.Errorf("final progress %+v", p)
			}
		})
	}
}

func probe(t *testing.T, s *stack) {
	t.Helper()
	ev, err := topics.NewCloudEvent("probe", "test", sagas.ProgressType, "probe", time.Now(),
		sagas.Progress{InstanceID: "probe", Seq: 1, Status: sagas.ProgressRunning})
	if err != nil {
		t.Fatal(err)
	}
	body, err := ev.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.client.Publisher().Publish(sagas.DefaultProgressTopic, message.NewMessage(watermill.NewUUID(), body)); err != nil {
		t.Fatal(err)
	}
}
