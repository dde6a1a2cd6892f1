package bridge

import (
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sagabridge/sagabridge/bridge/envelope"
	"github.com/sagabridge/sagabridge/bridge/route"
)

// prepared is a message decoded and routed. The broker needs the instance
// ID to dispatch the message in order, so this is worked out before the
// dispatch (the broker's Keyer is Bridge.orderKey) and handed back to the
// handler with every delivery of the message (topics.Delivery.Keyed): a
// message is decoded and routed once.
type prepared struct {
	// tooLarge: the payload is over limits.maxPayloadBytes, not decoded.
	tooLarge  bool
	ev        envelope.Event
	decodeErr error
	decisions []route.Decision
	routeErr  error
}

// prepare decodes and routes a message read from topic.
func (h *handler) prepare(topic string, msg *message.Message) *prepared {
	if len(msg.Payload) > h.maxPayload {
		return &prepared{tooLarge: true}
	}
	headers := map[string]string(msg.Metadata)
	p := &prepared{}
	if p.ev, p.decodeErr = envelope.Decode(msg.Payload, headers); p.decodeErr != nil {
		return p
	}
	p.decisions, p.routeErr = h.router.Route(topic, p.ev, headers)
	return p
}

// key orders the message by the workflow instance it addresses first; ""
// (no order) when it addresses none.
func (p *prepared) key() string {
	if p.routeErr != nil || len(p.decisions) == 0 {
		return ""
	}
	return p.decisions[0].InstanceID
}
