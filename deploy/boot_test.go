package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/sagabridge/sagabridge/bridge/config"
	"github.com/sagabridge/sagabridge/internal/daprtest"
	"github.com/sagabridge/sagabridge/sagas/order"
	"github.com/sagabridge/sagabridge/sagas/progress"
	"github.com/sagabridge/sagabridge/topics/natsjs"
)

// userSecrets are the Secrets the manifests reference but do not render:
// the kustomization files tell users to create them. The boot test
// creates them with these keys (values made up per run), so a reference
// to any other Secret, or a key not listed here, fails the test.
var userSecrets = map[string][]string{
	"sagabridge-admin": {"token"},
	"sagabridge-kafka": {"ca.crt", "password"},
}

// TestOverlaysBoot runs the real sagabridge binary the way each overlay's
// Deployment would: the ConfigMap and the Secrets written where the pod
// mounts them, the container's args and env (resource and secret
// references resolved), DAPR_GRPC_PORT as Dapr's injector sets it, against
// a real daprd, and a real broker (nats-server; kfake with TLS and SCRAM on
// Kafka) standing in for the cluster's. The startup, liveness and
// readiness probes must pass as declared, Prometheus must scrape the
// Service's metrics port without a token, the admin API must refuse a
// request without the Secret's token and serve one with it, and SIGTERM
// must end the worker cleanly.
//
// What a machine is not a pod differs in three places only, each mapped
// explicitly: mount paths live under a temporary root, the cluster's
// broker addresses point at the test's broker, and listen ports are free
// ports (the host part, all interfaces, is kept).
func TestOverlaysBoot(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the worker and starts daprd")
	}
	dirs, err := filepath.Glob("overlays/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("overlays: %v %v", dirs, err)
	}
	bin := buildWorker(t)
	sidecar := daprtest.Start(t, daprtest.Options{})
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			bootOverlay(t, dir, bin, sidecar)
		})
	}
}

func bootOverlay(t *testing.T, dir, bin string, sidecar *daprtest.Sidecar) {
	r := render(t, dir)
	c := r.deployment.Spec.Template.Spec.Containers[0]
	shipped := mountedConfig(t, r, c)
	cfg, err := config.Parse("shipped", shipped)
	if err != nil {
		t.Fatal(err)
	}

	secrets := map[string]map[string][]byte{}
	for name, s := range r.secrets {
		secrets[name] = s.Data
	}
	for name, keys := range userSecrets {
		secrets[name] = map[string][]byte{}
		for _, k := range keys {
			secrets[name][k] = []byte(randomHex(t))
		}
	}
	checkUserSecretsDocumented(t, dir)

	pod := &podEnv{root: t.TempDir(), addrs: map[string]string{}, ports: map[int32]int{}}
	switch cfg.Broker.Kind {
	case "nats":
		srv, err := natsjs.StartServer(natsjs.ServerConfig{StoreDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Shutdown)
		pod.mapAddr(t, cfg.Broker.NATS.URL, strings.TrimPrefix(srv.ClientURL(), "nats://"))
	case "kafka":
		caPEM, serverTLS := testCA(t)
		secrets["sagabridge-kafka"]["ca.crt"] = caPEM
		k := cfg.Broker.Kafka
		opts := []kfake.Opt{
			kfake.NumBrokers(len(k.Brokers)),
			kfake.SeedTopics(1, provisionedTopics(cfg)...),
		}
		if k.TLS.Enable {
			opts = append(opts, kfake.TLS(serverTLS))
		}
		if k.SASL.Mechanism != "" {
			opts = append(opts, kfake.EnableSASL(), kfake.Superuser(k.SASL.Mechanism, k.SASL.Username, string(secrets["sagabridge-kafka"]["password"])))
		}
		cluster, err := kfake.NewCluster(opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cluster.Close)
		for i, b := range k.Brokers {
			pod.mapAddr(t, b, cluster.ListenAddrs()[i])
		}
	default:
		t.Fatalf("broker kind %q: no test broker for it", cfg.Broker.Kind)
	}

	for _, p := range c.Ports {
		pod.ports[p.ContainerPort] = freePort(t)
	}
	pod.mount(t, r, c, secrets)
	args := make([]string, len(c.Args))
	for i, a := range c.Args {
		args[i] = pod.path(a)
	}
	env := pod.env(t, c, secrets)
	env = append(env, "DAPR_GRPC_PORT="+portOf(t, sidecar.GRPCAddr()),
		// As the injector sets it under dapr.io/api-token-secret; a
		// daprd without a token of its own ignores it.
		"DAPR_API_TOKEN="+randomHex(t))

	logPath := filepath.Join(t.TempDir(), "worker.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Dir = pod.root
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("worker log:\n%s", b)
		}
	})

	// The probes, as the kubelet runs them.
	probe := func(name string, p *corev1.Probe, within time.Duration) {
		t.Helper()
		if p == nil || p.HTTPGet == nil {
			t.Fatalf("%s probe: %+v", name, p)
		}
		url := fmt.Sprintf("http://127.0.0.1:%d%s", pod.hostPort(t, c, p.HTTPGet.Port.String()), p.HTTPGet.Path)
		deadline := time.Now().Add(within)
		for {
			code, body, err := get(url, "")
			if code == http.StatusOK {
				return
			}
			select {
			case err := <-exited:
				t.Fatalf("the worker exited before its %s probe passed: %v", name, err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s probe %s: %d %s %v", name, url, code, body, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	probe("startup", c.StartupProbe, 60*time.Second)
	probe("liveness", c.LivenessProbe, 5*time.Second)
	probe("readiness", c.ReadinessProbe, 60*time.Second)

	// Prometheus scrapes the Service's metrics port with no credentials.
	var scrape corev1.ServicePort
	for _, p := range r.service.Spec.Ports {
		if p.Name == "metrics" {
			scrape = p
		}
	}
	code, body, err := get(fmt.Sprintf("http://127.0.0.1:%d/metrics", pod.hostPort(t, c, scrape.TargetPort.String())), "")
	if code != http.StatusOK || !strings.Contains(body, "sagabridge_build_info") {
		t.Fatalf("scrape without a token: %d %v\n%.400s", code, err, body)
	}

	// The admin API wants the Secret's token.
	adminURL := fmt.Sprintf("http://127.0.0.1:%d/v1/info", pod.hostPort(t, c, "admin"))
	if code, body, _ := get(adminURL, ""); code != http.StatusUnauthorized {
		t.Errorf("admin API without a token: %d %s", code, body)
	}
	code, body, err = get(adminURL, string(secrets["sagabridge-admin"]["token"]))
	if code != http.StatusOK || !strings.Contains(body, `"brokerKind": "`+cfg.Broker.Kind+`"`) {
		t.Errorf("admin API with the Secret's token: %d %v %s", code, err, body)
	}

	// SIGTERM, as the kubelet stops a pod: a clean exit within the grace
	// period.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	grace := 30 * time.Second
	if g := r.deployment.Spec.Template.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("worker exit after SIGTERM: %v", err)
		}
	case <-time.After(grace):
		t.Errorf("worker still running %s after SIGTERM", grace)
	}
	checkLog(t, logPath)
}

// checkLog: every line is a JSON log record with an RFC 3339 time, and
// none is at error level: a clean boot and stop has nothing to report.
// The engine library's lines are zap records too.
func checkLog(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec struct {
			Level string `json:"level"`
			TS    string `json:"ts"`
			Msg   string `json:"msg"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil || rec.Level == "" {
			t.Errorf("log line is not a zap record: %s", sc.Text())
			continue
		}
		if _, err := time.Parse(time.RFC3339Nano, rec.TS); err != nil {
			t.Errorf("log time %q is not RFC 3339: %s", rec.TS, sc.Text())
		}
		if rec.Level == "error" || rec.Level == "fatal" || rec.Level == "panic" {
			t.Errorf("error logged during a clean boot: %s", sc.Text())
		}
	}
}

// mountedConfig is the bridge.yaml the container's -c flag names.
func mountedConfig(t *testing.T, r rendered, c corev1.Container) []byte {
	t.Helper()
	var cfgPath string
	for i, a := range c.Args {
		if (a == "-c" || a == "--config") && i+1 < len(c.Args) {
			cfgPath = c.Args[i+1]
		}
	}
	for _, m := range c.VolumeMounts {
		if m.MountPath != filepath.Dir(cfgPath) {
			continue
		}
		for _, v := range r.deployment.Spec.Template.Spec.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil {
				if cm := r.configMaps[v.ConfigMap.Name]; cm != nil {
					return []byte(cm.Data[filepath.Base(cfgPath)])
				}
			}
		}
	}
	t.Fatalf("no ConfigMap holds %q", cfgPath)
	return nil
}

// checkUserSecretsDocumented: every Secret users create is named in a
// kustomization.yaml the overlay builds on, where they read it.
func checkUserSecretsDocumented(t *testing.T, dir string) {
	t.Helper()
	var docs []byte
	for _, f := range []string{filepath.Join(dir, "kustomization.yaml"), "base/kustomization.yaml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, b...)
	}
	for name, keys := range userSecrets {
		if !bytes.Contains(docs, []byte(name)) {
			continue // not this overlay's; a reference to it fails in mount
		}
		for _, k := range keys {
			if !bytes.Contains(docs, []byte(`"`+k+`"`)) {
				t.Errorf("the kustomization files name Secret %s but not its key %q", name, k)
			}
		}
	}
}

// podEnv maps the pod's view (paths, cluster addresses, ports) onto this
// machine.
type podEnv struct {
	root   string
	mounts []string
	// addrs maps a cluster host:port to the test broker's.
	addrs map[string]string
	// ports maps a container port to the host port it is served on.
	ports map[int32]int
}

func (p *podEnv) mapAddr(t *testing.T, clusterURL, local string) {
	t.Helper()
	hostPort := clusterURL
	if i := strings.Index(hostPort, "://"); i >= 0 {
		hostPort = hostPort[i+3:]
	}
	host, _, err := net.SplitHostPort(hostPort)
	if err != nil {
		t.Fatalf("broker address %q: %v", clusterURL, err)
	}
	if !strings.HasSuffix(host, ".svc.cluster.local") {
		t.Fatalf("broker address %q is not a cluster service name", clusterURL)
	}
	p.addrs[hostPort] = local
}

// path maps a path inside the pod to the file standing in for it.
func (p *podEnv) path(s string) string {
	for _, m := range p.mounts {
		if s == m || strings.HasPrefix(s, m+"/") {
			return filepath.Join(p.root, s)
		}
	}
	return s
}

// mount writes each mounted volume's content under root.
func (p *podEnv) mount(t *testing.T, r rendered, c corev1.Container, secrets map[string]map[string][]byte) {
	t.Helper()
	vols := map[string]corev1.Volume{}
	for _, v := range r.deployment.Spec.Template.Spec.Volumes {
		vols[v.Name] = v
	}
	for _, m := range c.VolumeMounts {
		p.mounts = append(p.mounts, m.MountPath)
	}
	for _, m := range c.VolumeMounts {
		v, ok := vols[m.Name]
		if !ok {
			t.Fatalf("volume mount %s names no volume", m.Name)
		}
		dir := filepath.Join(p.root, m.MountPath)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		var files map[string][]byte
		var items []corev1.KeyToPath
		switch {
		case v.ConfigMap != nil:
			cm := r.configMaps[v.ConfigMap.Name]
			if cm == nil {
				t.Fatalf("volume %s: ConfigMap %s is not rendered", v.Name, v.ConfigMap.Name)
			}
			files = map[string][]byte{}
			for k, s := range cm.Data {
				files[k] = []byte(p.configText(t, k, s))
			}
			items = v.ConfigMap.Items
		case v.Secret != nil:
			data, ok := secrets[v.Secret.SecretName]
			if !ok {
				t.Fatalf("volume %s: Secret %s is neither rendered nor one users are told to create", v.Name, v.Secret.SecretName)
			}
			files = data
			items = v.Secret.Items
		case v.EmptyDir != nil:
			continue
		default:
			t.Fatalf("volume %s: a kind the boot test does not know", v.Name)
		}
		if len(items) > 0 {
			picked := map[string][]byte{}
			for _, it := range items {
				picked[it.Path] = files[it.Key]
			}
			files = picked
		}
		for k, b := range files {
			if err := os.WriteFile(filepath.Join(dir, k), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// configText maps a mounted bridge.yaml onto the machine: paths under
// mounts, cluster broker addresses and listen ports. Other files pass as
// they are.
func (p *podEnv) configText(t *testing.T, name, s string) string {
	t.Helper()
	if !strings.HasSuffix(name, ".yaml") {
		return s
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(s), &doc); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var walk func(n *yaml.Node, key string)
	walk = func(n *yaml.Node, key string) {
		switch n.Kind {
		case yaml.DocumentNode, yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c, key)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(n.Content[i+1], n.Content[i].Value)
			}
		case yaml.ScalarNode:
			if key == "listen" {
				host, port, err := net.SplitHostPort(n.Value)
				if err != nil {
					t.Fatalf("%s: listen %q: %v", name, n.Value, err)
				}
				cp, _ := strconv.Atoi(port)
				hp, ok := p.ports[int32(cp)]
				if !ok {
					t.Fatalf("%s: listen %q: the container declares no port %s", name, n.Value, port)
				}
				n.Value = net.JoinHostPort(host, strconv.Itoa(hp))
				return
			}
			n.Value = p.path(n.Value)
			for from, to := range p.addrs {
				n.Value = strings.ReplaceAll(n.Value, from, to)
			}
		}
	}
	walk(&doc, "")
	b, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// env resolves the container's environment as the kubelet would, with
// nothing from the test's own.
func (p *podEnv) env(t *testing.T, c corev1.Container, secrets map[string]map[string][]byte) []string {
	t.Helper()
	out := []string{"HOME=/tmp"}
	for _, e := range c.Env {
		v := e.Value
		if f := e.ValueFrom; f != nil {
			switch {
			case f.SecretKeyRef != nil:
				b, ok := secrets[f.SecretKeyRef.Name][f.SecretKeyRef.Key]
				if !ok {
					t.Fatalf("env %s: Secret %s key %s is not provided", e.Name, f.SecretKeyRef.Name, f.SecretKeyRef.Key)
				}
				v = string(b)
			case f.ResourceFieldRef != nil:
				v = resourceValue(t, c, f.ResourceFieldRef)
			default:
				t.Fatalf("env %s: a source the boot test does not know: %+v", e.Name, f)
			}
		}
		out = append(out, e.Name+"="+p.path(v))
	}
	return out
}

func resourceValue(t *testing.T, c corev1.Container, ref *corev1.ResourceFieldSelector) string {
	t.Helper()
	var q resource.Quantity
	switch ref.Resource {
	case "limits.memory":
		q = *c.Resources.Limits.Memory()
	case "requests.memory":
		q = *c.Resources.Requests.Memory()
	case "limits.cpu":
		q = *c.Resources.Limits.Cpu()
	case "requests.cpu":
		q = *c.Resources.Requests.Cpu()
	default:
		t.Fatalf("resourceFieldRef %s: not resolved by the boot test", ref.Resource)
	}
	div := int64(1)
	if !ref.Divisor.IsZero() {
		div = ref.Divisor.Value()
	}
	if strings.HasSuffix(ref.Resource, "cpu") {
		return strconv.FormatInt((q.MilliValue()+1000*div-1)/(1000*div), 10)
	}
	return strconv.FormatInt(q.Value()/div, 10)
}

// hostPort is where the container's port (by name or number) is served.
func (p *podEnv) hostPort(t *testing.T, c corev1.Container, port string) int {
	t.Helper()
	for _, cp := range c.Ports {
		if cp.Name == port || strconv.Itoa(int(cp.ContainerPort)) == port {
			return p.ports[cp.ContainerPort]
		}
	}
	t.Fatalf("container has no port %q", port)
	return 0
}

// provisionedTopics are the topics a production Kafka has before the
// worker starts (the overlay does not auto-create them).
func provisionedTopics(cfg *config.Config) []string {
	ts := []string{cfg.Outcomes.Topic, cfg.DLQ.Topic, progress.DefaultTopic,
		order.InventoryCommands, order.PaymentCommands, order.ShippingCommands}
	for _, r := range cfg.Routes {
		ts = append(ts, r.Topics...)
	}
	slices.Sort(ts)
	return slices.Compact(ts)
}

func buildWorker(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := filepath.Join(t.TempDir(), "sagabridge")
	cmd := exec.Command(goBin, "build", "-ldflags", "-X main.version=boot-test", "-o", out, "../cmd/sagabridge")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the worker: %v\n%s", err, b)
	}
	return out
}

func get(url, token string) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// testCA is a self-signed CA that is also the brokers' certificate, for
// 127.0.0.1, where the test's brokers listen.
func testCA(t *testing.T) (caPEM []byte, server *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "boot-test kafka"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(caPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	return caPEM, &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
}
