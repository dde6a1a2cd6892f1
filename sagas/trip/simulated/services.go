// Package simulated runs the TripSaga's participants as the legacy
// services they stand for: a hotel that reads and writes plain JSON of
// its own shape and wants a client header, and an airline that speaks
// CloudEvents of its own types. Each acts once per idempotency key (the
// key the saga puts in their messages), so a command sent again after a
// worker crash books nothing twice; the ledger says what they did.
package simulated

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sagabridge/sagabridge/topics"
)

// Topics and types of the trip domain.
const (
	TripsRequested  = "trips.requested"
	HotelRequests   = "hotel.requests"
	HotelEvents     = "hotel.events"
	AirlineCommands = "airline.commands"
	AirlineEvents   = "airline.events"

	TripRequested   = "trip.requested"
	BookingRequest  = "com.airline.booking.requested"
	BookingAnswered = "com.airline.booking.answered"

	// ClientHeader is the header the hotel requires on every request.
	ClientHeader = "X-Hotel-Client"
	// FullFlight is a flight the airline refuses.
	FullFlight = "FULL"
	// MaxNights is the longest stay the hotel has rooms for.
	MaxNights = 14
)

// Trip is the data of a trip.requested event: the saga's input.
type Trip struct {
	TripID    string  `json:"tripId"`
	Traveller string  `json:"traveller"`
	Flight    string  `json:"flight"`
	Nights    float64 `json:"nights"`
}

// Expected is the outcome a trip must end in and the steps compensated.
func Expected(t Trip) (status string, compensated []string) {
	switch {
	case t.Nights > MaxNights:
		return topics.StatusCompensated, nil
	case t.Flight == FullFlight:
		return topics.StatusCompensated, []string{"hold-room"}
	}
	return topics.StatusCompleted, nil
}

// PublishTrip publishes a trip.requested CloudEvent.
func PublishTrip(pub message.Publisher, eventID string, t Trip) error {
	ev, err := topics.NewCloudEvent(eventID, "travel-desk", TripRequested, t.TripID, time.Now(), t)
	if err != nil {
		return err
	}
	body, err := ev.Marshal()
	if err != nil {
		return err
	}
	msg := message.NewMessage(eventID, body)
	msg.Metadata.Set("Content-Type", "application/cloudevents+json")
	msg.Metadata.Set("partition_key", t.TripID)
	if err := pub.Publish(TripsRequested, msg); err != nil {
		return fmt.Errorf("publish trip %s: %w", t.TripID, err)
	}
	return nil
}

// hotelRequest is what the hotel reads: plain JSON, no envelope.
type hotelRequest struct {
	Op         string  `json:"op"` // HOLD_ROOM or RELEASE_ROOM
	TripRef    string  `json:"tripRef"`
	Guest      string  `json:"guest,omitempty"`
	Nights     float64 `json:"nights,omitempty"`
	HoldID     string  `json:"holdId,omitempty"`
	RequestKey string  `json:"requestKey"`
}

// hotelEvent is what the hotel writes.
type hotelEvent struct {
	TripRef string `json:"tripRef"`
	Outcome string `json:"outcome"` // HELD, NO_VACANCY, RELEASED
	HoldID  string `json:"holdId,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// bookingRequest is the data of the airline's booking request.
type bookingRequest struct {
	BookingRequest struct {
		Passenger string `json:"passenger"`
		Flight    string `json:"flight"`
		HotelHold string `json:"hotelHold"`
		TripRef   string `json:"tripRef"`
	} `json:"bookingRequest"`
	DedupeKey string `json:"dedupeKey"`
}

// bookingAnswer is the data of the airline's answer.
type bookingAnswer struct {
	TripRef string `json:"tripRef"`
	Status  string `json:"status"` // CONFIRMED or REJECTED
	PNR     string `json:"pnr,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// Snapshot is what the services did, per trip.
type Snapshot struct {
	// Holds counts rooms held (each hold acted on once per key).
	Holds map[string]int
	// Held says the trip holds a room now.
	Held map[string]bool
	// Bookings counts flights booked.
	Bookings map[string]int
	// BookedWithHold is the hotel hold the airline was given.
	BookedWithHold map[string]string
	// Requests counts every request message received, repeats included.
	Requests int
	// Refused counts requests refused for their shape (no client header,
	// an unreadable body).
	Refused int
}

// Config tunes the services.
type Config struct {
	// ReplyDelay is how long each answer takes, so that sagas are
	// between steps when a test kills the worker.
	ReplyDelay time.Duration
}

// Services are the hotel and the airline.
type Services struct {
	cfg Config
	pub message.Publisher
	sub message.Subscriber

	mu       sync.Mutex
	answered map[string]any // by idempotency key: the answer given
	snap     Snapshot
}

// New builds the services on a broker client.
func New(cfg Config, pub message.Publisher, sub message.Subscriber) *Services {
	return &Services{cfg: cfg, pub: pub, sub: sub, answered: map[string]any{}, snap: Snapshot{
		Holds: map[string]int{}, Held: map[string]bool{}, Bookings: map[string]int{}, BookedWithHold: map[string]string{},
	}}
}

// Ledger copies what the services did.
func (s *Services) Ledger() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.snap
	out.Holds, out.Held, out.Bookings, out.BookedWithHold = clone(s.snap.Holds), clone(s.snap.Held), clone(s.snap.Bookings), clone(s.snap.BookedWithHold)
	return out
}

func clone[V any](m map[string]V) map[string]V {
	out := make(map[string]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Run serves both until ctx ends.
func (s *Services) Run(ctx context.Context) error {
	hotel, err := s.sub.Subscribe(ctx, HotelRequests)
	if err != nil {
		return err
	}
	airline, err := s.sub.Subscribe(ctx, AirlineCommands)
	if err != nil {
		return err
	}
	errs := make(chan error, 2)
	serve := func(ch <-chan *message.Message, handle func(*message.Message) error) {
		for msg := range ch {
			if err := handle(msg); err != nil {
				msg.Nack()
				continue
			}
			msg.Ack()
		}
		errs <- nil
	}
	go serve(hotel, s.hotel)
	go serve(airline, s.airline)
	<-ctx.Done()
	return errors.Join(<-errs, <-errs)
}

func (s *Services) hotel(msg *message.Message) error {
	var req hotelRequest
	s.mu.Lock()
	s.snap.Requests++
	if msg.Metadata.Get(ClientHeader) != "sagabridge" || json.Unmarshal(msg.Payload, &req) != nil || req.RequestKey == "" {
		s.snap.Refused++
		s.mu.Unlock()
		return nil // not for us: a real service would log and drop it
	}
	ans, seen := s.answered[req.RequestKey]
	if !seen {
		ans = s.actHotel(req)
		s.answered[req.RequestKey] = ans
	}
	s.mu.Unlock()
	body, err := json.Marshal(ans)
	if err != nil {
		return err
	}
	time.Sleep(s.cfg.ReplyDelay)
	out := message.NewMessage(fmt.Sprintf("%s/%s", req.RequestKey, msg.UUID), body)
	out.Metadata.Set("Content-Type", "application/json")
	out.Metadata.Set("partition_key", req.TripRef)
	return s.pub.Publish(HotelEvents, out)
}

// actHotel does what a request asks, once per key; s.mu is held.
func (s *Services) actHotel(req hotelRequest) hotelEvent {
	switch req.Op {
	case "HOLD_ROOM":
		if req.Nights > MaxNights {
			return hotelEvent{TripRef: req.TripRef, Outcome: "NO_VACANCY", Detail: fmt.Sprintf("no room for %v nights", req.Nights)}
		}
		s.snap.Holds[req.TripRef]++
		s.snap.Held[req.TripRef] = true
		return hotelEvent{TripRef: req.TripRef, Outcome: "HELD", HoldID: "H-" + req.TripRef}
	case "RELEASE_ROOM":
		if req.HoldID == "H-"+req.TripRef {
			s.snap.Held[req.TripRef] = false
		}
		return hotelEvent{TripRef: req.TripRef, Outcome: "RELEASED", HoldID: req.HoldID}
	}
	return hotelEvent{TripRef: req.TripRef, Outcome: "UNKNOWN_OP", Detail: req.Op}
}

func (s *Services) airline(msg *message.Message) error {
	var ev topics.CloudEvent
	var req bookingRequest
	s.mu.Lock()
	s.snap.Requests++
	if json.Unmarshal(msg.Payload, &ev) != nil || ev.Type != BookingRequest || json.Unmarshal(ev.Data, &req) != nil || req.DedupeKey == "" {
		s.snap.Refused++
		s.mu.Unlock()
		return nil
	}
	b := req.BookingRequest
	ans, seen := s.answered[req.DedupeKey]
	if !seen {
		a := bookingAnswer{TripRef: b.TripRef, Status: "REJECTED", Reason: "flight " + b.Flight + " is full"}
		if b.Flight != FullFlight {
			a = bookingAnswer{TripRef: b.TripRef, Status: "CONFIRMED", PNR: "PNR-" + b.TripRef}
			s.snap.Bookings[b.TripRef]++
			s.snap.BookedWithHold[b.TripRef] = b.HotelHold
		}
		ans = a
		s.answered[req.DedupeKey] = ans
	}
	s.mu.Unlock()
	out, err := topics.NewCloudEvent(ev.ID+"/answer", "airline", BookingAnswered, b.TripRef, time.Now(), ans)
	if err != nil {
		return err
	}
	body, err := out.Marshal()
	if err != nil {
		return err
	}
	time.Sleep(s.cfg.ReplyDelay)
	m := message.NewMessage(out.ID, body)
	m.Metadata.Set("Content-Type", "application/cloudevents+json")
	m.Metadata.Set("partition_key", b.TripRef)
	return s.pub.Publish(AirlineEvents, m)
}
