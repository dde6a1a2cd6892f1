package bridge

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// stallLogEvery bounds how often a stopped topic is logged at error level.
const stallLogEvery = 30 * time.Second

// stalls records topics whose dead letters cannot be stored, even
// truncated. Such a topic stops: its other messages go back to the broker
// unhandled, while the message that could not be dead-lettered is retried
// (each redelivery tries the dead-letter topic again); /readyz reports it.
// Nothing is then acked past a message that is neither handled nor stored,
// and a topic does not fill up, one slot at a time, with messages that
// nobody says are stuck.
//
// A stall lapses when its message has not come back for hold (another
// replica took it, say); the next failure stops the topic again.
type stalls struct {
	hold time.Duration

	mu sync.Mutex
	m  map[string]*stall
}

type stall struct {
	id           string
	since, last  time.Time
	err          error
	lastLoggedAt time.Time
}

func newStalls(hold time.Duration) *stalls {
	return &stalls{hold: hold, m: map[string]*stall{}}
}

// block stops topic because message id's dead letter failed with err. It
// reports whether the caller should log now.
func (s *stalls) block(topic, id string, now time.Time, err error) bool {
	if s == nil {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.m[topic]
	if st == nil || st.id != id || now.Sub(st.last) > s.hold {
		st = &stall{id: id, since: now}
		s.m[topic] = st
	}
	st.last, st.err = now, err
	if now.Sub(st.lastLoggedAt) < stallLogEvery {
		return false
	}
	st.lastLoggedAt = now
	return true
}

// clear lets topic go on: a dead letter of it was stored.
func (s *stalls) clear(topic, _ string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, topic)
}

// errTopicStopped marks a message handed back because its topic is stopped.
var errTopicStopped = errors.New("topic stopped: a dead letter could not be stored")

// check says whether message id of topic may be handled now: always when
// the topic runs or id is the message it waits for.
func (s *stalls) check(topic, id string, now time.Time) error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.m[topic]
	if st == nil || st.id == id {
		return nil
	}
	if now.Sub(st.last) > s.hold {
		delete(s.m, topic)
		return nil
	}
	return fmt.Errorf("%w (message %s)", errTopicStopped, st.id)
}

// err describes every stopped topic, for /readyz; nil when none is.
func (s *stalls) err(now time.Time) error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for topic, st := range s.m {
		if now.Sub(st.last) > s.hold {
			continue
		}
		out = append(out, fmt.Sprintf("topic %s stopped since %s: dead letter of %s not stored: %v",
			topic, st.since.UTC().Format(time.RFC3339), st.id, st.err))
	}
	if len(out) == 0 {
		return nil
	}
	sort.Strings(out)
	return errors.New(strings.Join(out, "; "))
}
