package benchmark

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sagabridge/sagabridge/topics/kafka"
	"github.com/sagabridge/sagabridge/topics/natsjs"
)

// ServeBroker runs a broker for a benchmark in another process: it starts
// a nats-server with JetStream (kind "nats") or a kfake Kafka broker (kind
// "kafka", in memory) on a free loopback port with its store in dir, writes the
// address clients connect to as one line on out, and stops when ctx ends or
// stdin closes (the benchmark closes it, or exits).
func ServeBroker(ctx context.Context, kind, dir string, stdin io.Reader, out io.Writer) error {
	var addr string
	var stop func()
	switch kind {
	case "nats":
		srv, err := natsjs.StartServer(natsjs.ServerConfig{StoreDir: dir})
		if err != nil {
			return err
		}
		addr, stop = srv.ClientURL(), srv.Shutdown
	case "kafka":
		// In memory, as the in-process case runs it.
		k, err := kafka.StartEmbedded()
		if err != nil {
			return err
		}
		addr, stop = strings.Join(k.Brokers(), ","), k.Close
	default:
		return fmt.Errorf("bench broker: kind %q is not nats or kafka", kind)
	}
	defer stop()
	if _, err := fmt.Fprintln(out, addr); err != nil {
		return err
	}
	eof := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, stdin); close(eof) }()
	select {
	case <-ctx.Done():
	case <-eof:
	}
	return nil
}

// brokerProcess is a broker started with BrokerCommand.
type brokerProcess struct {
	cmd   *exec.Cmd
	stdin io.Closer
	addr  string
}

// startBrokerProcess runs command + "--kind kind --store dir" and reads the
// address it prints.
func startBrokerProcess(ctx context.Context, command []string, kind, dir string) (*brokerProcess, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	cmd, stdin, stdout, err := startChild(ctx, "broker", command, "--kind", kind, "--store", dir)
	if err != nil {
		return nil, err
	}
	p := &brokerProcess{cmd: cmd, stdin: stdin}
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case p.addr = <-lines:
	case <-time.After(30 * time.Second):
	}
	if p.addr == "" {
		p.stop()
		return nil, fmt.Errorf("bench: broker process %s printed no address", filepath.Base(command[0]))
	}
	return p, nil
}

// cpuSeconds is the broker process's CPU time so far.
func (p *brokerProcess) cpuSeconds() float64 { return processCPUSeconds(p.cmd.Process.Pid) }

// processCPUSeconds is a process's CPU time so far, from /proc: the sum
// of its threads' run time in nanoseconds (schedstat), else utime + stime
// in 10 ms clock ticks, too coarse for a round of a few hundred sagas. A
// thread that exited is no longer counted in the first; the Go runtime
// keeps its threads.
func processCPUSeconds(pid int) float64 {
	if s, ok := threadsRunSeconds(pid); ok {
		return s
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields follow the parenthesised command name; utime and stime are
	// fields 14 and 15, in clock ticks (USER_HZ, 100 on Linux).
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100
}

// threadsRunSeconds sums the first field of /proc/PID/task/*/schedstat,
// the time each thread ran, in nanoseconds.
func threadsRunSeconds(pid int) (float64, bool) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil || len(tasks) == 0 {
		return 0, false
	}
	var ns float64
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue // the thread exited meanwhile
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return 0, false
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, false
		}
		ns += v
	}
	return ns / 1e9, true
}

// stop closes the broker's stdin, which shuts it down, and waits for it.
func (p *brokerProcess) stop() {
	_ = p.stdin.Close()
	waitOrKill(p.cmd)
}

// startChild runs command with extra appended to its arguments, its stdin
// and stdout piped to the caller and its stderr to ours; what names it in
// errors.
func startChild(ctx context.Context, what string, command []string, extra ...string) (*exec.Cmd, io.WriteCloser, io.ReadCloser, error) {
	if len(command) == 0 {
		return nil, nil, nil, fmt.Errorf("bench: empty %s command", what)
	}
	args := append(command[1:len(command):len(command)], extra...)
	cmd := exec.CommandContext(ctx, command[0], args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, nil, fmt.Errorf("bench: start %s process: %w", what, err)
	}
	return cmd, stdin, stdout, nil
}

// waitOrKill waits for a child told to stop, and kills it after 30 s.
func waitOrKill(cmd *exec.Cmd) {
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}
