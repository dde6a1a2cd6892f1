package natsjs

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// ServerConfig configures an in-process nats-server with JetStream.
type ServerConfig struct {
	// Host defaults to 127.0.0.1: the embedded server is for this machine.
	Host string
	// Port 0 picks a free port (see Server.ClientURL); -1 is the same.
	Port int
	// StoreDir keeps JetStream data; required so a restart keeps messages.
	StoreDir string
}

func (c *ServerConfig) setDefaults() {
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	if c.Port == 0 {
		c.Port = server.RANDOM_PORT
	}
}

// Validate reports every problem at once.
func (c ServerConfig) Validate() error {
	var errs []error
	if c.StoreDir == "" {
		errs = append(errs, errors.New("embedded nats: storeDir is required"))
	}
	if c.Port < -1 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("embedded nats: port %d out of range", c.Port))
	}
	return errors.Join(errs...)
}

// Server is a running embedded nats-server.
type Server struct {
	ns *server.Server
}

// StartServer starts nats-server with JetStream in this process and waits
// until it accepts connections.
func StartServer(cfg ServerConfig) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.StoreDir, 0o750); err != nil {
		return nil, fmt.Errorf("embedded nats: create store dir: %w", err)
	}
	ns, err := server.NewServer(&server.Options{
		Host:      cfg.Host,
		Port:      cfg.Port,
		JetStream: true,
		StoreDir:  cfg.StoreDir,
		NoSigs:    true,
		NoLog:     true,
		// Saga commands and outcomes are small; 8 MiB leaves room for the
		// bridge's own 1 MiB payload limit plus headers.
		MaxPayload: 8 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("embedded nats: not ready after 10s")
	}
	return &Server{ns: ns}, nil
}

// ClientURL is the nats:// URL clients connect to.
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// InProcess is a client option that connects to this server through an
// in-memory pipe instead of TCP. A client in the same process as the server
// (the bridge with broker kind embedded, `sagabridge dev`, the benchmark)
// then makes no system calls per message: on 2 cores that was a third of
// what the broker added to each saga. The server still listens on its
// port for clients in other processes.
func (s *Server) InProcess() nats.Option { return nats.InProcessServer(s.ns) }

// Shutdown stops the server and waits for it to finish.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}
