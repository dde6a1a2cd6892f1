package benchmark_test

import (
	"strings"
	"testing"

	"github.com/sagabridge/sagabridge/cmd/sagabridge/internal/benchmark"
)

// A daprd address that cannot be dialled is refused before the run, not
// found out by the engine's connection timing out.
func TestValidateDaprGRPCAddress(t *testing.T) {
	for _, tc := range []struct {
		addr, err string
	}{
		{addr: ""},
		{addr: "127.0.0.1:50001"},
		{addr: "localhost:3500"},
		{addr: "[::1]:50001"},
		{addr: "127.0.0.1", err: "is not host:port"},
		{addr: ":50001", err: "has no host"},
		{addr: "127.0.0.1:grpc", err: `port "grpc" is not a number`},
		{addr: "127.0.0.1:0", err: `port "0" is not a number`},
		{addr: "127.0.0.1:65536", err: `port "65536" is not a number`},
	} {
		err := benchmark.Options{Sagas: 1, DaprGRPC: tc.addr}.Validate()
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v, want it accepted", tc.addr, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: %v, want an error containing %q", tc.addr, err, tc.err)
		}
	}
}
