package sagas_test

import (
	"encoding/json"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/dapr/durabletask-go/workflow"

	"github.com/sagabridge/sagabridge/sagas"
	"github.com/sagabridge/sagabridge/topics"
)

const hotelTopic = "hotel.requests"

// hotelSaga holds a room with a plain JSON message of the hotel's own
// shape, reads the hotel's reply with its own rule and takes the hold id
// as the step's result; the second step sends that id on.
func hotelSaga() sagas.Saga {
	hold := sagas.Step{
		Name:    "hold",
		Command: topics.CommandSpec{Topic: hotelTopic, Type: "hotel.hold", ReplyEvent: "hold.reply"},
		Timeout: 10 * time.Second,
		Message: &sagas.Message{
			Plain: true,
			Data: func(s *sagas.State, c sagas.CommandRef) (any, error) {
				var in struct{ TripID string }
				if err := s.DecodeInput(&in); err != nil {
					return nil, err
				}
				return map[string]any{"op": "HOLD_ROOM", "tripRef": in.TripID, "requestKey": c.IdempotencyKey}, nil
			},
			Headers: func(*sagas.State, sagas.CommandRef) (map[string]string, error) {
				return map[string]string{"X-Hotel-Client": "sagabridge"}, nil
			},
		},
		Reply: func(p json.RawMessage) (bool, string) {
			var r struct{ Outcome, Detail string }
			if err := json.Unmarshal(p, &r); err != nil {
				return false, err.Error()
			}
			return r.Outcome == "HELD", r.Detail
		},
		ReplyResult: func(p json.RawMessage) (json.RawMessage, error) {
			var r struct{ HoldID string }
			if err := json.Unmarshal(p, &r); err != nil || r.HoldID == "" {
				return nil, errors.Join(err, errors.New("no holdId"))
			}
			return json.Marshal(map[string]string{"holdId": r.HoldID})
		},
	}
	confirm := sagas.Step{
		Name:    "confirm",
		Command: topics.CommandSpec{Topic: hotelTopic, Type: "hotel.confirm", ReplyEvent: "confirm.reply"},
		Timeout: 10 * time.Second,
		Message: &sagas.Message{
			Data: func(s *sagas.State, c sagas.CommandRef) (any, error) {
				var h struct{ HoldID string }
				if err := s.Decode("hold", &h); err != nil {
					return nil, err
				}
				return map[string]any{"holdId": h.HoldID, "attempt": c.Attempt}, nil
			},
		},
	}
	return sagas.Saga{Name: "Hotel", Steps: []sagas.Step{hold, confirm}}
}

// Hotel runs hotelSaga.
func Hotel(ctx *workflow.WorkflowContext) (any, error) { return sagas.Run(ctx, hotelSaga()) }

// TestMessageShapesCommands: a Go saga's Message sends a participant its
// own message (plain JSON body, its header, the idempotency key where it
// wants it, and the command's ids as headers), Reply and ReplyResult read
// its own reply, and a later step's message carries the earlier result.
func TestMessageShapesCommands(t *testing.T) {
	if err := hotelSaga().Validate(); err != nil {
		t.Fatal(err)
	}
	k := newKit(t, kitOptions{workflows: map[string]workflow.Workflow{"Hotel": Hotel}})
	k.OnPublish(func(topic string, ev topics.CloudEvent) {
		if topic != hotelTopic {
			return
		}
		reply := `{"outcome":"HELD","holdId":"H-7","extra":1}`
		if ev.Type == "hotel.confirm" {
			reply = `{"status":"ok"}`
		}
		go k.Raise(ev.Subject, ev.Type[len("hotel."):]+".reply", json.RawMessage(reply))
	})
	k.Start("Hotel", "trip-7", map[string]string{"TripID": "t-7"})
	out := k.Outcome("trip-7")
	if out.Status != topics.StatusCompleted {
		t.Fatalf("outcome %s: %s", out.Status, out.Error)
	}
	var holds, confirms []topics.CloudEvent
	for _, e := range k.Published(hotelTopic) {
		switch e.Type {
		case "hotel.hold":
			holds = append(holds, e)
		case "hotel.confirm":
			confirms = append(confirms, e)
		}
	}
	if len(holds) != 1 || len(confirms) != 1 {
		t.Fatalf("%d holds, %d confirms sent", len(holds), len(confirms))
	}
	h := holds[0]
	if got, want := string(h.Data), `{"op":"HOLD_ROOM","requestKey":"trip-7/hold","tripRef":"t-7"}`; got != want {
		t.Errorf("hold body %s, want %s", got, want)
	}
	o, ok := k.MessageOptions(h.ID)
	wantHeaders := map[string]string{
		"X-Hotel-Client": "sagabridge", sagas.HeaderIdempotencyKey: "trip-7/hold",
		sagas.HeaderCommandID: "trip-7/hold/1", sagas.HeaderAttempt: "1",
	}
	if !ok || !o.Plain || !maps.Equal(o.Headers, wantHeaders) {
		t.Errorf("hold sent with %+v (%v), want plain with %v", o, ok, wantHeaders)
	}
	c := confirms[0]
	if got, want := string(c.Data), `{"attempt":1,"holdId":"H-7"}`; got != want {
		t.Errorf("confirm data %s, want %s (the hold's result, extracted by ReplyResult)", got, want)
	}
	if o, _ := k.MessageOptions(c.ID); o.Plain || c.IdempotencyKey != "trip-7/confirm" {
		t.Errorf("confirm: plain %v, idempotency key %q", o.Plain, c.IdempotencyKey)
	}
}
