package kafka

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// SASL mechanisms understood by SASLConfig.Mechanism.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

const (
	defaultClientID          = "sagabridge"
	defaultDialTimeout       = 10 * time.Second
	defaultTopicPartitions   = 1
	defaultReplicationFactor = -1 // the broker's default.replication.factor
)

// Connection holds what every client needs to reach the cluster. It is
// embedded in PublisherConfig and SubscriberConfig.
type Connection struct {
	// Brokers are bootstrap addresses, host:port. Required.
	Brokers []string `json:"brokers"`
	// ClientID is sent to the brokers (quotas, broker logs). Default "sagabridge".
	ClientID string `json:"client_id"`
	// TLS configures transport encryption.
	TLS TLSConfig `json:"tls"`
	// SASL configures authentication.
	SASL SASLConfig `json:"sasl"`
	// DialTimeout bounds connecting to a broker. Default 10s.
	DialTimeout time.Duration `json:"dial_timeout"`
}

// TLSConfig configures TLS towards the brokers.
type TLSConfig struct {
	// Enable turns TLS on. With no CAFile the system roots are used.
	Enable bool `json:"enable"`
	// CAFile is a PEM bundle of CAs to trust instead of the system roots.
	CAFile string `json:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and key (mTLS); both or neither.
	CertFile string `json:"cert_file"`
	KeyFile  string `json:"key_file"`
	// InsecureSkipVerify disables server certificate checks. Tests only.
	InsecureSkipVerify bool `json:"insecure_skip_verify"`
}

// SASLConfig configures SASL authentication.
type SASLConfig struct {
	// Mechanism is "" (no SASL), PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism string `json:"mechanism"`
	Username  string `json:"username"`
	// Password, or PasswordFile: a file whose content (trailing newline
	// trimmed) is the password, as mounted from a Kubernetes secret. Exactly
	// one of them when Mechanism is set. The file is read once, when the
	// publisher or subscriber is built.
	Password     Secret `json:"password"`
	PasswordFile string `json:"password_file"`
}

// TopicCreation says whether and how missing topics are created. It is
// embedded in PublisherConfig and SubscriberConfig.
type TopicCreation struct {
	// AutoCreateTopics makes Publish, Subscribe and SubscribeInitialize
	// create a missing topic. Default false: production topics are usually
	// provisioned with their own partition counts and retention, and a typo
	// in a topic name should fail loudly rather than create a new topic.
	AutoCreateTopics bool `json:"auto_create_topics"`
	// TopicPartitions for created topics. Default 1, which keeps the whole
	// topic in order.
	TopicPartitions int `json:"topic_partitions"`
	// TopicReplicationFactor for created topics. Default -1: the broker's
	// default.replication.factor.
	TopicReplicationFactor int `json:"topic_replication_factor"`
}

func (c *Connection) setDefaults() {
	if c.ClientID == "" {
		c.ClientID = defaultClientID
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = defaultDialTimeout
	}
}

func (c *TopicCreation) setDefaults() {
	if c.TopicPartitions == 0 {
		c.TopicPartitions = defaultTopicPartitions
	}
	if c.TopicReplicationFactor == 0 {
		c.TopicReplicationFactor = defaultReplicationFactor
	}
}

// problems collects every configuration problem so that Validate can report
// them all at once (sagabridge validate shows every error, not the first).
type problems []error

func (p *problems) add(format string, args ...any) {
	*p = append(*p, fmt.Errorf(format, args...))
}

func (p problems) join() error { return errors.Join(p...) }

// validate appends the problems of a defaulted Connection.
func (c Connection) validate(p *problems) {
	if len(c.Brokers) == 0 {
		p.add("brokers: at least one broker address is required")
	}
	for i, b := range c.Brokers {
		if _, port, err := net.SplitHostPort(b); err != nil || port == "" {
			p.add("brokers[%d]: %q is not host:port", i, b)
		}
	}
	if c.DialTimeout < 0 {
		p.add("dial_timeout: must not be negative, got %s", c.DialTimeout)
	}
	c.TLS.validate(p)
	c.SASL.validate(p)
}

func (t TLSConfig) validate(p *problems) {
	if !t.Enable {
		for _, f := range []struct{ name, val string }{{"ca_file", t.CAFile}, {"cert_file", t.CertFile}, {"key_file", t.KeyFile}} {
			if f.val != "" {
				p.add("tls.%s: set but tls.enable is false", f.name)
			}
		}
		if t.InsecureSkipVerify {
			p.add("tls.insecure_skip_verify: set but tls.enable is false")
		}
		return
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		p.add("tls: cert_file and key_file must be given together")
	}
	checkFile(p, "tls.ca_file", t.CAFile)
	checkFile(p, "tls.cert_file", t.CertFile)
	checkFile(p, "tls.key_file", t.KeyFile)
}

func (s SASLConfig) validate(p *problems) {
	switch strings.ToUpper(s.Mechanism) {
	case "":
		if s.Username != "" || s.Password != "" || s.PasswordFile != "" {
			p.add("sasl: credentials are set but sasl.mechanism is empty")
		}
		return
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
	default:
		p.add("sasl.mechanism: %q is not one of %s, %s, %s", s.Mechanism, SASLPlain, SASLScramSHA256, SASLScramSHA512)
	}
	if s.Username == "" {
		p.add("sasl.username: required with sasl.mechanism %s", s.Mechanism)
	}
	switch {
	case s.Password == "" && s.PasswordFile == "":
		p.add("sasl: one of password or password_file is required with sasl.mechanism %s", s.Mechanism)
	case s.Password != "" && s.PasswordFile != "":
		p.add("sasl: password and password_file are both set; use one")
	}
	checkFile(p, "sasl.password_file", s.PasswordFile)
}

func (c TopicCreation) validate(p *problems) {
	if c.TopicPartitions < 1 {
		p.add("topic_partitions: must be at least 1, got %d", c.TopicPartitions)
	}
	if c.TopicReplicationFactor < -1 {
		p.add("topic_replication_factor: must be -1 (broker default) or at least 1, got %d", c.TopicReplicationFactor)
	}
}

// checkFile reports a named file that cannot be read, so a missing secret
// mount shows up at validate time, not at the first connection.
func checkFile(p *problems, field, path string) {
	if path == "" {
		return
	}
	st, err := os.Stat(path)
	if err != nil {
		p.add("%s: %w", field, err)
		return
	}
	if st.IsDir() {
		p.add("%s: %s is a directory", field, path)
	}
}

func (c Connection) String() string {
	return fmt.Sprintf("brokers=%v client_id=%q dial_timeout=%s tls=%s sasl=%s",
		c.Brokers, c.ClientID, c.DialTimeout, c.TLS, c.SASL)
}

func (t TLSConfig) String() string {
	return fmt.Sprintf("{enable=%t ca_file=%q cert_file=%q key_file=%q insecure_skip_verify=%t}",
		t.Enable, t.CAFile, t.CertFile, t.KeyFile, t.InsecureSkipVerify)
}

// String never shows the password, only whether one is set.
func (s SASLConfig) String() string {
	pw := ""
	if s.Password != "" {
		pw = redacted
	}
	return fmt.Sprintf("{mechanism=%q username=%q password=%q password_file=%q}",
		s.Mechanism, s.Username, pw, s.PasswordFile)
}

func (c TopicCreation) String() string {
	return fmt.Sprintf("auto_create_topics=%t topic_partitions=%d topic_replication_factor=%d",
		c.AutoCreateTopics, c.TopicPartitions, c.TopicReplicationFactor)
}
