// Package deploy_test renders the Kubernetes overlays with kustomize's own
// library, decodes every object strictly into its Kubernetes (or Dapr)
// type, checks what the bridge and daprd rely on, and validates every
// bridge.yaml shipped here the way `sagabridge run` would.
package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dapr/durabletask-go/workflow"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/sagabridge/sagabridge/bridge"
	"github.com/sagabridge/sagabridge/bridge/admin"
	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/engine"
	"github.com/sagabridge/sagabridge/internal/daprtest"
	"github.com/sagabridge/sagabridge/sagas/order"
	"github.com/sagabridge/sagabridge/sagas/registry"
)

// Ports of `sagabridge run` in the pod: the metrics listener (/healthz,
// /readyz, /metrics, no token) and the admin API (bearer token).
const (
	metricsPort = 9091
	adminPort   = 9464
)

// Dapr kinds, mirroring the fields of github.com/dapr/dapr v1.16.0
// pkg/apis/{components,configuration,resiliency}/v1alpha1 that these files
// use; strict decoding turns a misspelt field into an error.
type (
	daprComponent struct {
		metav1.TypeMeta `json:",inline"`
		Metadata        metav1.ObjectMeta `json:"metadata"`
		Spec            struct {
			Type         string `json:"type"`
			Version      string `json:"version"`
			IgnoreErrors bool   `json:"ignoreErrors"`
			InitTimeout  string `json:"initTimeout"`
			Metadata     []struct {
				Name         string `json:"name"`
				Value        any    `json:"value,omitempty"`
				SecretKeyRef *struct {
					Name string `json:"name"`
					Key  string `json:"key"`
				} `json:"secretKeyRef,omitempty"`
				EnvRef string `json:"envRef,omitempty"`
			} `json:"metadata"`
		} `json:"spec"`
		Auth *struct {
			SecretStore string `json:"secretStore"`
		} `json:"auth,omitempty"`
		Scopes []string `json:"scopes,omitempty"`
	}
	daprConfiguration struct {
		metav1.TypeMeta `json:",inline"`
		Metadata        metav1.ObjectMeta `json:"metadata"`
		Spec            struct {
			Workflow *struct {
				MaxConcurrentWorkflowInvocations int32 `json:"maxConcurrentWorkflowInvocations,omitempty"`
				MaxConcurrentActivityInvocations int32 `json:"maxConcurrentActivityInvocations,omitempty"`
			} `json:"workflow,omitempty"`
			Features []struct {
				Name    string `json:"name"`
				Enabled bool   `json:"enabled"`
			} `json:"features,omitempty"`
			Metric *struct {
				Enabled *bool `json:"enabled"`
			} `json:"metric,omitempty"`
		} `json:"spec"`
	}
	daprResiliency struct {
		metav1.TypeMeta `json:",inline"`
		Metadata        metav1.ObjectMeta `json:"metadata"`
		Scopes          []string          `json:"scopes,omitempty"`
		Spec            struct {
			Policies struct {
				Timeouts map[string]string `json:"timeouts,omitempty"`
				Retries  map[string]struct {
					Policy      string `json:"policy,omitempty"`
					Duration    string `json:"duration,omitempty"`
					MaxInterval string `json:"maxInterval,omitempty"`
					MaxRetries  *int   `json:"maxRetries,omitempty"`
				} `json:"retries,omitempty"`
				CircuitBreakers map[string]struct {
					MaxRequests int    `json:"maxRequests,omitempty"`
					Interval    string `json:"interval,omitempty"`
					Timeout     string `json:"timeout,omitempty"`
					Trip        string `json:"trip,omitempty"`
				} `json:"circuitBreakers,omitempty"`
			} `json:"policies"`
			Targets struct {
				Components map[string]struct {
					Outbound daprPolicyNames `json:"outbound,omitempty"`
					Inbound  daprPolicyNames `json:"inbound,omitempty"`
				} `json:"components,omitempty"`
			} `json:"targets"`
		} `json:"spec"`
	}
	daprPolicyNames struct {
		Timeout        string `json:"timeout,omitempty"`
		Retry          string `json:"retry,omitempty"`
		CircuitBreaker string `json:"circuitBreaker,omitempty"`
	}
)

// daprAnnotations are the pod annotations the v1.14 sidecar injector reads
// (pkg/injector/annotations); anything else under dapr.io/ is a typo.
var daprAnnotations = strings.Fields(`dapr.io/api-token-secret dapr.io/app-channel-address
	dapr.io/app-health-check-path dapr.io/app-health-probe-interval dapr.io/app-health-probe-timeout
	dapr.io/app-health-threshold dapr.io/app-id dapr.io/app-max-concurrency dapr.io/app-port
	dapr.io/app-protocol dapr.io/app-ssl dapr.io/app-token-secret dapr.io/block-shutdown-duration
	dapr.io/component-container dapr.io/config dapr.io/debug-port dapr.io/enable-api-logging
	dapr.io/enable-app-health-check dapr.io/enable-debug dapr.io/enable-metrics dapr.io/enable-profiling
	dapr.io/enabled dapr.io/env dapr.io/graceful-shutdown-seconds dapr.io/http-max-request-size
	dapr.io/http-read-buffer-size dapr.io/inject-pluggable-components dapr.io/log-as-json
	dapr.io/log-level dapr.io/max-body-size dapr.io/metrics-port dapr.io/placement-host-address
	dapr.io/pluggable-components dapr.io/pluggable-components-sockets-folder dapr.io/read-buffer-size
	dapr.io/scheduler-host-address dapr.io/sidecar-cpu-limit dapr.io/sidecar-cpu-request
	dapr.io/sidecar-image dapr.io/sidecar-listen-addresses dapr.io/sidecar-liveness-probe-delay-seconds
	dapr.io/sidecar-liveness-probe-period-seconds dapr.io/sidecar-liveness-probe-threshold
	dapr.io/sidecar-liveness-probe-timeout-seconds dapr.io/sidecar-memory-limit
	dapr.io/sidecar-memory-request dapr.io/sidecar-readiness-probe-delay-seconds
	dapr.io/sidecar-readiness-probe-period-seconds dapr.io/sidecar-readiness-probe-threshold
	dapr.io/sidecar-readiness-probe-timeout-seconds dapr.io/sidecar-seccomp-profile-type
	dapr.io/unix-domain-socket-path dapr.io/volume-mounts dapr.io/volume-mounts-rw`)

// rendered is one overlay's objects, decoded.
type rendered struct {
	deployment     *appsv1.Deployment
	service        *corev1.Service
	pdb            *policyv1.PodDisruptionBudget
	configMaps     map[string]*corev1.ConfigMap
	secrets        map[string]*corev1.Secret
	serviceAccount *corev1.ServiceAccount
	namespace      *corev1.Namespace
	components     []*daprComponent
	configurations map[string]*daprConfiguration
	resiliencies   []*daprResiliency
	// KEDA objects (deploy/autoscaling): as rendered, for validation
	// against KEDA's CRDs, and decoded.
	keda          []renderedObject
	scaledObjects []*scaledObject
	triggerAuths  map[string]*triggerAuthentication
}

// renderedObject is one rendered object's JSON.
type renderedObject struct {
	id   string
	json []byte
}

// decodeStrict decodes as the API server does: field names match case
// sensitively (encoding/json would take readOnlyRootFileSystem), and
// unknown or repeated fields are errors.
func decodeStrict(b []byte, into any) error {
	strict, err := kjson.UnmarshalStrict(b, into, kjson.DisallowUnknownFields, kjson.DisallowDuplicateFields)
	return errors.Join(append(strict, err)...)
}

func render(t *testing.T, dir string) rendered {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out := rendered{configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{},
		configurations: map[string]*daprConfiguration{}, triggerAuths: map[string]*triggerAuthentication{}}
	for _, r := range m.Resources() {
		b, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		gvk := r.GetGvk()
		id := gvk.ApiVersion() + " " + gvk.Kind + " " + r.GetName()
		var obj any
		switch gvk.ApiVersion() + " " + gvk.Kind {
		case "apps/v1 Deployment":
			if out.deployment != nil {
				t.Errorf("%s: a second Deployment", id)
			}
			out.deployment = &appsv1.Deployment{}
			obj = out.deployment
		case "v1 Service":
			out.service = &corev1.Service{}
			obj = out.service
		case "policy/v1 PodDisruptionBudget":
			out.pdb = &policyv1.PodDisruptionBudget{}
			obj = out.pdb
		case "v1 ConfigMap":
			cm := &corev1.ConfigMap{}
			out.configMaps[r.GetName()] = cm
			obj = cm
		case "v1 Secret":
			sec := &corev1.Secret{}
			out.secrets[r.GetName()] = sec
			obj = sec
		case "v1 ServiceAccount":
			out.serviceAccount = &corev1.ServiceAccount{}
			obj = out.serviceAccount
		case "v1 Namespace":
			out.namespace = &corev1.Namespace{}
			obj = out.namespace
		case "dapr.io/v1alpha1 Component":
			c := &daprComponent{}
			out.components = append(out.components, c)
			obj = c
		case "dapr.io/v1alpha1 Configuration":
			c := &daprConfiguration{}
			out.configurations[r.GetName()] = c
			obj = c
		case "dapr.io/v1alpha1 Resiliency":
			c := &daprResiliency{}
			out.resiliencies = append(out.resiliencies, c)
			obj = c
		case "keda.sh/v1alpha1 ScaledObject":
			// Checked against KEDA's CRD schema (autoscaling_test.go); the
			// type picks out what the checks compare.
			out.keda = append(out.keda, renderedObject{id: id, json: b})
			so := &scaledObject{}
			out.scaledObjects = append(out.scaledObjects, so)
			if err := json.Unmarshal(b, so); err != nil {
				t.Errorf("%s: %v", id, err)
			}
			continue
		case "keda.sh/v1alpha1 TriggerAuthentication":
			out.keda = append(out.keda, renderedObject{id: id, json: b})
			ta := &triggerAuthentication{}
			out.triggerAuths[r.GetName()] = ta
			if err := json.Unmarshal(b, ta); err != nil {
				t.Errorf("%s: %v", id, err)
			}
			continue
		default:
			t.Errorf("%s: no type to check it against; add one to deploy_test.go", id)
			continue
		}
		if err := decodeStrict(b, obj); err != nil {
			t.Errorf("%s does not decode strictly: %v", id, err)
		}
	}
	if out.deployment == nil || out.service == nil || out.pdb == nil || out.serviceAccount == nil || out.namespace == nil {
		t.Fatalf("%s: missing objects: %+v", dir, out)
	}
	return out
}

func TestOverlays(t *testing.T) {
	dirs, err := filepath.Glob("overlays/*")
	if err != nil {
		t.Fatal(err)
	}
	brokers := map[string]string{}
	for _, dir := range dirs {
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			r := render(t, dir)
			cfg := checkDeployment(t, r)
			brokers[name] = cfg.Broker.Kind
			checkDapr(t, r)
		})
	}
	if brokers["nats"] != "nats" || brokers["kafka"] != "kafka" {
		t.Errorf("overlay → broker kind: %v, want nats → nats and kafka → kafka", brokers)
	}
}

// checkDeployment checks the pod against what the bridge and daprd need and
// returns the bridge config it mounts.
func checkDeployment(t *testing.T, r rendered) *config.Config {
	t.Helper()
	d := r.deployment
	pod := d.Spec.Template
	ns := d.Namespace
	if ns == "" || ns != r.namespace.Name || r.service.Namespace != ns || r.pdb.Namespace != ns {
		t.Errorf("namespaces: deployment %q, service %q, pdb %q, namespace object %q", ns, r.service.Namespace, r.pdb.Namespace, r.namespace.Name)
	}

	// The selector picks the pods, and so do the Service's and the PDB's.
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
		t.Errorf("deployment selector %v does not select its pods %v (%v)", d.Spec.Selector, pod.Labels, err)
	}
	if !labels.SelectorFromSet(r.service.Spec.Selector).Matches(labels.Set(pod.Labels)) {
		t.Errorf("service selector %v does not select the pods", r.service.Spec.Selector)
	}
	pdbSel, err := metav1.LabelSelectorAsSelector(r.pdb.Spec.Selector)
	if err != nil || pdbSel.Empty() || !pdbSel.Matches(labels.Set(pod.Labels)) {
		t.Errorf("PDB selector %v does not select the pods", r.pdb.Spec.Selector)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 || r.pdb.Spec.MinAvailable == nil || r.pdb.Spec.MinAvailable.IntValue() >= int(*d.Spec.Replicas) {
		t.Errorf("replicas %v with PDB minAvailable %v: a node drain could never evict a pod", d.Spec.Replicas, r.pdb.Spec.MinAvailable)
	}
	if pod.Spec.ServiceAccountName != r.serviceAccount.Name {
		t.Errorf("service account %q, rendered %q", pod.Spec.ServiceAccountName, r.serviceAccount.Name)
	}

	// Dapr annotations.
	ann := pod.Annotations
	for k := range ann {
		if strings.HasPrefix(k, "dapr.io/") && !slices.Contains(daprAnnotations, k) {
			t.Errorf("annotation %s is not one daprd v1.14's injector reads", k)
		}
	}
	for k, want := range map[string]string{"dapr.io/enabled": "true", "dapr.io/app-id": "sagabridge"} {
		if ann[k] != want {
			t.Errorf("annotation %s = %q, want %q", k, ann[k], want)
		}
	}
	for _, k := range []string{"dapr.io/sidecar-cpu-request", "dapr.io/sidecar-memory-request", "dapr.io/sidecar-memory-limit"} {
		if ann[k] == "" {
			t.Errorf("annotation %s missing", k)
		}
	}
	if _, ok := ann["dapr.io/app-port"]; ok {
		t.Error("dapr.io/app-port set: the worker needs no app channel")
	}
	if r.configurations[ann["dapr.io/config"]] == nil {
		t.Errorf("dapr.io/config %q names no rendered Configuration", ann["dapr.io/config"])
	}

	// Pod and container security.
	psc := pod.Spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v", psc)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1 (daprd is injected)", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil ||
		!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
		t.Errorf("container securityContext %+v", sc)
	}
	if strings.HasSuffix(c.Image, ":latest") || !strings.Contains(c.Image, "/sagabridge:") {
		t.Errorf("image %q: pin a tag", c.Image)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v", c.Resources)
	}

	// The metrics port is probed and exposed; the admin port exposed.
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["metrics"] != metricsPort || ports["admin"] != adminPort {
		t.Fatalf("container ports %+v: want metrics %d and admin %d", c.Ports, metricsPort, adminPort)
	}
	for name, probe := range map[string]*corev1.Probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != name || probe.HTTPGet.Port.String() != "metrics" {
			t.Errorf("probe for %s: %+v", name, probe)
		}
	}
	svcPorts := map[string]string{}
	for _, p := range r.service.Spec.Ports {
		svcPorts[p.Name] = p.TargetPort.String()
	}
	if len(svcPorts) != 2 || svcPorts["metrics"] != "metrics" || svcPorts["admin"] != "admin" {
		t.Errorf("service ports %+v", r.service.Spec.Ports)
	}

	// The config: the ConfigMap that is mounted where the args point.
	var cfgPath string
	for i, a := range c.Args {
		if (a == "-c" || a == "--config") && i+1 < len(c.Args) {
			cfgPath = c.Args[i+1]
		}
	}
	if len(c.Args) == 0 || c.Args[0] != "run" || cfgPath == "" {
		t.Fatalf("args %v: want run -c <file>", c.Args)
	}
	var cm *corev1.ConfigMap
	for _, m := range c.VolumeMounts {
		if m.MountPath != filepath.Dir(cfgPath) {
			continue
		}
		if !m.ReadOnly {
			t.Errorf("config mount %s is writable", m.MountPath)
		}
		for _, v := range pod.Spec.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil {
				cm = r.configMaps[v.ConfigMap.Name]
			}
		}
	}
	if cm == nil {
		t.Fatalf("no ConfigMap mounted at %s (rendered: %v)", filepath.Dir(cfgPath), mapsKeys(r.configMaps))
	}
	body, ok := cm.Data[filepath.Base(cfgPath)]
	if !ok {
		t.Fatalf("ConfigMap %s has no %s", cm.Name, filepath.Base(cfgPath))
	}
	cfg := validateBridgeConfig(t, cm.Name+"/"+filepath.Base(cfgPath), []byte(body))
	if cfg.Engine.Kind != "dapr" {
		t.Errorf("engine kind %q, want dapr", cfg.Engine.Kind)
	}
	for _, l := range []struct {
		key, listen string
		port        int
	}{{"metrics.listen", cfg.Metrics.Listen, metricsPort}, {"admin.listen", cfg.Admin.Listen, adminPort}} {
		if !strings.HasSuffix(l.listen, fmt.Sprintf(":%d", l.port)) || admin.IsLoopback(l.listen) {
			t.Errorf("%s %q: probes and clients reach the pod IP on %d", l.key, l.listen, l.port)
		}
	}
	if cfg.Admin.TokenFile == "" {
		t.Error("admin.tokenFile is empty: off loopback the admin API needs a token")
	}
	// Files the config names must be mounted.
	for _, f := range []string{cfg.Broker.Kafka.TLS.CAFile, cfg.Broker.Kafka.SASL.PasswordFile, cfg.Broker.NATS.CredsFile, cfg.Admin.TokenFile} {
		if f != "" && !mounted(c, f) {
			t.Errorf("%s named in the config is not under any volume mount", f)
		}
	}
	return cfg
}

func mounted(c corev1.Container, file string) bool {
	for _, m := range c.VolumeMounts {
		if strings.HasPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/") {
			return true
		}
	}
	return false
}

func mapsKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// validateBridgeConfig parses and compiles a bridge.yaml as `sagabridge
// run` and `validate` do.
func validateBridgeConfig(t *testing.T, name string, b []byte) *config.Config {
	t.Helper()
	cfg, err := config.Parse(name, b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if err := bridge.Validate(cfg, bridge.Options{Sagas: orderSagas(t)}); err != nil {
		t.Fatalf("%s: routes: %v", name, err)
	}
	if len(cfg.Routes) == 0 {
		t.Fatalf("%s: no routes", name)
	}
	return cfg
}

// checkDapr checks the Dapr resources rendered with the app.
func checkDapr(t *testing.T, r rendered) {
	t.Helper()
	appID := r.deployment.Spec.Template.Annotations["dapr.io/app-id"]
	var actorStores []string
	for _, c := range r.components {
		isActorStore := false
		for _, m := range c.Spec.Metadata {
			if m.Name == "actorStateStore" && m.Value == "true" {
				isActorStore = true
			}
		}
		for _, m := range c.Spec.Metadata {
			if slices.Contains([]string{"connectionString", "password", "redisPassword"}, m.Name) && m.SecretKeyRef == nil {
				t.Errorf("component %s: %s is not taken from a Secret", c.Metadata.Name, m.Name)
			}
		}
		if isActorStore {
			actorStores = append(actorStores, c.Metadata.Name)
			if !strings.HasPrefix(c.Spec.Type, "state.") || c.Spec.Version == "" {
				t.Errorf("actor store %s: type %q version %q", c.Metadata.Name, c.Spec.Type, c.Spec.Version)
			}
		}
		if !slices.Contains(c.Scopes, appID) {
			t.Errorf("component %s is not scoped to %s: %v", c.Metadata.Name, appID, c.Scopes)
		}
	}
	if len(actorStores) != 1 {
		t.Errorf("actor state stores %v, want exactly one", actorStores)
	}

	conf := r.configurations[r.deployment.Spec.Template.Annotations["dapr.io/config"]]
	if conf != nil {
		wf := conf.Spec.Workflow
		if wf == nil || wf.MaxConcurrentWorkflowInvocations <= 0 || wf.MaxConcurrentActivityInvocations <= 0 {
			t.Errorf("configuration %s: workflow limits %+v", conf.Metadata.Name, wf)
		}
		// On by default in Dapr 1.16: off, reminders go back into the
		// actor state store.
		for _, f := range conf.Spec.Features {
			if f.Name == "SchedulerReminders" && !f.Enabled {
				t.Errorf("configuration %s: SchedulerReminders is turned off (see deploy/dapr/README.md)", conf.Metadata.Name)
			}
		}
	}

	if len(r.resiliencies) == 0 {
		t.Error("no Resiliency")
	}
	for _, res := range r.resiliencies {
		if !slices.Contains(res.Scopes, appID) {
			t.Errorf("resiliency %s is not scoped to %s", res.Metadata.Name, appID)
		}
		p := res.Spec.Policies
		for name, target := range res.Spec.Targets.Components {
			if !slices.Contains(actorStores, name) {
				t.Errorf("resiliency %s targets component %s, which is not rendered", res.Metadata.Name, name)
			}
			for _, names := range []daprPolicyNames{target.Outbound, target.Inbound} {
				if _, ok := p.Timeouts[names.Timeout]; names.Timeout != "" && !ok {
					t.Errorf("resiliency %s: no timeout policy %q", res.Metadata.Name, names.Timeout)
				}
				if _, ok := p.Retries[names.Retry]; names.Retry != "" && !ok {
					t.Errorf("resiliency %s: no retry policy %q", res.Metadata.Name, names.Retry)
				}
				if _, ok := p.CircuitBreakers[names.CircuitBreaker]; names.CircuitBreaker != "" && !ok {
					t.Errorf("resiliency %s: no circuit breaker %q", res.Metadata.Name, names.CircuitBreaker)
				}
			}
		}
		for name, d := range p.Timeouts {
			if _, err := time.ParseDuration(d); err != nil {
				t.Errorf("resiliency %s: timeout %s: %v", res.Metadata.Name, name, err)
			}
		}
	}
}

// TestRedisStateStoreAlternative: dapr/statestore-redis.yaml, which users
// list instead of statestore.yaml, is a strict Component under the same
// name (so resiliency.yaml still targets it), with the password from a
// Secret.
func TestRedisStateStoreAlternative(t *testing.T) {
	r := render(t, "overlays/nats")
	b, err := os.ReadFile("dapr/statestore-redis.yaml")
	if err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	var c daprComponent
	if err := decodeStrict(j, &c); err != nil {
		t.Fatalf("statestore-redis.yaml: %v", err)
	}
	if c.Metadata.Name != r.components[0].Metadata.Name || c.Spec.Type != "state.redis" {
		t.Errorf("statestore-redis.yaml: %s of type %s, want %s of type state.redis", c.Metadata.Name, c.Spec.Type, r.components[0].Metadata.Name)
	}
	r.components = []*daprComponent{&c}
	checkDapr(t, r)
}

// TestSystemdConfig: the bridge.yaml the unit runs is valid and keeps its
// database in the unit's StateDirectory.
func TestSystemdConfig(t *testing.T) {
	b, err := os.ReadFile("systemd/bridge.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := validateBridgeConfig(t, "systemd/bridge.yaml", b)
	unit, err := os.ReadFile("systemd/sagabridge.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"StateDirectory=sagabridge", "ProtectSystem=strict", "DynamicUser=yes", "NoNewPrivileges=yes"} {
		if !bytes.Contains(unit, []byte("\n"+line+"\n")) {
			t.Errorf("sagabridge.service lacks %s", line)
		}
	}
	if cfg.Engine.Kind == "embedded" && !strings.HasPrefix(cfg.Engine.Embedded.DBPath, "/var/lib/sagabridge/") {
		t.Errorf("engine.embedded.dbPath %q is outside the StateDirectory, which is all ProtectSystem=strict lets it write", cfg.Engine.Embedded.DBPath)
	}
	env, err := os.ReadFile("systemd/sagabridge.env")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(env, []byte("SAGABRIDGE_CONFIG=/etc/sagabridge/bridge.yaml")) {
		t.Error("sagabridge.env does not point at /etc/sagabridge/bridge.yaml")
	}
}

// TestDockerfile: a static build on a distroless non-root image whose
// default command reads the config where the Deployment mounts it.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("container/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{"CGO_ENABLED=0", "./cmd/sagabridge", "FROM gcr.io/distroless/static", ":nonroot", "USER nonroot", `"/etc/sagabridge/config/bridge.yaml"`} {
		if !strings.Contains(s, want) {
			t.Errorf("Dockerfile lacks %s", want)
		}
	}
	if _, err := os.Stat("../cmd/sagabridge"); err != nil {
		t.Errorf("the Dockerfile builds ./cmd/sagabridge: %v", err)
	}
}

// Probe is the smallest workflow: one activity.
func Probe(ctx *workflow.WorkflowContext) (any, error) {
	var out string
	if err := ctx.CallActivity(Echo, workflow.WithActivityInput("ok")).Await(&out); err != nil {
		return nil, err
	}
	return out, nil
}

// Echo returns its input.
func Echo(ctx workflow.ActivityContext) (any, error) {
	var s string
	if err := ctx.GetInput(&s); err != nil {
		return nil, err
	}
	return s, nil
}

// TestDaprResourcesOnDaprd loads deploy/dapr's Configuration and
// Resiliency into a real daprd (the Component is the harness's own, under
// the same name, pointing at the test's PostgreSQL database) and runs a
// workflow through it.
func TestDaprResourcesOnDaprd(t *testing.T) {
	r := render(t, "overlays/nats")
	if len(r.components) != 1 {
		t.Fatalf("%d components", len(r.components))
	}
	dir := t.TempDir()
	appID := daprtest.NewAppID()
	// The Resiliency is scoped to the production app ID: rescope a copy.
	res, err := os.ReadFile("dapr/resiliency.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(res, &doc); err != nil {
		t.Fatal(err)
	}
	doc["scopes"] = []string{appID}
	res, err = yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	resPath := filepath.Join(dir, "resiliency.yaml")
	if err := os.WriteFile(resPath, res, 0o644); err != nil {
		t.Fatal(err)
	}
	confPath, err := filepath.Abs("dapr/configuration.yaml")
	if err != nil {
		t.Fatal(err)
	}

	sidecar := daprtest.Start(t, daprtest.Options{
		AppID:          appID,
		StateStoreName: r.components[0].Metadata.Name,
		ResourceFiles:  []string{resPath},
		ConfigFiles:    []string{confPath},
		LogLevel:       "debug", // says where reminders go
	})
	ctx := context.Background()
	e, err := engine.New(ctx, engine.Config{Kind: engine.KindDapr, Dapr: engine.DaprConfig{GRPCEndpoint: sidecar.GRPCAddr()}},
		engine.Registry{Workflows: map[string]workflow.Workflow{"Probe": Probe}, Activities: map[string]workflow.Activity{"Echo": Echo}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	if _, err := e.Start(ctx, "Probe", "probe-1", nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := e.Get(ctx, "probe-1")
		if err == nil && st.Finished() {
			if st.RuntimeStatus != "COMPLETED" || st.Output != `"ok"` {
				t.Fatalf("probe: %+v", st)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("probe did not finish: %+v %v", st, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	log := sidecar.Log()
	for _, want := range []string{"Loading Resiliency configuration: sagabridge", "Using Scheduler service for reminders"} {
		if !strings.Contains(log, want) {
			t.Errorf("daprd log lacks %q", want)
		}
	}
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "level=error") || (strings.Contains(line, "level=warning") && strings.Contains(strings.ToLower(line), "resiliency")) {
			t.Errorf("daprd: %s", line)
		}
	}
}

// orderSagas registers the order demo's Go saga and compensations, as
// sagabridge's main does.
func orderSagas(t testing.TB) *registry.Registry {
	t.Helper()
	r, err := order.Sagas()
	if err != nil {
		t.Fatal(err)
	}
	return r
}
