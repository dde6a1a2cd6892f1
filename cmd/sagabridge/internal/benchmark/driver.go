package benchmark

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sagabridge/sagabridge/bridge"
	"github.com/sagabridge/sagabridge/topics"
	"github.com/sagabridge/sagabridge/topics/kafka"
	"github.com/sagabridge/sagabridge/topics/natsjs"
)

// The driver process (Options.DriverCommand) stands in for the services
// around the worker: it publishes each bridge saga's order and approval
// events and listens for every saga's outcome, so that neither is counted
// in the worker's CPU. Its protocol, one line each way:
//
//	stdin:  ID             publish ID's order and approval events
//	stdout: ready          connected and subscribed to the outcomes
//	        ID UNIXNANO    ID's outcome arrived at that wall-clock time
//	        error ID TEXT  publishing ID's events failed
const driverReady = "ready"

// ServeDriver runs the driver of a benchmark in another process: it
// connects to the broker of kind ("nats" or "kafka") at addr, subscribes to
// the outcomes, writes driverReady on out, then publishes the events of
// each ID read from in until in closes or ctx ends.
func ServeDriver(ctx context.Context, kind, addr string, in io.Reader, out io.Writer) error {
	client, err := driverClient(kind, addr)
	if err != nil {
		return err
	}
	defer client.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	outcomes, err := client.Subscriber().Subscribe(ctx, OutcomesTopic)
	if err != nil {
		return fmt.Errorf("bench driver: subscribe to %s: %w", OutcomesTopic, err)
	}
	w := &lineWriter{w: bufio.NewWriter(out)}
	go func() {
		for msg := range outcomes {
			var ev topics.CloudEvent
			if err := json.Unmarshal(msg.Payload, &ev); err == nil {
				_ = w.line(ev.Subject + " " + strconv.FormatInt(time.Now().UnixNano(), 10))
			}
			msg.Ack()
		}
	}()
	if err := w.line(driverReady); err != nil {
		return err
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	pub := client.Publisher()
	for {
		select {
		case <-ctx.Done():
			return nil
		case id, ok := <-lines:
			if !ok {
				return nil
			}
			// Each saga publishes on its own, as the in-process driver's
			// slots do: one loop publishing in turn would measure its own
			// round trips.
			go func() {
				if err := publishEvents(pub, id); err != nil {
					_ = w.line("error " + id + " " + strings.ReplaceAll(err.Error(), "\n", " "))
				}
			}()
		}
	}
}

func driverClient(kind, addr string) (bridge.Broker, error) {
	switch kind {
	case "nats":
		return natsjs.New(natsjs.Config{URL: addr, ConsumerGroup: "bench-driver", Concurrency: 64})
	case "kafka":
		return kafka.NewGroupClient(strings.Split(addr, ","), "bench-driver")
	}
	return nil, fmt.Errorf("bench driver: kind %q is not nats or kafka", kind)
}

// publishEvents publishes a bridge saga's order and approval events.
func publishEvents(pub message.Publisher, id string) error {
	msgs := make([]*message.Message, 0, 2)
	for _, typ := range []string{OrderType, ApprovalType} {
		ev, err := topics.NewCloudEvent(id+"/"+typ, "bench", typ, id, time.Now(), map[string]string{"id": id})
		if err != nil {
			return err
		}
		body, err := ev.Marshal()
		if err != nil {
			return err
		}
		m := message.NewMessage(ev.ID, body)
		m.Metadata.Set("partition_key", id)
		msgs = append(msgs, m)
	}
	return pub.Publish(EventsTopic, msgs...)
}

// lineWriter writes whole lines from several goroutines.
type lineWriter struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func (l *lineWriter) line(s string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.w.WriteString(s + "\n"); err != nil {
		return err
	}
	return l.w.Flush()
}

// driverProcess is the driver started with Options.DriverCommand.
type driverProcess struct {
	cmd   *exec.Cmd
	stdin *lineWriter
	close io.Closer
	// failed receives the first error the driver reported.
	failed chan error
	done   chan struct{}
}

// startDriverProcess runs command + "--kind kind --addr addr", waits until
// it says it is ready, and hands each outcome it reports to outcome.
func startDriverProcess(ctx context.Context, command []string, kind, addr string, outcome func(id string, at time.Time)) (*driverProcess, error) {
	cmd, stdin, stdout, err := startChild(ctx, "driver", command, "--kind", kind, "--addr", addr)
	if err != nil {
		return nil, err
	}
	p := &driverProcess{cmd: cmd, stdin: &lineWriter{w: bufio.NewWriter(stdin)}, close: stdin,
		failed: make(chan error, 1), done: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == driverReady:
				close(ready)
			case strings.HasPrefix(line, "error "):
				select {
				case p.failed <- fmt.Errorf("bench driver: %s", strings.TrimPrefix(line, "error ")):
				default:
				}
			default:
				id, at, ok := strings.Cut(line, " ")
				if n, err := strconv.ParseInt(at, 10, 64); ok && err == nil {
					outcome(id, time.Unix(0, n))
				}
			}
		}
	}()
	select {
	case <-ready:
		return p, nil
	case <-p.done:
		p.stop()
		return nil, fmt.Errorf("bench: driver process %s stopped before it was ready", filepath.Base(command[0]))
	case <-time.After(60 * time.Second):
		p.stop()
		return nil, fmt.Errorf("bench: driver process %s was not ready after 60 s", filepath.Base(command[0]))
	}
}

// publish asks the driver to publish id's events.
func (p *driverProcess) publish(id string) error { return p.stdin.line(id) }

// cpuSeconds is the driver process's CPU time so far.
func (p *driverProcess) cpuSeconds() float64 { return processCPUSeconds(p.cmd.Process.Pid) }

// stop closes the driver's stdin, which ends it, and waits for it.
func (p *driverProcess) stop() {
	_ = p.close.Close()
	waitOrKill(p.cmd)
	<-p.done
}
