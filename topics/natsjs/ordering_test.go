package natsjs_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sagabridge/sagabridge/topics/natsjs"
)

// TestSameKeyKeepsOrder: messages of one key are handled one at a time in
// publish order, while different keys run side by side; a nacked message
// comes back and is not lost.
func TestSameKeyKeepsOrder(t *testing.T) {
	srv, err := natsjs.StartServer(natsjs.ServerConfig{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	ps, err := natsjs.New(natsjs.Config{
		URL: srv.ClientURL(), ConsumerGroup: "order-test", Concurrency: 8,
		Retry: natsjs.ExponentialBackoff(5*time.Millisecond, 20*time.Millisecond),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ps.Close() })

	const keys, perKey = 6, 40
	for i := 0; i < perKey; i++ {
		for k := 0; k < keys; k++ {
			msg := message.NewMessage(fmt.Sprintf("m-%d-%d", k, i), []byte(strconv.Itoa(i)))
			msg.Metadata.Set("partition_key", fmt.Sprintf("key-%d", k))
			if err := ps.Publisher().Publish("ordering.test", msg); err != nil {
				t.Fatal(err)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ch, err := ps.Subscriber().Subscribe(ctx, "ordering.test")
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	seen := map[string][]int{}
	active := map[string]bool{}
	var inFlight, maxInFlight atomic.Int32
	nacked := map[string]bool{}
	var wg sync.WaitGroup
	done := 0
	for done < keys*perKey {
		var msg *message.Message
		select {
		case msg = <-ch:
		case <-ctx.Done():
			t.Fatalf("received %d of %d", done, keys*perKey)
		}
		key := msg.Metadata.Get("partition_key")
		n, _ := strconv.Atoi(string(msg.Payload))
		mu.Lock()
		if active[key] {
			t.Errorf("two messages of %s in flight at once", key)
		}
		active[key] = true
		// Nack the 10th message of each key once: it must come back, and
		// in order, since nothing of its key runs before it is settled.
		nack := n == 10 && !nacked[key]
		if nack {
			nacked[key] = true
		} else {
			seen[key] = append(seen[key], n)
			done++
		}
		mu.Unlock()
		cur := inFlight.Add(1)
		for {
			m := maxInFlight.Load()
			if cur <= m || maxInFlight.CompareAndSwap(m, cur) {
				break
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond)
			mu.Lock()
			active[key] = false
			mu.Unlock()
			inFlight.Add(-1)
			if nack {
				msg.Nack()
			} else {
				msg.Ack()
			}
		}()
	}
	wg.Wait()
	for k, got := range seen {
		for i, n := range got {
			if i > 0 && n < got[i-1] {
				t.Fatalf("%s out of order: %v", k, got)
			}
		}
	}
	if maxInFlight.Load() < 2 {
		t.Errorf("never more than one message in flight: keys did not run side by side")
	}
	t.Logf("max in flight %d", maxInFlight.Load())
}
