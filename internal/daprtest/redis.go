package daprtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// machineRedis is where CI machines and developer boxes usually run Redis.
const machineRedis = "127.0.0.1:6379"

// Redis is an actor state store server, the alternative to Postgres: the
// machine's own on 127.0.0.1:6379 when it answers PING, else a
// redis-server started for the test (no persistence). Tests on the machine's server stay apart through
// their unique app IDs, which are part of every key daprd writes; those
// keys are deleted when the test ends.
type Redis struct {
	addr string
	p    *proc
}

// StartRedis returns the machine's Redis or starts one for the test.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	if ping(machineRedis) == nil {
		return &Redis{addr: machineRedis}
	}
	return StartRedisServer(t)
}

// StartRedisServer starts a redis-server of the test's own on a free
// loopback port, without persistence, and stops it when the test ends.
func StartRedisServer(t testing.TB) *Redis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("daprtest: redis-server not found (%v): install it (Debian: apt-get install redis-server)", err)
	}
	dir := t.TempDir()
	for attempt := 0; attempt < 3; attempt++ {
		var ports []int
		if ports, err = freePorts(1); err != nil {
			break
		}
		addr := "127.0.0.1:" + strconv.Itoa(ports[0])
		p := &proc{
			name: "redis-server",
			path: bin,
			args: []string{
				"--bind", "127.0.0.1", "--port", strconv.Itoa(ports[0]),
				"--save", "", "--appendonly", "no", "--dir", dir,
			},
			logPath: filepath.Join(dir, fmt.Sprintf("redis-%d.log", attempt)),
		}
		if err = p.start(); err != nil {
			break
		}
		err = p.waitReady(context.Background(), func(context.Context) error { return ping(addr) })
		if err == nil {
			p.logOnFailure(t)
			t.Cleanup(p.kill)
			return &Redis{addr: addr, p: p}
		}
		p.kill()
	}
	t.Fatalf("daprtest: redis-server: %v", err)
	return nil
}

// Addr is host:port of the server.
func (r *Redis) Addr() string { return r.addr }

func (r *Redis) component(name string) string {
	return `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: ` + name + `
spec:
  type: state.redis
  version: v1
  metadata:
    - name: redisHost
      value: "` + r.addr + `"
    - name: actorStateStore
      value: "true"
`
}

// forget deletes appID's keys when the test ends (on a server of the
// test's own, the server goes away anyway).
func (r *Redis) forget(t testing.TB, appID string) {
	if r.p != nil {
		return
	}
	t.Cleanup(func() {
		// Actor state is under "<app ID>||"; reminders kept in the state
		// store are under "actors||dapr.internal.<namespace>.<app ID>.".
		keys, err := r.scan(appID + "||*")
		if err == nil {
			var more []string
			more, err = r.scan("actors||dapr.internal.*." + appID + ".*")
			keys = append(keys, more...)
		}
		if err == nil && len(keys) > 0 {
			for i := 0; i < len(keys); i += 500 {
				batch := keys[i:min(i+500, len(keys))]
				_, err = r.do(append([]string{"DEL"}, batch...)...)
				if err != nil {
					break
				}
			}
		}
		if err != nil {
			t.Logf("daprtest: cleaning Redis keys of %s: %v", appID, err)
		}
	})
}

func (r *Redis) scan(match string) ([]string, error) {
	var keys []string
	cursor := "0"
	for {
		reply, err := r.do("SCAN", cursor, "MATCH", match, "COUNT", "1000")
		if err != nil {
			return nil, err
		}
		parts, ok := reply.([]any)
		if !ok || len(parts) != 2 {
			return nil, fmt.Errorf("redis: SCAN reply %v", reply)
		}
		cursor, _ = parts[0].(string)
		batch, _ := parts[1].([]any)
		for _, k := range batch {
			if s, ok := k.(string); ok {
				keys = append(keys, s)
			}
		}
		if cursor == "0" {
			return keys, nil
		}
	}
}

func ping(addr string) error {
	r := &Redis{addr: addr}
	reply, err := r.do("PING")
	if err != nil {
		return err
	}
	if reply != "PONG" {
		return fmt.Errorf("redis %s: PING answered %v", addr, reply)
	}
	return nil
}

// do runs one command on a fresh connection and returns its reply: a
// string, an int64, nil or a []any.
func (r *Redis) do(args ...string) (any, error) {
	conn, err := net.DialTimeout("tcp", r.addr, time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return nil, err
	}
	return readReply(bufio.NewReader(conn))
}

func readReply(rd *bufio.Reader) (any, error) {
	line, err := rd.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("redis: empty reply")
	}
	switch body := line[1:]; line[0] {
	case '+':
		return body, nil
	case '-':
		return nil, errors.New("redis: " + body)
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(rd, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		out := make([]any, 0, n)
		for range n {
			v, err := readReply(rd)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("redis: unexpected reply %q", line)
}
