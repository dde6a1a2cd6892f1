package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// Network lets a caller hand over ready kafka-go dial objects instead of
// having them built from Connection's TLS and SASL settings: tests use it to
// reach an in-process broker, deployments to plug in a custom dialer
// (proxies, certificates from a secret store). kafka-go needs two kinds:
// readers dial with a Dialer, writers and admin calls go through a
// Transport. A nil field is built from the config as usual.
type Network struct {
	Dialer    *kafka.Dialer
	Transport *kafka.Transport
}

// network is the resolved pair plus whether we own the transport (and so
// must release its idle connections on Close).
type network struct {
	dialer       *kafka.Dialer
	transport    *kafka.Transport
	ownTransport bool
}

// buildNetwork fills the Network's nil fields from c. It reads the TLS files
// and the password file, so a rotated file needs a new client.
func buildNetwork(c Connection, n Network) (network, error) {
	out := network{dialer: n.Dialer, transport: n.Transport}
	if out.dialer != nil && out.transport != nil {
		return out, nil
	}
	tlsCfg, err := buildTLS(c.TLS)
	if err != nil {
		return network{}, err
	}
	mech, err := buildSASL(c.SASL)
	if err != nil {
		return network{}, err
	}
	if out.dialer == nil {
		out.dialer = &kafka.Dialer{
			ClientID:      c.ClientID,
			Timeout:       c.DialTimeout,
			DualStack:     true,
			TLS:           tlsCfg,
			SASLMechanism: mech,
		}
	}
	if out.transport == nil {
		out.transport = &kafka.Transport{
			ClientID:    c.ClientID,
			DialTimeout: c.DialTimeout,
			TLS:         tlsCfg,
			SASL:        mech,
		}
		out.ownTransport = true
	}
	return out, nil
}

func (n network) close() {
	if n.ownTransport {
		n.transport.CloseIdleConnections()
	}
}

func buildTLS(t TLSConfig) (*tls.Config, error) {
	if !t.Enable {
		return nil, nil
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // opt-in, documented as tests only
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file: no PEM certificate found in %s", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file/key_file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// buildSASL returns nil for no SASL. Errors never contain the password.
func buildSASL(s SASLConfig) (sasl.Mechanism, error) {
	mechanism := strings.ToUpper(s.Mechanism)
	if mechanism == "" {
		return nil, nil
	}
	password := s.Password.Reveal()
	if s.PasswordFile != "" {
		b, err := os.ReadFile(s.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("sasl.password_file: %w", err)
		}
		password = strings.TrimRight(string(b), "\r\n")
	}
	if password == "" {
		return nil, errors.New("sasl: the password is empty")
	}
	switch mechanism {
	case SASLPlain:
		return plain.Mechanism{Username: s.Username, Password: password}, nil
	case SASLScramSHA256, SASLScramSHA512:
		algo := scram.SHA256
		if mechanism == SASLScramSHA512 {
			algo = scram.SHA512
		}
		m, err := scram.Mechanism(algo, s.Username, password)
		if err != nil {
			// xdg-go/scram only fails on SASLprep of the credentials, and
			// its message quotes the password: do not wrap it.
			return nil, fmt.Errorf("sasl: %s: username or password is not valid under SASLprep (RFC 4013)", mechanism)
		}
		return m, nil
	default:
		return nil, fmt.Errorf("sasl.mechanism: %q is not supported", s.Mechanism)
	}
}
