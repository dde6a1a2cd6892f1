package kafka_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sagabridge/sagabridge/topics/kafka"
)

const (
	goodPassword = "correct-horse-battery-staple-7731"
	badPassword  = "wrong-password-never-print-4419"
)

func TestConfigPrintingNeverShowsThePassword(t *testing.T) {
	pc := kafka.PublisherConfig{Connection: kafka.Connection{
		Brokers: []string{"127.0.0.1:9092"},
		SASL:    kafka.SASLConfig{Mechanism: kafka.SASLPlain, Username: "svc", Password: goodPassword},
	}}
	sc := kafka.SubscriberConfig{Connection: pc.Connection, ConsumerGroup: "g"}

	var out []string
	for _, v := range []any{pc, sc, pc.Connection, pc.SASL, pc.SASL.Password, &pc, &sc} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
			out = append(out, fmt.Sprintf(verb, v))
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	out = append(out, pc.String(), sc.String())
	var buf strings.Builder
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("cfg", "pub", pc, "sub", sc, "pw", pc.SASL.Password)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("cfg", "pub", pc, "sasl", pc.SASL, "pw", pc.SASL.Password)
	out = append(out, buf.String())

	all := strings.Join(out, "\n")
	if strings.Contains(all, goodPassword) {
		t.Fatalf("password printed:\n%s", all)
	}
	if !strings.Contains(pc.String(), "[REDACTED]") || !strings.Contains(pc.String(), `username="svc"`) {
		t.Fatalf("String() lost useful content: %s", pc.String())
	}
	if pc.SASL.Password.Reveal() != goodPassword {
		t.Fatal("Reveal does not return the value")
	}
}

// TestSecretsNeverLoggedOverSASLAndTLS runs a publisher and a subscriber
// over TLS with each SASL mechanism (password inline and from a file), then
// with a wrong password, logging everything down to Trace, and checks that
// no log line and no error carries a password.
func TestSecretsNeverLoggedOverSASLAndTLS(t *testing.T) {
	caFile, serverTLS := selfSignedTLS(t)
	brokers := startCluster(t,
		kfake.EnableSASL(),
		kfake.TLS(serverTLS),
		kfake.Superuser(kafka.SASLPlain, "plain-user", goodPassword),
		kfake.Superuser(kafka.SASLScramSHA256, "scram256-user", goodPassword),
		kfake.Superuser(kafka.SASLScramSHA512, "scram512-user", goodPassword),
	)
	pwFile := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pwFile, []byte(goodPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	logs := &kafka.CaptureLogger{}
	var errs []string
	for _, tc := range []struct {
		mechanism, user string
		fromFile        bool
	}{
		{kafka.SASLPlain, "plain-user", false},
		{kafka.SASLScramSHA256, "scram256-user", true},
		{kafka.SASLScramSHA512, "scram512-user", false},
	} {
		t.Run(tc.mechanism, func(t *testing.T) {
			conn := kafka.Connection{
				Brokers: brokers,
				TLS:     kafka.TLSConfig{Enable: true, CAFile: caFile},
				SASL:    kafka.SASLConfig{Mechanism: tc.mechanism, Username: tc.user},
			}
			if tc.fromFile {
				conn.SASL.PasswordFile = pwFile
			} else {
				conn.SASL.Password = goodPassword
			}
			topic := "secrets-" + strings.ToLower(tc.mechanism)
			pcfg := testPublisherConfig(nil)
			pcfg.Connection = conn
			pub := newPublisher(t, pcfg, logs)
			if err := pub.Publish(topic, message.NewMessage("m1", []byte("x"))); err != nil {
				t.Fatalf("publish over TLS+%s: %v", tc.mechanism, err)
			}
			scfg := fastSubscriberConfig(nil, "g-"+topic)
			scfg.Connection = conn
			sub := newSubscriber(t, scfg, logs)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			ch, err := sub.Subscribe(ctx, topic)
			if err != nil {
				t.Fatal(err)
			}
			select {
			case m := <-ch:
				m.Ack()
			case <-ctx.Done():
				t.Fatal("no message over TLS+SASL")
			}

			// Wrong password: must fail, and say nothing about the password.
			bad := pcfg
			bad.SASL.Password, bad.SASL.PasswordFile = badPassword, ""
			bad.WriteTimeout = 2 * time.Second
			badPub := newPublisher(t, bad, logs)
			err = badPub.Publish(topic, message.NewMessage("m2", []byte("x")))
			if err == nil {
				t.Fatal("publish with a wrong password succeeded")
			}
			errs = append(errs, err.Error())
		})
	}

	all := logs.Text() + "\n" + strings.Join(errs, "\n")
	if !strings.Contains(all, "TRACE") {
		t.Fatal("captured no trace logs; the check would prove nothing")
	}
	for _, pw := range []string{goodPassword, badPassword} {
		if strings.Contains(all, pw) {
			t.Fatalf("a password appears in the logs or errors:\n%s", all)
		}
	}
}

// selfSignedTLS writes a CA file for a self-signed 127.0.0.1 certificate and
// returns it with the server-side TLS config.
func selfSignedTLS(t *testing.T) (caFile string, server *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kfake"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return caFile, &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
}

var _ watermill.LoggerAdapter = (*kafka.CaptureLogger)(nil)
