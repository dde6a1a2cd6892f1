// Package config reads bridge.yaml: broker, engine, routes, outcomes, the
// dead-letter topic and the admin listener. Unknown keys are errors, and
// every problem is reported with its file:line.
package config

//go:generate go run ../../internal/confspec/gen -root ../..

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sagabridge/sagabridge/internal/confspec"
)

// Config is the whole file, bridge.yaml.
type Config struct {
	Broker  Broker  `yaml:"broker"`
	Engine  Engine  `yaml:"engine"`
	Routing Routing `yaml:"routing"`
	// Routes map events to actions on the engine: each names the topics it
	// consumes, a CEL match, and one action.
	Routes   []Route  `yaml:"routes"`
	Outcomes Outcomes `yaml:"outcomes"`
	DLQ      DLQ      `yaml:"dlq"`
	Admin    Admin    `yaml:"admin"`
	Metrics  Metrics  `yaml:"metrics"`
	Limits   Limits   `yaml:"limits"`
	// Access, when present, lists which routes may act on which
	// workflows; nil (no block) lets every route act on every workflow.
	Access *Access `yaml:"access"`
	// Sagas are files (globs, relative to this file) of declarative saga
	// definitions. Each saga runs as a workflow of its own name, beside
	// the Go sagas; a route starts it by that name.
	Sagas []string `yaml:"sagas"`
	// Migration runs workflows beside a legacy choreography: shadow,
	// canary or active per workflow.
	Migration Migration `yaml:"migration"`

	// file and root locate errors; not part of the YAML.
	file string
	root *yaml.Node
}

// Broker is where events come from and outcomes go.
type Broker struct {
	// Kind is "nats" (a NATS server with JetStream), "embedded" (an
	// in-process nats-server) or "kafka". Only the block of this kind
	// (nats, embedded or kafka) may be set.
	Kind string `yaml:"kind" enum:"nats,embedded,kafka"`
	// ConsumerGroup is shared by every replica of this bridge: each event
	// is handled by one of them. On NATS it names the durable consumers,
	// on Kafka the consumer group (one per topic, suffixed with it).
	ConsumerGroup string `yaml:"consumerGroup"`
	// Concurrency is how many messages of one topic are handled at once.
	Concurrency int `yaml:"concurrency"`
	// AckWait is how long the broker waits for an ack before it hands the
	// message to another consumer. It bounds how long the events a crashed
	// worker held wait, and each handler is cancelled well before it.
	AckWait time.Duration `yaml:"ackWait"`
	// MaxBacklog bounds, per topic, the events held waiting for their
	// instance (behind one of its events being handled, or parked). They
	// take none of the concurrency, so a busy instance holds up only
	// itself until this many wait.
	MaxBacklog int `yaml:"maxBacklog"`
	// NATS is the NATS server, for kind nats.
	NATS NATS `yaml:"nats"`
	// Kafka is the Kafka cluster, for kind kafka.
	Kafka Kafka `yaml:"kafka"`
	// Embedded is the in-process nats-server, for kind embedded.
	Embedded Embedded `yaml:"embedded"`
}

// Kafka connects to a Kafka cluster. Secrets come from files or from
// environment variables named here.
type Kafka struct {
	// Brokers are the bootstrap addresses, host:port each (no scheme).
	Brokers []string `yaml:"brokers"`
	// ClientID names this client in the brokers' logs and quotas.
	ClientID string    `yaml:"clientId"`
	TLS      KafkaTLS  `yaml:"tls"`
	SASL     KafkaSASL `yaml:"sasl"`
	// AutoCreateTopics creates missing topics (off: production topics are
	// provisioned with their own partitions and retention; on in dev).
	AutoCreateTopics bool `yaml:"autoCreateTopics"`
	// TopicPartitions is the partition count of the topics the bridge
	// creates when autoCreateTopics is on (0: the broker's default).
	TopicPartitions int `yaml:"topicPartitions"`
	// SessionTimeout is how long the group waits for a silent member (a
	// crashed replica) before its partitions move: the redelivery delay
	// after a crash. Heartbeats go every tenth of it.
	SessionTimeout time.Duration `yaml:"sessionTimeout"`
}

// KafkaTLS configures TLS towards the brokers.
type KafkaTLS struct {
	// Enable turns TLS on; with no caFile the system's roots verify the
	// brokers' certificates.
	Enable bool `yaml:"enable"`
	// CAFile is a PEM file of the certificates that sign the brokers'.
	CAFile string `yaml:"caFile"`
	// CertFile and keyFile are a PEM client certificate and its key, for
	// brokers that require mutual TLS.
	CertFile string `yaml:"certFile"`
	// KeyFile is the private key of certFile (PEM).
	KeyFile string `yaml:"keyFile"`
	// InsecureSkipVerify turns off the check of the brokers' certificates:
	// for test clusters with self-signed certificates only. The worker
	// logs a warning at start.
	InsecureSkipVerify bool `yaml:"insecureSkipVerify"`
}

// KafkaSASL configures SASL authentication.
type KafkaSASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty means no
	// SASL.
	Mechanism string `yaml:"mechanism" enum:",PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"`
	// Username is the SASL user.
	Username string `yaml:"username"`
	// PasswordFile holds the password (trailing newline trimmed).
	PasswordFile string `yaml:"passwordFile"`
	// PasswordEnv names an environment variable holding the password,
	// instead of passwordFile.
	PasswordEnv string `yaml:"passwordEnv"`
}

// NATS connects to a NATS server. Secrets come from files or from
// environment variables named here (*Env), never from the YAML itself.
type NATS struct {
	// URL is the server, or several separated by commas: nats://, tls://,
	// ws:// or wss://, without a password (use user with passwordFile).
	URL string `yaml:"url"`
	// CredsFile is a NATS credentials file (JWT and NKey seed).
	CredsFile string `yaml:"credsFile"`
	// User is the user name for password authentication.
	User string `yaml:"user"`
	// PasswordFile holds user's password.
	PasswordFile string `yaml:"passwordFile"`
	// PasswordEnv names an environment variable holding user's password,
	// instead of passwordFile.
	PasswordEnv string `yaml:"passwordEnv"`
	// TokenFile holds an authentication token.
	TokenFile string `yaml:"tokenFile"`
	// TokenEnv names an environment variable holding the token, instead
	// of tokenFile.
	TokenEnv string `yaml:"tokenEnv"`
	// NKeySeedFile holds an NKey seed to authenticate with.
	NKeySeedFile string `yaml:"nkeySeedFile"`
	// TLSCAFile is a PEM file of the certificates that sign the server's.
	TLSCAFile string `yaml:"tlsCAFile"`
	// TLSCertFile is a PEM client certificate, for mutual TLS.
	TLSCertFile string `yaml:"tlsCertFile"`
	// TLSKeyFile is the private key of tlsCertFile (PEM).
	TLSKeyFile string `yaml:"tlsKeyFile"`
	// ConnectionTag names the connection in the server's monitoring.
	ConnectionTag string `yaml:"name"`
}

// Embedded runs nats-server with JetStream in the bridge process.
type Embedded struct {
	// DataDir holds the JetStream store.
	DataDir string `yaml:"dataDir"`
	// Port 0 picks a free one; 4222 lets local tools connect.
	Port int `yaml:"port"`
}

// Engine selects the workflow engine.
type Engine struct {
	// Kind is "embedded" (a durabletask hub in the process, on SQLite) or
	// "dapr" (a daprd sidecar).
	Kind     string         `yaml:"kind" enum:"embedded,dapr"`
	Embedded EngineEmbedded `yaml:"embedded"`
	Dapr     EngineDapr     `yaml:"dapr"`
	// Retention is how long a finished saga is kept by the engine after
	// its outcome was published, per outcome; then it is purged.
	Retention Retention `yaml:"retention"`
}

// Retention periods, per saga outcome. Unset takes the default; 0s keeps
// such instances forever.
type Retention struct {
	// Completed is how long a completed saga is kept.
	Completed *time.Duration `yaml:"completed"`
	// Compensated is how long a compensated saga is kept; it also covers
	// terminated instances.
	Compensated *time.Duration `yaml:"compensated"`
	// Failed is how long a failed saga (a compensation did not finish, or
	// the outcome could not be published) is kept.
	Failed *time.Duration `yaml:"failed"`
}

// Default retention periods: a completed saga is rarely looked at again;
// a compensated one may be asked about for a week; a failed one needs a
// person and stays a month.
const (
	DefaultRetentionCompleted   = 72 * time.Hour
	DefaultRetentionCompensated = 7 * 24 * time.Hour
	DefaultRetentionFailed      = 30 * 24 * time.Hour
)

// EngineEmbedded configures the in-process durabletask hub.
type EngineEmbedded struct {
	// DBPath is the SQLite database file; its directory is created.
	DBPath string `yaml:"dbPath"`
	// Parallelism is how many workflow and how many activity work items
	// run at once (0: the engine's default, 64).
	Parallelism int `yaml:"parallelism"`
	// Synchronous is SQLite's synchronous setting in WAL mode: "normal"
	// (empty means normal: a process crash loses nothing, a power cut can
	// lose the last commits) or "full" (survives a power cut; group commit
	// makes it one fsync per batch of writes).
	Synchronous string `yaml:"synchronous" enum:",normal,full"`
}

// EngineDapr points at a daprd sidecar.
type EngineDapr struct {
	// GRPCEndpoint is daprd's gRPC API, host:port; empty means
	// $DAPR_GRPC_ENDPOINT, then 127.0.0.1:$DAPR_GRPC_PORT (set by Dapr's
	// sidecar injector), then 127.0.0.1:50001.
	GRPCEndpoint string `yaml:"grpcEndpoint"`
	// APITokenFile holds the token daprd requires (dapr.io/api-token-secret);
	// empty means $DAPR_API_TOKEN.
	APITokenFile string `yaml:"apiTokenFile"`
	// RetentionDir holds the worker's record of the finished sagas it
	// must purge later (daprd cannot list them).
	RetentionDir string `yaml:"retentionDir"`
}

// Routing holds settings that apply to every route.
type Routing struct {
	// Mode is "all" (every matching route fires, in file order) or
	// "first" (only the first matching route fires).
	Mode string `yaml:"mode" enum:"all,first"`
}

// Outcomes configures where saga outcomes and progress events go.
type Outcomes struct {
	// Topic receives the outcome event (completed, compensated, failed)
	// of every saga that names no outcomeTopic of its own.
	Topic string `yaml:"topic"`
	// ProgressTopic receives the progress events of every saga that names
	// no progressTopic of its own.
	ProgressTopic string `yaml:"progressTopic"`
}

// DLQ configures the dead-letter topic.
type DLQ struct {
	// Topic receives the events the bridge cannot handle, with the
	// reason; `sagabridge dlq` reads, replays and purges it.
	Topic string `yaml:"topic"`
}

// Admin configures the admin HTTP listener (metrics, health, workflow API).
type Admin struct {
	// Listen defaults to 127.0.0.1:9464. Off loopback a token is required.
	Listen string `yaml:"listen"`
	// TokenFile holds the bearer token; default $SAGABRIDGE_ADMIN_TOKEN_FILE,
	// then $SAGABRIDGE_ADMIN_TOKEN.
	TokenFile string `yaml:"tokenFile"`
	// Hosts are names the admin server answers to in the Host header
	// besides the loopback ones (a service name behind a proxy, say).
	Hosts []string `yaml:"hosts"`
}

// Metrics configures a listener of its own for /healthz, /readyz and
// /metrics, apart from the admin API: probes and Prometheus reach it on
// the pod's address with no token (daprd serves its metrics port the same
// way), while the admin API keeps its token.
type Metrics struct {
	// Listen is host:port; empty serves these endpoints on the admin
	// listener only (behind its token, when it has one).
	Listen string `yaml:"listen"`
	// TokenFile, when set, holds a bearer token /metrics then requires on
	// this listener; /healthz and /readyz stay open to probes.
	TokenFile string `yaml:"tokenFile"`
}

// Limits protect the bridge from one bad producer.
type Limits struct {
	// MaxPayloadBytes is the largest event the bridge handles; a larger
	// one is dead-lettered (kind too-large).
	MaxPayloadBytes int `yaml:"maxPayloadBytes"`
	// MaxInputBytes is the largest workflow input a start hands the engine,
	// and the largest payload a raise does; a larger one is dead-lettered
	// (kind too-large). A saga copies its input into its history at every
	// step and keeps every event it receives, and the engines hand that
	// history to the worker in one message of at most 4 MiB (daprd's
	// --max-body-size). The default, 128 KiB, lets the example OrderSaga
	// use every attempt of its steps and compensations (20 copies of its
	// input) within the saga runtime's 3 MiB history budget
	// (docs/failure-modes.md).
	MaxInputBytes int `yaml:"maxInputBytes"`
	// MaxInstanceIDLen is the longest workflow instance ID a route may
	// compute; a longer one dead-letters the event.
	MaxInstanceIDLen int `yaml:"maxInstanceIdLength"`
	// MaxEvalCost bounds the CEL work routing one event may do, in cel-go's
	// cost units (about one per operation, a list's length for `in`); an
	// event that needs more is dead-lettered (route-eval).
	MaxEvalCost uint64 `yaml:"maxEvalCost"`
	// EvalTimeout bounds routing one event in time, whatever its cost.
	EvalTimeout time.Duration `yaml:"evalTimeout"`
}

// Access is the route-level allow-list, in the spirit of Dapr's
// WorkflowAccessPolicy: per workflow, which routes (and topics) may start,
// raise on, terminate, suspend, resume or purge its instances. Once the
// block exists, everything it does not grant is denied.
type Access struct {
	// Default is what workflows the block does not list get: "deny" or
	// "allow".
	Default string `yaml:"default" enum:"deny,allow"`
	// Workflows grants operations per workflow name.
	Workflows map[string]WorkflowAccess `yaml:"workflows"`
}

// WorkflowAccess grants each operation on one workflow; an absent
// operation is denied to every route.
type WorkflowAccess struct {
	// Start: who may start instances.
	Start *Grant `yaml:"start"`
	// Raise: who may raise events on instances.
	Raise *Grant `yaml:"raise"`
	// Terminate: who may terminate instances.
	Terminate *Grant `yaml:"terminate"`
	// Suspend: who may suspend instances.
	Suspend *Grant `yaml:"suspend"`
	// Resume: who may resume instances.
	Resume *Grant `yaml:"resume"`
	// Purge: who may purge finished instances.
	Purge *Grant `yaml:"purge"`
}

// Grant names who may perform an operation: a route listed in Routes (any
// route when empty) consuming a topic listed in Topics (any topic when
// empty). At least one of the two is required.
type Grant struct {
	// Routes are route names.
	Routes []string `yaml:"routes"`
	// Topics are topics a route consumes.
	Topics []string `yaml:"topics"`
}

// Operations are the access operations, as the access block spells them;
// startOrRaise needs both start and raise.
var Operations = []string{ActionStart, ActionRaise, ActionTerminate, ActionSuspend, ActionResume, ActionPurge}

// Grant returns the grant of an operation, nil when none.
func (w WorkflowAccess) Grant(op string) *Grant {
	switch op {
	case ActionStart:
		return w.Start
	case ActionRaise:
		return w.Raise
	case ActionTerminate:
		return w.Terminate
	case ActionSuspend:
		return w.Suspend
	case ActionResume:
		return w.Resume
	case ActionPurge:
		return w.Purge
	}
	return nil
}

// Route maps events to one action on the engine.
type Route struct {
	// Name identifies the route in metrics, logs, dead letters and the
	// access block; unique in the file.
	Name string `yaml:"name" required:"true"`
	// Topics are the topics the route consumes.
	Topics []string `yaml:"topics" required:"true"`
	// Match is a CEL expression over event and headers; empty matches all.
	Match string `yaml:"match"`
	// Plain reads events that are not CloudEvents.
	Plain *Plain `yaml:"plain"`

	// Start starts a workflow instance (one action per route).
	Start *Start `yaml:"start"`
	// Raise raises an external event on an instance.
	Raise *Raise `yaml:"raise"`
	// StartOrRaise starts the instance if it does not exist, then raises
	// the event on it.
	StartOrRaise *StartOr `yaml:"startOrRaise"`
	// Terminate terminates an instance.
	Terminate *Control `yaml:"terminate"`
	// Suspend suspends an instance.
	Suspend *Control `yaml:"suspend"`
	// Resume resumes a suspended instance.
	Resume *Control `yaml:"resume"`
	// Purge deletes a finished instance's state.
	Purge *Control `yaml:"purge"`

	// ParkWindow is how long a raise on an instance that does not exist
	// yet keeps being retried before the event is dead-lettered.
	ParkWindow time.Duration `yaml:"parkWindow"`
	// OnFinished is what a raise on a finished instance does: "drop"
	// (counted) or "deadletter".
	OnFinished string `yaml:"onFinished" enum:"drop,deadletter"`
	// Concurrency caps this route's actions running at once (0: no cap
	// beyond broker.concurrency).
	Concurrency int `yaml:"concurrency"`
}

// Plain names the payload fields that stand in for CloudEvent attributes.
type Plain struct {
	// TypeField is the payload field that holds the event type.
	TypeField string `yaml:"typeField"`
	// IDField is the payload field that holds the event id.
	IDField string `yaml:"idField"`
	// Type is used when the payload has no type field at all.
	Type string `yaml:"type"`
}

// Start starts a workflow instance.
type Start struct {
	// Workflow is a registered Go workflow or a declarative saga, by name:
	// the workflow (saga) to start.
	Workflow string `yaml:"workflow"`
	// Version pins a declarative saga's version; 0 (default) starts the
	// latest loaded.
	Version int `yaml:"version"`
	// InstanceID is CEL computing the instance ID, the key that makes a
	// repeated start start nothing.
	InstanceID string `yaml:"instanceId"`
	// Input is CEL; empty means event.data, passed through byte for byte.
	Input string `yaml:"input"`
}

// Raise raises an external event on an instance.
type Raise struct {
	// InstanceID is CEL computing the instance to raise the event on.
	InstanceID string `yaml:"instanceId"`
	// EventName is CEL; a plain word (no quotes, operators or dots) is
	// taken literally.
	EventName string `yaml:"eventName"`
	// Payload is CEL; empty means event.data.
	Payload string `yaml:"payload"`
}

// StartOr starts the instance if it does not exist, then raises the event.
type StartOr struct {
	// Workflow is the workflow to start when the instance does not exist:
	// a registered Go workflow or a declarative saga, by name.
	Workflow string `yaml:"workflow"`
	// Version pins a declarative saga's version; 0 (default) starts the
	// latest loaded.
	Version int `yaml:"version"`
	// InstanceID is CEL computing the instance ID.
	InstanceID string `yaml:"instanceId"`
	// Input is CEL for the start's input; empty means event.data.
	Input string `yaml:"input"`
	// EventName is CEL for the event's name; a plain word is taken
	// literally.
	EventName string `yaml:"eventName"`
	// Payload is CEL for the event's payload; empty means event.data.
	Payload string `yaml:"payload"`
}

// Control terminates, suspends, resumes or purges an instance.
type Control struct {
	// InstanceID is CEL computing the instance to act on.
	InstanceID string `yaml:"instanceId"`
	// Reason is CEL for the reason recorded with the operation.
	Reason string `yaml:"reason"`
}

// Action names, as routes and metrics spell them.
const (
	ActionStart        = "start"
	ActionRaise        = "raise"
	ActionStartOrRaise = "startOrRaise"
	ActionTerminate    = "terminate"
	ActionSuspend      = "suspend"
	ActionResume       = "resume"
	ActionPurge        = "purge"
)

// Action returns the route's action name, or "" when it has none; Validate
// reports routes with zero or several.
func (r Route) Action() string {
	acts := r.actions()
	if len(acts) != 1 {
		return ""
	}
	return acts[0]
}

func (r Route) actions() []string {
	var out []string
	add := func(set bool, name string) {
		if set {
			out = append(out, name)
		}
	}
	add(r.Start != nil, ActionStart)
	add(r.Raise != nil, ActionRaise)
	add(r.StartOrRaise != nil, ActionStartOrRaise)
	add(r.Terminate != nil, ActionTerminate)
	add(r.Suspend != nil, ActionSuspend)
	add(r.Resume != nil, ActionResume)
	add(r.Purge != nil, ActionPurge)
	return out
}

// Load reads and decodes a file; see Parse.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, b)
}

// Parse decodes YAML, applies defaults and validates the structure. name
// is used in error positions. Values may refer to environment variables
// as ${NAME} or ${NAME:-default} ($$ is a literal $); an unset one
// without a default is an error that names it. Routes are checked again,
// with CEL, by the route package.
//
// When the YAML itself parses, the returned config is non-nil even with an
// error (unknown keys, invalid values), so `sagabridge validate` can go on
// and report the routes' problems too. Anything else must stop on error.
func Parse(name string, b []byte) (*Config, error) {
	return parse(name, b, os.LookupEnv)
}

func parse(name string, b []byte, lookup func(string) (string, bool)) (*Config, error) {
	cfg := &Config{file: name}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, confspec.SyntaxError(name, b, err)
	}
	cfg.root = &root
	used := map[string]string{}
	refs, errs := confspec.Interpolate(name, &root, func(k string) (string, bool) {
		v, ok := lookup(k)
		if ok {
			used[k] = v
		}
		return v, ok
	})
	errs = append(errs, dropRemovedKeys(name, &root)...)
	errs = append(errs, confspec.CheckKeys(name, &root, reflect.TypeFor[Config]())...)
	if len(root.Content) > 0 {
		if err := root.Decode(cfg); err != nil {
			errs = append(errs, positioned(name, err, refs))
		}
	}
	cfg.setDefaults()
	return cfg, hideValues(errors.Join(append(errs, cfg.Validate())...), used)
}

// removedKeys are keys the file took once and takes no more, with what
// to do instead: a bare "unknown key" would leave the reader guessing
// whether the setting moved or went away.
var removedKeys = []struct {
	path []string
	why  string
}{
	{[]string{"engine", "embedded", "idlePoll"}, "the embedded engine wakes its workers when work is written and fires timers on time, so there is nothing to poll: delete the line"},
}

// dropRemovedKeys reports each removed key the file sets and takes it out
// of the tree, so that it is not reported again as unknown.
func dropRemovedKeys(name string, root *yaml.Node) []error {
	if len(root.Content) == 0 {
		return nil
	}
	var errs []error
	for _, rk := range removedKeys {
		n := root.Content[0]
		for i, k := range rk.path {
			if n.Kind != yaml.MappingNode {
				break
			}
			j := mappingKey(n, k)
			if j < 0 {
				break
			}
			if i < len(rk.path)-1 {
				n = n.Content[j+1]
				continue
			}
			errs = append(errs, fmt.Errorf("%s:%d: %s is no longer a setting: %s", name, n.Content[j].Line, strings.Join(rk.path, "."), rk.why))
			n.Content = slices.Delete(n.Content, j, j+2)
		}
	}
	return errs
}

// mappingKey is the index of key k in mapping n's content, -1 when absent.
func mappingKey(n *yaml.Node, k string) int {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == k {
			return i
		}
	}
	return -1
}

// hideValues writes ${NAME} where an error would print the value of a
// variable the file referred to: a message quoting a bad value must not
// print a secret that was put in the wrong key.
func hideValues(err error, vars map[string]string) error {
	if err == nil || len(vars) == 0 {
		return err
	}
	names := make([]string, 0, len(vars))
	for n, v := range vars {
		if len(v) >= 3 {
			names = append(names, n)
		}
	}
	// Longest values first, so a value inside another is not cut in two.
	sort.Slice(names, func(i, j int) bool { return len(vars[names[i]]) > len(vars[names[j]]) })
	msg := err.Error()
	for _, n := range names {
		msg = strings.ReplaceAll(msg, vars[n], "${"+n+"}")
	}
	if msg == err.Error() {
		return err
	}
	return errors.New(msg)
}

// positioned rewrites yaml.v3's "line N: msg" into "file:N: msg". On a
// line whose value came from variables (refs), the value yaml.v3 quotes
// is replaced by their names.
func positioned(name string, err error, refs map[int][]string) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		errs := make([]error, 0, len(te.Errors))
		for _, e := range te.Errors {
			if rest, ok := strings.CutPrefix(e, "line "); ok {
				if n, msg, ok := strings.Cut(rest, ": "); ok {
					if line, _ := strconv.Atoi(n); len(refs[line]) > 0 {
						msg = quoted.ReplaceAllLiteralString(msg, "the value of ${"+strings.Join(refs[line], "}, ${")+"}")
					}
					errs = append(errs, fmt.Errorf("%s:%s: %s", name, n, msg))
					continue
				}
			}
			errs = append(errs, fmt.Errorf("%s: %s", name, e))
		}
		return errors.Join(errs...)
	}
	return fmt.Errorf("%s: %w", name, err)
}

func (c *Config) setDefaults() {
	b := &c.Broker
	orDefault(&b.Kind, "embedded")
	orDefault(&b.ConsumerGroup, "sagabridge")
	orDefault(&b.Concurrency, 16)
	orDefault(&b.AckWait, 10*time.Second)
	orDefault(&b.MaxBacklog, 4096)
	orDefault(&b.Kafka.SessionTimeout, 10*time.Second)
	orDefault(&b.NATS.URL, "nats://127.0.0.1:4222")
	orDefault(&b.Embedded.DataDir, "data/nats")
	c.Engine.setDefaults()
	orDefault(&c.Routing.Mode, "all")
	orDefault(&c.Outcomes.Topic, "sagabridge.outcomes")
	orDefault(&c.Outcomes.ProgressTopic, "sagabridge.progress")
	orDefault(&c.DLQ.Topic, "sagabridge.dlq")
	orDefault(&c.Admin.Listen, "127.0.0.1:9464")
	l := &c.Limits
	orDefault(&l.MaxPayloadBytes, 1<<20)
	orDefault(&l.MaxInputBytes, 128<<10)
	orDefault(&l.MaxEvalCost, 1_000_000)
	orDefault(&l.EvalTimeout, time.Second)
	orDefault(&l.MaxInstanceIDLen, 256)
	if c.Access != nil {
		orDefault(&c.Access.Default, "deny")
	}
	c.Migration.setDefaults()
	for i := range c.Routes {
		orDefault(&c.Routes[i].ParkWindow, 5*time.Minute)
		orDefault(&c.Routes[i].OnFinished, "deadletter")
	}
}

func (e *Engine) setDefaults() {
	orDefault(&e.Kind, "embedded")
	orDefault(&e.Embedded.DBPath, "data/workflows.db")
	orDefault(&e.Dapr.RetentionDir, "data/retention")
	for _, r := range []struct {
		p   **time.Duration
		def time.Duration
	}{
		{&e.Retention.Completed, DefaultRetentionCompleted},
		{&e.Retention.Compensated, DefaultRetentionCompensated},
		{&e.Retention.Failed, DefaultRetentionFailed},
	} {
		if *r.p == nil {
			d := r.def
			*r.p = &d
		}
	}
}

// orDefault sets *p to def when it holds its type's zero value: the file
// left the key out.
func orDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// Normalize applies defaults and validates again, for a config assembled
// in code (a dev wiring that adds routes).
func (c *Config) Normalize() error {
	c.setDefaults()
	return c.Validate()
}

// Validate checks everything that needs no CEL; every problem is reported.
// It is the one place the file's values are checked: the engine and the
// broker adapters take what it passes as given.
func (c *Config) Validate() error {
	var errs []error
	bad := func(path []any, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", c.Pos(path...), fmt.Sprintf(format, args...)))
	}
	c.validateBroker(bad)
	errs = append(errs, c.validateBrokerBlocks()...)
	c.validateEngine(bad)
	switch c.Routing.Mode {
	case "all", "first":
	default:
		bad([]any{"routing", "mode"}, "routing mode %q is not all or first", c.Routing.Mode)
	}
	c.validateLimits(bad)
	names := map[string]int{}
	for i, r := range c.Routes {
		c.validateRoute(i, r, names, bad)
	}
	errs = append(errs, c.validateSecrets()...)
	errs = append(errs, c.validateAccess(names)...)
	c.validateMigration(bad)
	return errors.Join(errs...)
}

// badFunc reports a problem at a path of the file.
type badFunc = func(path []any, format string, args ...any)

func (c *Config) validateBroker(bad badFunc) {
	switch c.Broker.Kind {
	case "nats", "embedded", "kafka":
	default:
		bad([]any{"broker", "kind"}, "broker kind %q is not nats, embedded or kafka", c.Broker.Kind)
	}
	if c.Broker.Kind == "kafka" && len(c.Broker.Kafka.Brokers) == 0 {
		bad([]any{"broker", "kafka"}, "broker kind kafka needs kafka.brokers")
	}
	if c.Broker.Concurrency < 1 {
		bad([]any{"broker", "concurrency"}, "concurrency %d must be at least 1", c.Broker.Concurrency)
	}
	if c.Broker.Kind != "kafka" && strings.ContainsAny(c.Broker.ConsumerGroup, ". *>") {
		// It names JetStream durable consumers, whose names cannot hold these.
		bad([]any{"broker", "consumerGroup"}, "consumerGroup %q may not contain '.', ' ', '*' or '>' on NATS", c.Broker.ConsumerGroup)
	}
	if c.Broker.AckWait < time.Second {
		bad([]any{"broker", "ackWait"}, "ackWait %s is below 1s", c.Broker.AckWait)
	}
	if c.Broker.MaxBacklog < 1 {
		bad([]any{"broker", "maxBacklog"}, "maxBacklog %d must be at least 1", c.Broker.MaxBacklog)
	}
}

func (c *Config) validateEngine(bad badFunc) {
	switch c.Engine.Kind {
	case "embedded", "dapr":
	default:
		bad([]any{"engine", "kind"}, "engine kind %q is not embedded or dapr", c.Engine.Kind)
	}
	switch c.Engine.Embedded.Synchronous {
	case "", "normal", "full":
	default:
		bad([]any{"engine", "embedded", "synchronous"}, "synchronous %q is not normal or full", c.Engine.Embedded.Synchronous)
	}
	if c.Engine.Embedded.Parallelism < 0 {
		bad([]any{"engine", "embedded", "parallelism"}, "parallelism %d is negative (0 takes the engine's default)", c.Engine.Embedded.Parallelism)
	}
	for _, r := range []struct {
		name string
		d    *time.Duration
	}{{"completed", c.Engine.Retention.Completed}, {"compensated", c.Engine.Retention.Compensated}, {"failed", c.Engine.Retention.Failed}} {
		if r.d != nil && *r.d < 0 {
			bad([]any{"engine", "retention", r.name}, "engine retention %s %s is negative", r.name, *r.d)
		}
	}
}

func (c *Config) validateLimits(bad badFunc) {
	if c.Limits.MaxPayloadBytes < 1 {
		bad([]any{"limits", "maxPayloadBytes"}, "must be positive")
	}
	if c.Limits.MaxInputBytes < 1 {
		bad([]any{"limits", "maxInputBytes"}, "must be positive")
	}
	if c.Limits.EvalTimeout < 0 {
		bad([]any{"limits", "evalTimeout"}, "must not be negative")
	}
}

// validateRoute checks route i and records its name in names (name to
// index), for the duplicates and the access block.
func (c *Config) validateRoute(i int, r Route, names map[string]int, bad badFunc) {
	at := func(k ...any) []any { return append([]any{"routes", i}, k...) }
	if r.Name == "" {
		bad(at(), "route %d has no name", i+1)
	} else if j, dup := names[r.Name]; dup {
		bad(at("name"), "route name %q is also used by route %d", r.Name, j+1)
	} else {
		names[r.Name] = i
	}
	if len(r.Topics) == 0 {
		bad(at(), "route %q lists no topics", r.Name)
	}
	for k, t := range r.Topics {
		if t == "" || strings.ContainsAny(t, " *>") {
			bad(at("topics", k), "route %q: topic %q is not a valid topic name", r.Name, t)
		}
	}
	switch acts := r.actions(); len(acts) {
	case 0:
		bad(at(), "route %q has no action (start, raise, startOrRaise, terminate, suspend, resume or purge)", r.Name)
	case 1:
	default:
		bad(at(), "route %q has %d actions (%s); a route has exactly one", r.Name, len(acts), strings.Join(acts, ", "))
	}
	if r.Start != nil && r.Start.Workflow == "" {
		bad(at("start"), "route %q: start needs a workflow", r.Name)
	}
	if r.StartOrRaise != nil && (r.StartOrRaise.Workflow == "" || r.StartOrRaise.EventName == "") {
		bad(at("startOrRaise"), "route %q: startOrRaise needs a workflow and an eventName", r.Name)
	}
	if r.Raise != nil && r.Raise.EventName == "" {
		bad(at("raise"), "route %q: raise needs an eventName", r.Name)
	}
	switch r.OnFinished {
	case "drop", "deadletter":
	default:
		bad(at("onFinished"), "route %q: onFinished %q is not drop or deadletter", r.Name, r.OnFinished)
	}
	if r.Concurrency < 0 {
		bad(at("concurrency"), "route %q: concurrency must not be negative", r.Name)
	}
	if r.ParkWindow < 0 {
		bad(at("parkWindow"), "route %q: parkWindow must not be negative", r.Name)
	}
	if r.Plain != nil && r.Plain.TypeField == "" && r.Plain.Type == "" {
		bad(at("plain"), "route %q: plain needs typeField or type", r.Name)
	}
}

// validateBrokerBlocks refuses a block of another broker kind (it would
// be ignored: a kafka block under kind nats once fell back to a default
// NATS URL in silence) and addresses the broker cannot use.
func (c *Config) validateBrokerBlocks() []error {
	var errs []error
	// The file's own kind: code (dev, tests) may point a parsed file at
	// another broker, and the file's blocks are then not in question.
	fileKind := "embedded"
	if n := c.node("broker", "kind"); n != nil {
		fileKind = n.Value
	}
	for _, block := range []string{"nats", "kafka", "embedded"} {
		if block != fileKind && c.node("broker", block) != nil {
			errs = append(errs, fmt.Errorf("%s: broker.%s is set but broker.kind is %q: it would be ignored; remove it, or set kind: %s",
				c.Pos("broker", block), block, fileKind, block))
		}
	}
	kind := c.Broker.Kind
	if kind == "nats" {
		for _, raw := range strings.Split(c.Broker.NATS.URL, ",") {
			raw = strings.TrimSpace(raw)
			u, err := url.Parse(raw)
			switch {
			case err != nil || u.Host == "":
				errs = append(errs, fmt.Errorf("%s: nats url %q is not a URL such as nats://host:4222", c.Pos("broker", "nats", "url"), redactURL(raw)))
			case !slices.Contains([]string{"nats", "tls", "ws", "wss"}, u.Scheme):
				errs = append(errs, fmt.Errorf("%s: nats url scheme %q: NATS speaks nats://, tls://, ws:// or wss://", c.Pos("broker", "nats", "url"), u.Scheme))
			}
		}
	}
	if kind == "kafka" {
		for i, b := range c.Broker.Kafka.Brokers {
			if _, _, err := net.SplitHostPort(b); err != nil || strings.Contains(b, "://") {
				errs = append(errs, fmt.Errorf("%s: kafka broker %q is not host:port (Kafka addresses have no scheme)", c.Pos("broker", "kafka", "brokers", i), b))
			}
		}
	}
	return errs
}

// redactURL drops a URL's user:password part for a message.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	u.User = nil
	return u.String()
}

// node is the file's value at path, nil when the file does not set it.
func (c *Config) node(path ...string) *yaml.Node {
	if c.root == nil || len(c.root.Content) == 0 {
		return nil
	}
	n := c.root.Content[0]
	for _, k := range path {
		var next *yaml.Node
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == k {
					next = n.Content[i+1]
				}
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return n
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// quoted is how yaml.v3 quotes a value in a type error.
var quoted = regexp.MustCompile("`[^`]*`")

// validateSecrets checks that each secret has one source: a file or an
// environment variable. Their content is read when the broker connects,
// so validating a config needs no secrets.
func (c *Config) validateSecrets() []error {
	var errs []error
	for _, raw := range strings.Split(c.Broker.NATS.URL, ",") {
		if u, err := url.Parse(strings.TrimSpace(raw)); err == nil && u.User != nil {
			if _, hasPassword := u.User.Password(); hasPassword {
				// Not echoed: the message must not repeat the secret.
				errs = append(errs, fmt.Errorf("%s: nats url carries a password; use user with passwordFile or passwordEnv", c.Pos("broker", "nats", "url")))
			}
		}
	}
	for _, s := range []struct {
		path       []any
		file, env  string
		fileKey    string
		envKey     string
		needsOwner bool
	}{
		{[]any{"broker", "nats", "passwordEnv"}, c.Broker.NATS.PasswordFile, c.Broker.NATS.PasswordEnv, "passwordFile", "passwordEnv", c.Broker.NATS.User == ""},
		{[]any{"broker", "nats", "tokenEnv"}, c.Broker.NATS.TokenFile, c.Broker.NATS.TokenEnv, "tokenFile", "tokenEnv", false},
		{[]any{"broker", "kafka", "sasl", "passwordEnv"}, c.Broker.Kafka.SASL.PasswordFile, c.Broker.Kafka.SASL.PasswordEnv, "passwordFile", "passwordEnv", false},
	} {
		if s.env == "" {
			continue
		}
		if s.file != "" {
			errs = append(errs, fmt.Errorf("%s: %s and %s are both set; use one", c.Pos(s.path...), s.fileKey, s.envKey))
		}
		if !envName.MatchString(s.env) {
			errs = append(errs, fmt.Errorf("%s: %s %q is not an environment variable name (name the variable, do not put the secret here)", c.Pos(s.path...), s.envKey, s.env))
		}
		if s.needsOwner {
			errs = append(errs, fmt.Errorf("%s: %s needs user", c.Pos(s.path...), s.envKey))
		}
	}
	return errs
}

// validateAccess checks the access block's own shape: a grant names at
// least one route or topic, and only routes and topics this file has, so
// a typo cannot silently deny (or, worse, be read as "any").
func (c *Config) validateAccess(routes map[string]int) []error {
	a := c.Access
	if a == nil {
		return nil
	}
	var errs []error
	bad := func(path []any, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", c.Pos(path...), fmt.Sprintf(format, args...)))
	}
	switch a.Default {
	case "deny", "allow":
	default:
		bad([]any{"access", "default"}, "access default %q is not deny or allow", a.Default)
	}
	topics := map[string]bool{}
	for _, r := range c.Routes {
		for _, t := range r.Topics {
			topics[t] = true
		}
	}
	wfs := make([]string, 0, len(a.Workflows))
	for wf := range a.Workflows {
		wfs = append(wfs, wf)
	}
	sort.Strings(wfs) // errors in a stable order
	for _, wf := range wfs {
		for _, op := range Operations {
			g := a.Workflows[wf].Grant(op)
			if g == nil {
				continue
			}
			at := func(k ...any) []any { return append([]any{"access", "workflows", wf, op}, k...) }
			if len(g.Routes) == 0 && len(g.Topics) == 0 {
				bad(at(), "access: workflow %q: %s grant names no routes or topics (leave the operation out to deny it)", wf, op)
			}
			for k, r := range g.Routes {
				if _, ok := routes[r]; !ok {
					bad(at("routes", k), "access: workflow %q: %s: no route is named %q", wf, op, r)
				}
			}
			for k, t := range g.Topics {
				if !topics[t] {
					bad(at("topics", k), "access: workflow %q: %s: no route consumes topic %q", wf, op, t)
				}
			}
		}
	}
	return errs
}

// Pos returns "file:line" of a path such as ("routes", 2, "match"); it
// falls back to the deepest node found, then to the file name.
func (c *Config) Pos(path ...any) string {
	if c.root == nil || len(c.root.Content) == 0 {
		return c.file
	}
	n := c.root.Content[0]
	line := n.Line
	for _, p := range path {
		var next *yaml.Node
		switch k := p.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == k {
						next = n.Content[i+1]
						line = n.Content[i].Line
						break
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && k < len(n.Content) {
				next = n.Content[k]
				line = next.Line
			}
		}
		if next == nil {
			break
		}
		n = next
	}
	return c.file + ":" + strconv.Itoa(line)
}

// File is the name the config was loaded from.
func (c *Config) File() string { return c.file }

// Defaults is the config an empty file gives, with one of each repeated
// block (a route, an access rule, a migrating workflow) so that their
// defaults are filled in too: the configuration reference reads its
// defaults from it.
func Defaults() *Config {
	c := &Config{
		Routes:    []Route{{}},
		Access:    &Access{Workflows: map[string]WorkflowAccess{"": {}}},
		Migration: Migration{Workflows: map[string]MigratingWorkflow{"": {}}},
	}
	c.setDefaults()
	return c
}
