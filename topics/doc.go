// Package topics owns everything that travels on the broker: the CloudEvent
// envelope, the schemas of saga commands, replies and outcomes, the default
// topic names, and (in sub-packages) the broker adapters.
//
// It depends on nothing else in sagabridge, so sagas, compensations and the
// bridge can all speak the same wire format.
package topics
