package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/cmd/sagabridge/brokers"
	"github.com/sagabridge/sagabridge/topics"
	"github.com/sagabridge/sagabridge/topics/kafka"
)

// publishFlags build one event.
type publishFlags struct {
	topic, id, typ, source, subject, data, event, key, contentType string
	headers                                                        []string
	binary                                                         bool
}

func newPublishCmd() *cobra.Command {
	var o opsFlags
	var bf brokerFlags
	var p publishFlags
	cmd := &cobra.Command{
		Use:   "publish",
		Short: "Publish one event to a topic, to try routes",
		Long: `Publish one event to a topic, to try routes.

The event is a CloudEvent built from the flags (--type, --id, --source,
--subject, --data), or read whole from a file or stdin (--event FILE|-;
flags given as well override its attributes). It is published in structured
mode (application/cloudevents+json) unless --binary puts the attributes in
ce- headers and the data in the body. The message id is the event id, so
JetStream drops a second publish of the same id within its duplicate window.

  sagabridge publish --topic orders.placed --type order.placed \
      --data '{"orderId":"o-1","amount":12.5}'
  sagabridge publish --topic payment.replies --event reply.json --binary`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error { return runPublish(cmd, &o, &bf, &p) },
	}
	cmd.SetFlagErrorFunc(flagUsageErr)
	o.register(cmd.Flags(), false)
	bf.register(cmd)
	p.register(cmd)
	return cmd
}

func (p *publishFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVarP(&p.topic, "topic", "t", "", "topic to publish to (required)")
	fs.StringVar(&p.typ, "type", "", "CloudEvent type (required unless --event has one)")
	fs.StringVar(&p.id, "id", "", "CloudEvent id (default: a new UUID)")
	fs.StringVar(&p.source, "source", "", "CloudEvent source (default: sagabridge-cli)")
	fs.StringVar(&p.subject, "subject", "", "CloudEvent subject")
	fs.StringVar(&p.data, "data", "", "event data (JSON); @FILE reads a file, - reads stdin")
	fs.StringVar(&p.event, "event", "", "a whole CloudEvent (structured JSON) from FILE, or - for stdin")
	fs.StringVar(&p.contentType, "content-type", "application/json", "datacontenttype of the data")
	fs.StringVar(&p.key, "key", "", "partition key (default: the subject)")
	fs.StringArrayVarP(&p.headers, "header", "H", nil, "extra message header NAME=VALUE (repeatable)")
	fs.BoolVar(&p.binary, "binary", false, "binary mode: attributes in ce- headers, data as the body")
}

func runPublish(cmd *cobra.Command, o *opsFlags, bf *brokerFlags, p *publishFlags) error {
	if err := o.validate(); err != nil {
		return err
	}
	ev, err := p.build(cmd)
	if err != nil {
		return err
	}
	msg, err := p.message(ev)
	if err != nil {
		return err
	}
	cfg, err := o.loadConfig(cmd)
	if err != nil {
		return err
	}
	pub, closePub, err := openPublisher(cmd, o, bf, cfg)
	if err != nil {
		return err
	}
	defer closePub()
	if err := pub.Publish(p.topic, msg); err != nil {
		return exitError{exitFailure, fmt.Errorf("publish to %s: %w", p.topic, err)}
	}
	mode := "structured"
	if p.binary {
		mode = "binary"
	}
	if o.output != "table" {
		return printAs(cmd.OutOrStdout(), o.output, map[string]any{"topic": p.topic, "id": ev.ID, "type": ev.Type, "mode": mode})
	}
	fmt.Fprintf(cmd.OutOrStdout(), "published %s (%s, %s) to %s\n", ev.ID, ev.Type, mode, p.topic)
	return nil
}

// openPublisher connects a publisher to the config's broker; done closes
// the publisher, then the NATS connection it runs on.
func openPublisher(cmd *cobra.Command, o *opsFlags, bf *brokerFlags, cfg *config.Config) (message.Publisher, func(), error) {
	if onKafka(cfg, bf) {
		kp, err := kafka.NewPublisher(kafka.PublisherConfig{
			Connection:    brokers.KafkaConnection(cfg.Broker.Kafka),
			TopicCreation: kafka.TopicCreation{AutoCreateTopics: cfg.Broker.Kafka.AutoCreateTopics},
		}, watermill.NopLogger{})
		if err != nil {
			return nil, nil, exitError{exitFailure, err}
		}
		return kp, func() { _ = kp.Close() }, nil
	}
	ps, err := connectNATS(cmd, o, bf, cfg)
	if err != nil {
		return nil, nil, err
	}
	np := ps.Publisher()
	return np, func() { _ = np.Close(); _ = ps.Close() }, nil
}

func readArg(cmd *cobra.Command, v string) ([]byte, error) {
	switch {
	case v == "-":
		return io.ReadAll(cmd.InOrStdin())
	case strings.HasPrefix(v, "@"):
		b, err := os.ReadFile(v[1:])
		if err != nil {
			return nil, usageErr(err)
		}
		return b, nil
	}
	return []byte(v), nil
}

// build assembles the CloudEvent from --event and the flags.
func (p *publishFlags) build(cmd *cobra.Command) (topics.CloudEvent, error) {
	var ev topics.CloudEvent
	if p.topic == "" {
		return ev, usageErr(errors.New("--topic is required"))
	}
	if p.event != "" {
		src := p.event
		if src != "-" {
			src = "@" + src
		}
		b, err := readArg(cmd, src)
		if err != nil {
			return ev, err
		}
		if err := json.Unmarshal(b, &ev); err != nil {
			return ev, usageErr(fmt.Errorf("--event: not a structured CloudEvent: %w", err))
		}
	}
	fl := cmd.Flags()
	set := func(dst *string, name, v string) {
		if fl.Changed(name) || *dst == "" {
			*dst = v
		}
	}
	set(&ev.Type, "type", p.typ)
	set(&ev.Subject, "subject", p.subject)
	if fl.Changed("id") || ev.ID == "" {
		ev.ID = p.id
		if ev.ID == "" {
			ev.ID = uuid.NewString()
		}
	}
	if fl.Changed("source") || ev.Source == "" {
		ev.Source = p.source
		if ev.Source == "" {
			ev.Source = "sagabridge-cli"
		}
	}
	if ev.SpecVersion == "" {
		ev.SpecVersion = topics.SpecVersion
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	if p.data != "" {
		b, err := readArg(cmd, p.data)
		if err != nil {
			return ev, err
		}
		ev.Data = b
		ev.DataContentType = p.contentType
	}
	if ev.DataContentType == "" && ev.Data != nil {
		ev.DataContentType = p.contentType
	}
	if ev.Data != nil && isJSONType(ev.DataContentType) && !json.Valid(ev.Data) {
		return ev, usageErr(fmt.Errorf("data is not valid JSON but datacontenttype is %s", ev.DataContentType))
	}
	if err := ev.Validate(); err != nil {
		return ev, usageErr(err)
	}
	return ev, nil
}

func isJSONType(ct string) bool {
	ct = strings.ToLower(strings.TrimSpace(strings.Split(ct, ";")[0]))
	return ct == "" || ct == "application/json" || strings.HasSuffix(ct, "+json")
}

// message encodes the event; the Watermill UUID is the event id.
func (p *publishFlags) message(ev topics.CloudEvent) (*message.Message, error) {
	var msg *message.Message
	if p.binary {
		msg = message.NewMessage(ev.ID, message.Payload(ev.Data))
		md := msg.Metadata
		md.Set("ce-specversion", ev.SpecVersion)
		md.Set("ce-id", ev.ID)
		md.Set("ce-source", ev.Source)
		md.Set("ce-type", ev.Type)
		if ev.Subject != "" {
			md.Set("ce-subject", ev.Subject)
		}
		if !ev.Time.IsZero() {
			md.Set("ce-time", ev.Time.UTC().Format(time.RFC3339Nano))
		}
		if ev.TraceParent != "" {
			md.Set("traceparent", ev.TraceParent)
		}
		if ev.DataContentType != "" {
			md.Set("Content-Type", ev.DataContentType)
		}
	} else {
		body, err := ev.Marshal()
		if err != nil {
			return nil, err
		}
		msg = message.NewMessage(ev.ID, body)
		msg.Metadata.Set("Content-Type", "application/cloudevents+json")
	}
	key := p.key
	if key == "" {
		key = ev.Subject
	}
	if key != "" {
		msg.Metadata.Set("partition_key", key)
	}
	for _, h := range p.headers {
		k, v, ok := strings.Cut(h, "=")
		if !ok || k == "" {
			return nil, usageErr(fmt.Errorf("--header %q is not NAME=VALUE", h))
		}
		msg.Metadata.Set(k, v)
	}
	return msg, nil
}
