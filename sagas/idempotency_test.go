package sagas_test

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/dapr/durabletask-go/workflow"

	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/topics"
)

const lateTopic = "late.commands"

// LateReply is one command step whose reply may come after its timeout.
func LateReply(ctx *workflow.WorkflowContext) (any, error) {
	return sagas.Run(ctx, sagas.Saga{Name: "LateReply", Steps: []sagas.Step{{
		Name:        "book",
		Command:     topics.CommandSpec{Topic: lateTopic, Type: "book", ReplyEvent: "book.reply"},
		Timeout:     300 * time.Millisecond,
		MaxAttempts: 3,
	}}})
}

// TestReplyToAnEarlierAttemptCounts: the step's first reply is held past
// its timeout, as a reply held by a worker that died comes back only
// after the broker's ackWait. The step sends its command again (attempt 2,
// a new command id) with the same idempotency key, and the late reply to
// attempt 1 completes the step: a participant that dedupes on the key
// acts once, and nothing is sent a third time.
func TestReplyToAnEarlierAttemptCounts(t *testing.T) {
	k := newKit(t, kitOptions{workflows: map[string]workflow.Workflow{"LateReply": LateReply}})
	var mu sync.Mutex
	var sent []topics.CloudEvent
	k.OnPublish(func(topic string, ev topics.CloudEvent) {
		if topic != lateTopic {
			return
		}
		mu.Lock()
		sent = append(sent, ev)
		n := len(sent)
		first := sent[0]
		mu.Unlock()
		if n == 2 {
			// The reply to attempt 1 arrives while attempt 2 waits;
			// attempt 2 itself is never answered.
			go k.Raise(first.Subject, "book.reply", topics.Reply{
				InstanceID: first.Subject, Step: "book", CommandID: first.ID, Status: topics.ReplyOK,
				Payload: json.RawMessage(`{"booking":"B-1"}`),
			})
		}
	})
	k.Start("LateReply", "late-1", map[string]string{"tripId": "t-1"})
	out := k.Outcome("late-1")
	if out.Status != topics.StatusCompleted {
		t.Fatalf("outcome %s: %s", out.Status, out.Error)
	}
	time.Sleep(500 * time.Millisecond) // a third attempt would be sent by now

	mu.Lock()
	defer mu.Unlock()
	if len(sent) != 2 {
		t.Fatalf("%d commands sent, want 2 (attempt 1, and attempt 2 after its timeout)", len(sent))
	}
	var keys, ids []string
	for i, ev := range sent {
		var c topics.Command
		if err := json.Unmarshal(ev.Data, &c); err != nil {
			t.Fatal(err)
		}
		if c.Attempt != i+1 || c.IdempotencyKey != ev.IdempotencyKey {
			t.Errorf("command %d: attempt %d, key %q in data and %q on the event", i+1, c.Attempt, c.IdempotencyKey, ev.IdempotencyKey)
		}
		keys, ids = append(keys, c.IdempotencyKey), append(ids, ev.ID)
	}
	if keys[0] != "late-1/book" || keys[1] != keys[0] {
		t.Errorf("idempotency keys %q, want late-1/book on both attempts", keys)
	}
	if ids[0] == ids[1] {
		t.Errorf("both attempts have command id %s", ids[0])
	}
}
