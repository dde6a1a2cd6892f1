package bridge

import (
	"fmt"
	"slices"

	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/bridge/envelope"
	"github.com/sagabridge/sagabridge/sagas/registry"
)

// ReplayCheck says whether a dead letter, re-published to its topic, would
// reach a route of cfg. An event that decodes and matches no route is
// acked as unmatched: replayed, it would be discarded without a trace, so
// the replay keeps it instead (dlqstore.ReplayOptions.Check). An event
// that does not decode, or whose routes fail, is dead-lettered again, which
// loses nothing, and passes. sagas are the worker's (Options.Sagas): the
// routes that start them are compiled against them.
func ReplayCheck(cfg *config.Config, sagas *registry.Registry) (func(topic string, payload []byte, headers map[string]string) error, error) {
	_, router, err := prepare(cfg, Options{Sagas: sagas})
	if err != nil {
		return nil, err
	}
	topics := router.Topics()
	return func(topic string, payload []byte, headers map[string]string) error {
		if !slices.Contains(topics, topic) {
			return fmt.Errorf("no route of the config consumes topic %s any more", topic)
		}
		ev, err := envelope.Decode(payload, headers)
		if err != nil {
			return nil
		}
		decisions, err := router.Route(topic, ev, headers)
		if err == nil && len(decisions) == 0 {
			return fmt.Errorf("it matches no route of the config any more (replayed, it would be acked unmatched)")
		}
		return nil
	}, nil
}
