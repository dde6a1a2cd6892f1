package deploy_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/cel-go/cel"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"k8s.io/kube-openapi/pkg/validation/strfmt"
	"k8s.io/kube-openapi/pkg/validation/validate"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/topics/natsjs"
)

// kedaCRDs are KEDA's CustomResourceDefinitions as KEDA v2.21.1 ships them
// (config/crd/bases of github.com/kedacore/keda, Apache-2.0: see
// testdata/keda/LICENSE).
var kedaCRDs = []string{"testdata/keda/keda.sh_scaledobjects.yaml", "testdata/keda/keda.sh_triggerauthentications.yaml"}

// kedaTriggerKeys are the trigger metadata keys KEDA v2.21.1's scalers read
// (pkg/scalers/nats_jetstream_scaler.go and kafka_scaler.go, the `keda:"name=…"`
// tags whose order includes triggerMetadata). KEDA ignores any other key,
// so a misspelt one would silently fall back to its default.
var kedaTriggerKeys = map[string][]string{
	"nats-jetstream": strings.Fields(`account accountID stream consumer lagThreshold activationLagThreshold
		useHttps natsServerMonitoringEndpoint`),
	"kafka": strings.Fields(`bootstrapServers consumerGroup topic partitionLimitation lagThreshold
		activationLagThreshold offsetResetPolicy allowIdleConsumers excludePersistentLag
		scaleToZeroOnInvalidOffset limitToPartitionsWithLag ensureEvenDistributionOfPartitions
		fullMetadata version tls unsafeSsl sasl saslTokenProvider awsRegion`),
}

// KEDA kinds: the fields these checks read. The objects are validated in
// full against the CRDs; these types only pick values out.
type (
	scaledObject struct {
		Metadata struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
		Spec struct {
			ScaleTargetRef struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
				Name       string `json:"name"`
			} `json:"scaleTargetRef"`
			MinReplicaCount *int32 `json:"minReplicaCount"`
			MaxReplicaCount *int32 `json:"maxReplicaCount"`
			Triggers        []struct {
				Type              string            `json:"type"`
				Name              string            `json:"name"`
				Metadata          map[string]string `json:"metadata"`
				AuthenticationRef *struct {
					Name string `json:"name"`
					Kind string `json:"kind"`
				} `json:"authenticationRef"`
			} `json:"triggers"`
		} `json:"spec"`
	}
	triggerAuthentication struct {
		Metadata struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
		Spec struct {
			SecretTargetRef    []targetRef `json:"secretTargetRef"`
			ConfigMapTargetRef []targetRef `json:"configMapTargetRef"`
		} `json:"spec"`
	}
	targetRef struct {
		Parameter string `json:"parameter"`
		Name      string `json:"name"`
		Key       string `json:"key"`
	}
)

// crdSchema is one served version of a CRD: the OpenAPI schema as the API
// server's validator takes it, and as plain data for the checks the
// validator does not make (unknown fields, CEL rules).
type crdSchema struct {
	schema *spec.Schema
	raw    map[string]any
}

// loadCRDs reads the vendored CRDs, keyed "apiVersion Kind".
func loadCRDs(t *testing.T) map[string]crdSchema {
	t.Helper()
	out := map[string]crdSchema{}
	for _, path := range kedaCRDs {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		j, err := yaml.YAMLToJSON(b)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		var crd struct {
			Spec struct {
				Group string `json:"group"`
				Names struct {
					Kind string `json:"kind"`
				} `json:"names"`
				Versions []struct {
					Name   string `json:"name"`
					Served bool   `json:"served"`
					Schema struct {
						OpenAPIV3Schema json.RawMessage `json:"openAPIV3Schema"`
					} `json:"schema"`
				} `json:"versions"`
			} `json:"spec"`
		}
		if err := json.Unmarshal(j, &crd); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, v := range crd.Spec.Versions {
			if !v.Served {
				continue
			}
			var s spec.Schema
			if err := json.Unmarshal(v.Schema.OpenAPIV3Schema, &s); err != nil {
				t.Fatalf("%s %s: %v", path, v.Name, err)
			}
			var raw map[string]any
			if err := json.Unmarshal(v.Schema.OpenAPIV3Schema, &raw); err != nil {
				t.Fatal(err)
			}
			out[crd.Spec.Group+"/"+v.Name+" "+crd.Spec.Names.Kind] = crdSchema{schema: &s, raw: raw}
		}
	}
	if len(out) != 2 {
		t.Fatalf("served CRD versions: %v", slices.Collect(maps.Keys(out)))
	}
	return out
}

// validateCR checks an object the way the API server and kubectl's
// default strict field validation would: the CRD's OpenAPI schema (types,
// enums, minimums, required fields, patterns), no field the schema does
// not declare, and the schema's x-kubernetes-validations CEL rules.
func validateCR(crds map[string]crdSchema, obj []byte) []string {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := json.Unmarshal(obj, &head); err != nil {
		return []string{err.Error()}
	}
	crd, ok := crds[head.APIVersion+" "+head.Kind]
	if !ok {
		return []string{fmt.Sprintf("no served CRD version for %s %s", head.APIVersion, head.Kind)}
	}
	// Integers stay integers, as the API server decodes them.
	var data map[string]any
	if err := kjson.UnmarshalCaseSensitivePreserveInts(obj, &data); err != nil {
		return []string{err.Error()}
	}
	var errs []string
	res := validate.NewSchemaValidator(crd.schema, nil, "", strfmt.Default).Validate(data)
	for _, e := range res.Errors {
		errs = append(errs, e.Error())
	}
	errs = append(errs, unknownFields(crd.raw, data, "")...)
	errs = append(errs, celRules(crd.raw, data, "")...)
	sort.Strings(errs)
	return errs
}

// unknownFields lists the fields of v that schema s does not declare.
func unknownFields(s map[string]any, v any, path string) []string {
	var errs []string
	switch v := v.(type) {
	case map[string]any:
		props, hasProps := s["properties"].(map[string]any)
		additional, hasAdditional := s["additionalProperties"].(map[string]any)
		preserve, _ := s["x-kubernetes-preserve-unknown-fields"].(bool)
		for k, child := range v {
			p := path + "." + k
			switch {
			case hasProps && props[k] != nil:
				errs = append(errs, unknownFields(props[k].(map[string]any), child, p)...)
			case hasAdditional:
				errs = append(errs, unknownFields(additional, child, p)...)
			case hasProps && !preserve:
				errs = append(errs, fmt.Sprintf("%s: unknown field", p))
			}
		}
	case []any:
		if items, ok := s["items"].(map[string]any); ok {
			for i, child := range v {
				errs = append(errs, unknownFields(items, child, fmt.Sprintf("%s[%d]", path, i))...)
			}
		}
	}
	return errs
}

// celRules evaluates every x-kubernetes-validations rule of schema s on
// the value it applies to.
func celRules(s map[string]any, v any, path string) []string {
	var errs []string
	if rules, ok := s["x-kubernetes-validations"].([]any); ok {
		env, err := cel.NewEnv(cel.Variable("self", cel.DynType))
		if err != nil {
			return []string{err.Error()}
		}
		for _, r := range rules {
			rule := r.(map[string]any)
			ast, iss := env.Compile(rule["rule"].(string))
			if iss.Err() != nil {
				errs = append(errs, fmt.Sprintf("%s: rule %q does not compile here: %v", path, rule["rule"], iss.Err()))
				continue
			}
			prg, err := env.Program(ast)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", path, err))
				continue
			}
			out, _, err := prg.Eval(map[string]any{"self": v})
			if err != nil || out.Value() != true {
				errs = append(errs, fmt.Sprintf("%s: %v (%v)", path, rule["message"], err))
			}
		}
	}
	switch v := v.(type) {
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		additional, _ := s["additionalProperties"].(map[string]any)
		for k, child := range v {
			if p, ok := props[k].(map[string]any); ok {
				errs = append(errs, celRules(p, child, path+"."+k)...)
			} else if additional != nil {
				errs = append(errs, celRules(additional, child, path+"."+k)...)
			}
		}
	case []any:
		if items, ok := s["items"].(map[string]any); ok {
			for i, child := range v {
				errs = append(errs, celRules(items, child, fmt.Sprintf("%s[%d]", path, i))...)
			}
		}
	}
	return errs
}

// TestAutoscaling renders each deploy/autoscaling kustomization, validates
// its KEDA objects against KEDA's CRDs, and checks that they scale the
// overlay's worker Deployment on exactly the consumers the worker reads
// (the ones its consumer lag gauge reports), with the connection and
// credentials its bridge.yaml uses.
func TestAutoscaling(t *testing.T) {
	crds := loadCRDs(t)
	for _, broker := range []string{"nats", "kafka"} {
		t.Run(broker, func(t *testing.T) {
			dir := filepath.Join("autoscaling", broker)
			r := render(t, dir)
			for _, o := range r.keda {
				for _, e := range validateCR(crds, o.json) {
					t.Errorf("%s: %s", o.id, e)
				}
			}
			if len(r.scaledObjects) != 1 {
				t.Fatalf("%d ScaledObjects, want 1", len(r.scaledObjects))
			}
			so := r.scaledObjects[0]

			// The overlay's Deployment, less the replica count the HPA owns.
			overlay := render(t, filepath.Join("overlays", broker))
			if r.deployment.Spec.Replicas != nil {
				t.Errorf("the Deployment sets replicas %d: every apply would undo the HPA", *r.deployment.Spec.Replicas)
			}
			want := overlay.deployment.DeepCopy()
			want.Spec.Replicas = nil
			if !reflect.DeepEqual(r.deployment, want) {
				t.Error("the Deployment differs from the overlay's by more than its replicas")
			}

			d := r.deployment
			ref := so.Spec.ScaleTargetRef
			if so.Metadata.Namespace != d.Namespace || ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != d.Name {
				t.Errorf("ScaledObject %s/%s targets %s %s %s, want the Deployment %s/%s", so.Metadata.Namespace, so.Metadata.Name,
					ref.APIVersion, ref.Kind, ref.Name, d.Namespace, d.Name)
			}
			minR, maxR := so.Spec.MinReplicaCount, so.Spec.MaxReplicaCount
			if minR == nil || maxR == nil || *minR < 2 || int(*minR) <= r.pdb.Spec.MinAvailable.IntValue() || *maxR < *minR {
				t.Errorf("replicas %v..%v: want at least 2, above the PDB's minAvailable %v (never 0: waiting sagas need a worker)",
					minR, maxR, r.pdb.Spec.MinAvailable)
			}

			cfg := validateBridgeConfig(t, "bridge.yaml", []byte(mountedBridgeYAML(t, r)))
			var routed []string
			for _, rt := range cfg.Routes {
				routed = append(routed, rt.Topics...)
			}
			slices.Sort(routed)
			routed = slices.Compact(routed)

			var triggered []string
			for _, tr := range so.Spec.Triggers {
				for k := range tr.Metadata {
					if !slices.Contains(kedaTriggerKeys[tr.Type], k) {
						t.Errorf("trigger %s: metadata %q is not one KEDA's %s scaler reads", tr.Name, k, tr.Type)
					}
				}
				if n, err := strconv.Atoi(tr.Metadata["lagThreshold"]); err != nil || n <= cfg.Broker.Concurrency {
					t.Errorf("trigger %s: lagThreshold %q: want a number above broker.concurrency %d (a replica busy on that many in flight is not behind)",
						tr.Name, tr.Metadata["lagThreshold"], cfg.Broker.Concurrency)
				}
				switch broker {
				case "nats":
					triggered = append(triggered, checkNATSTrigger(t, cfg, tr.Type, tr.Name, tr.Metadata))
				case "kafka":
					triggered = append(triggered, checkKafkaTrigger(t, cfg, tr.Type, tr.Name, tr.Metadata))
					if tr.AuthenticationRef == nil || r.triggerAuths[tr.AuthenticationRef.Name] == nil {
						t.Errorf("trigger %s: authenticationRef %+v names no rendered TriggerAuthentication", tr.Name, tr.AuthenticationRef)
					}
				}
			}
			slices.Sort(triggered)
			if !slices.Equal(triggered, routed) {
				t.Errorf("triggers on topics %v, want one per routed topic %v", triggered, routed)
			}
			if broker == "kafka" {
				checkKafkaAuth(t, cfg, r)
			}
		})
	}
}

// checkNATSTrigger: the stream and durable consumer the worker reads a
// routed topic with, on the monitoring port of the server bridge.yaml
// names. It returns the topic.
func checkNATSTrigger(t *testing.T, cfg *config.Config, typ, name string, md map[string]string) string {
	t.Helper()
	if typ != "nats-jetstream" {
		t.Errorf("trigger %s: type %q", name, typ)
	}
	u, err := url.Parse(cfg.Broker.NATS.URL)
	if err != nil {
		t.Fatal(err)
	}
	if host := strings.Split(md["natsServerMonitoringEndpoint"], ":")[0]; host != u.Hostname() {
		t.Errorf("trigger %s: monitoring endpoint %q is not on %s, the server bridge.yaml connects to", name, md["natsServerMonitoringEndpoint"], u.Hostname())
	}
	if md["account"] == "" && md["accountID"] == "" {
		t.Errorf("trigger %s: no account", name)
	}
	var topic string
	for _, rt := range cfg.Routes {
		for _, tp := range rt.Topics {
			if natsjs.StreamName(tp) == md["stream"] {
				topic = tp
			}
		}
	}
	if topic == "" {
		t.Errorf("trigger %s: stream %q holds no routed topic", name, md["stream"])
		return ""
	}
	if want := natsjs.ConsumerName(cfg.Broker.ConsumerGroup, topic); md["consumer"] != want {
		t.Errorf("trigger %s: consumer %q, the worker reads %s with %q", name, md["consumer"], topic, want)
	}
	return topic
}

// checkKafkaTrigger: the consumer group the worker reads a routed topic in
// ("<group>.<topic>"), on bridge.yaml's brokers, counting lag from where
// that group starts. It returns the topic.
func checkKafkaTrigger(t *testing.T, cfg *config.Config, typ, name string, md map[string]string) string {
	t.Helper()
	if typ != "kafka" {
		t.Errorf("trigger %s: type %q", name, typ)
	}
	if want := strings.Join(cfg.Broker.Kafka.Brokers, ","); md["bootstrapServers"] != want {
		t.Errorf("trigger %s: bootstrapServers %q, bridge.yaml's brokers %q", name, md["bootstrapServers"], want)
	}
	topic := md["topic"]
	if want := cfg.Broker.ConsumerGroup + "." + topic; md["consumerGroup"] != want {
		t.Errorf("trigger %s: consumerGroup %q, the worker reads %s in %q", name, md["consumerGroup"], topic, want)
	}
	// A group with no committed offset starts at the earliest one in the
	// worker (topics/kafka StartEarliest): all of the topic is its lag.
	if md["offsetResetPolicy"] != "earliest" {
		t.Errorf("trigger %s: offsetResetPolicy %q: the worker's groups start at the earliest offset", name, md["offsetResetPolicy"])
	}
	// Replicas past the partition count still run workflows.
	if md["allowIdleConsumers"] != "true" {
		t.Errorf("trigger %s: allowIdleConsumers %q caps replicas at the partition count", name, md["allowIdleConsumers"])
	}
	return topic
}

// checkKafkaAuth: KEDA reaches Kafka with the worker's TLS and SASL
// settings and the Secret keys the overlay mounts.
func checkKafkaAuth(t *testing.T, cfg *config.Config, r rendered) {
	t.Helper()
	if len(r.triggerAuths) != 1 {
		t.Fatalf("%d TriggerAuthentications, want 1", len(r.triggerAuths))
	}
	params := map[string]string{}
	for _, ta := range r.triggerAuths {
		if ta.Metadata.Namespace != r.deployment.Namespace {
			t.Errorf("TriggerAuthentication %s in namespace %q", ta.Metadata.Name, ta.Metadata.Namespace)
		}
		for _, s := range ta.Spec.SecretTargetRef {
			if !slices.Contains(userSecrets[s.Name], s.Key) {
				t.Errorf("TriggerAuthentication: %s from Secret %s key %s, which users are not told to create", s.Parameter, s.Name, s.Key)
			}
			params[s.Parameter] = "secret:" + s.Key
		}
		for _, c := range ta.Spec.ConfigMapTargetRef {
			cm := r.configMaps[c.Name]
			if cm == nil {
				t.Errorf("TriggerAuthentication: ConfigMap %s is not rendered (a name hash would rename it)", c.Name)
				continue
			}
			v, ok := cm.Data[c.Key]
			if !ok {
				t.Errorf("TriggerAuthentication: ConfigMap %s has no key %s", c.Name, c.Key)
			}
			params[c.Parameter] = v
		}
	}
	k := cfg.Broker.Kafka
	want := map[string]string{
		"sasl":     map[string]string{"": "none", "PLAIN": "plaintext", "SCRAM-SHA-256": "scram_sha256", "SCRAM-SHA-512": "scram_sha512"}[k.SASL.Mechanism],
		"username": k.SASL.Username,
		"password": "secret:" + filepath.Base(k.SASL.PasswordFile),
		"tls":      map[bool]string{true: "enable", false: "disable"}[k.TLS.Enable],
		"ca":       "secret:" + filepath.Base(k.TLS.CAFile),
	}
	if !maps.Equal(params, want) {
		t.Errorf("KEDA's Kafka auth %v, want what bridge.yaml uses %v", params, want)
	}
}

// mountedBridgeYAML is the bridge.yaml of the ConfigMap the worker mounts.
func mountedBridgeYAML(t *testing.T, r rendered) string {
	t.Helper()
	for _, v := range r.deployment.Spec.Template.Spec.Volumes {
		if v.ConfigMap != nil && r.configMaps[v.ConfigMap.Name] != nil {
			if s, ok := r.configMaps[v.ConfigMap.Name].Data["bridge.yaml"]; ok {
				return s
			}
		}
	}
	t.Fatal("no mounted ConfigMap holds bridge.yaml")
	return ""
}

// TestKEDASchemaCheckBites: the validation above rejects what the API
// server would: a threshold given as a number (metadata values are
// strings), a misspelt field, and minReplicaCount above maxReplicaCount
// (the CRD's CEL rule).
func TestKEDASchemaCheckBites(t *testing.T) {
	crds := loadCRDs(t)
	r := render(t, "autoscaling/nats")
	var so map[string]any
	for _, o := range r.keda {
		if strings.Contains(o.id, "ScaledObject") {
			if err := json.Unmarshal(o.json, &so); err != nil {
				t.Fatal(err)
			}
		}
	}
	if so == nil {
		t.Fatal("no ScaledObject rendered")
	}
	for name, c := range map[string]struct {
		mutate func(spec map[string]any)
		want   string
	}{
		"number in metadata": {func(s map[string]any) {
			s["triggers"].([]any)[0].(map[string]any)["metadata"].(map[string]any)["lagThreshold"] = 200
		}, "lagThreshold"},
		"misspelt field": {func(s map[string]any) { s["maxReplicas"] = 3 }, "spec.maxReplicas: unknown field"},
		"min above max":  {func(s map[string]any) { s["minReplicaCount"] = 9 }, "minReplicaCount must be less than or equal to maxReplicaCount"},
		"no triggers":    {func(s map[string]any) { s["triggers"] = []any{} }, "triggers"},
	} {
		t.Run(name, func(t *testing.T) {
			b, _ := json.Marshal(so)
			var cp map[string]any
			_ = json.Unmarshal(b, &cp)
			c.mutate(cp["spec"].(map[string]any))
			b, _ = json.Marshal(cp)
			errs := validateCR(crds, b)
			if !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, c.want) }) {
				t.Errorf("errors %q, want one about %q", errs, c.want)
			}
		})
	}
	b, _ := json.Marshal(so)
	if errs := validateCR(crds, b); len(errs) != 0 {
		t.Errorf("the shipped ScaledObject: %q", errs)
	}
}
