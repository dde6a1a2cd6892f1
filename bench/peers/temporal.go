package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/metrics"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
)

const (
	temporalNamespace = "bench"
	temporalQueue     = "bench"
)

// temporalSystem is a Temporal server in this process, as the Temporal
// CLI's dev server runs one (all four services, one history shard, SQLite),
// with the Go SDK's client and worker connected to it over loopback gRPC.
type temporalSystem struct {
	server temporal.Server
	client client.Client
	worker worker.Worker
}

// startTemporal starts the server on a SQLite file in dir (WAL,
// synchronous=normal: the durability of sagabridge's embedded engine), or
// in memory when memory is set (what go.temporal.io/server/temporaltest
// runs).
func startTemporal(dir string, memory bool, out *outcomes) (*temporalSystem, error) {
	sqlCfg := config.SQL{
		PluginName:        sqliteplugin.PluginName,
		DatabaseName:      filepath.Join(dir, "temporal.db"),
		ConnectAttributes: map[string]string{"mode": "rwc", "journal_mode": "wal", "synchronous": "normal"},
	}
	if memory {
		sqlCfg.DatabaseName = "bench"
		sqlCfg.ConnectAttributes = map[string]string{"mode": "memory", "cache": "shared"}
	} else if err := sqliteschema.SetupSchema(&sqlCfg); err != nil {
		return nil, fmt.Errorf("temporal schema: %w", err)
	}
	ports, err := freePorts(9)
	if err != nil {
		return nil, err
	}
	frontend := fmt.Sprintf("127.0.0.1:%d", ports[0])
	svc := func(grpc, membership int) config.Service {
		return config.Service{RPC: config.RPC{GRPCPort: grpc, MembershipPort: membership, BindOnIP: "127.0.0.1"}}
	}
	cfg := &config.Config{
		Global: config.Global{
			Membership: config.Membership{MaxJoinDuration: 30 * time.Second, BroadcastAddress: "127.0.0.1"},
			PProf:      config.PProf{Port: ports[8]},
		},
		Persistence: config.Persistence{
			DefaultStore:     sqliteplugin.PluginName,
			VisibilityStore:  sqliteplugin.PluginName,
			NumHistoryShards: 1,
			DataStores:       map[string]config.DataStore{sqliteplugin.PluginName: {SQL: &sqlCfg}},
		},
		ClusterMetadata: &cluster.Config{
			FailoverVersionIncrement: 10,
			MasterClusterName:        "active",
			CurrentClusterName:       "active",
			ClusterInformation: map[string]cluster.ClusterInformation{
				"active": {Enabled: true, InitialFailoverVersion: 1, RPCAddress: frontend},
			},
		},
		DCRedirectionPolicy: config.DCRedirectionPolicy{Policy: "noop"},
		Services: map[string]config.Service{
			"frontend": svc(ports[0], ports[1]),
			"history":  svc(ports[2], ports[3]),
			"matching": svc(ports[4], ports[5]),
			"worker":   svc(ports[6], ports[7]),
		},
		Archival: config.Archival{
			History:    config.HistoryArchival{State: "disabled"},
			Visibility: config.VisibilityArchival{State: "disabled"},
		},
		NamespaceDefaults: config.NamespaceDefaults{Archival: config.ArchivalNamespaceDefaults{
			History:    config.HistoryArchivalNamespaceDefaults{State: "disabled"},
			Visibility: config.VisibilityArchivalNamespaceDefaults{State: "disabled"},
		}},
		PublicClient: config.PublicClient{HostPort: frontend},
	}
	ns, err := sqliteschema.NewNamespaceConfig("active", temporalNamespace, false, nil)
	if err != nil {
		return nil, err
	}
	if err := sqliteschema.CreateNamespaces(&sqlCfg, ns); err != nil {
		return nil, fmt.Errorf("temporal namespace: %w", err)
	}
	logger := log.NewNoopLogger()
	authorizer, err := authorization.GetAuthorizerFromConfig(&cfg.Global.Authorization)
	if err != nil {
		return nil, err
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&cfg.Global.Authorization, logger)
	if err != nil {
		return nil, err
	}
	srv, err := temporal.NewServer(
		temporal.WithConfig(cfg),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
		temporal.WithCustomMetricsHandler(metrics.NoopMetricsHandler),
	)
	if err != nil {
		return nil, fmt.Errorf("temporal server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("temporal server start: %w", err)
	}
	s := &temporalSystem{server: srv}
	s.client, err = client.Dial(client.Options{HostPort: frontend, Namespace: temporalNamespace, Logger: sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		s.close()
		return nil, fmt.Errorf("temporal client: %w", err)
	}
	s.worker = worker.New(s.client, temporalQueue, worker.Options{})
	s.worker.RegisterWorkflowWithOptions(temporalSaga, workflow.RegisterOptions{Name: sagaName})
	s.worker.RegisterActivityWithOptions(func(_ context.Context, n int) (int, error) { return participant(n), nil },
		activity.RegisterOptions{Name: "Step"})
	s.worker.RegisterActivityWithOptions(func(_ context.Context, id string) error { out.deliver(id); return nil },
		activity.RegisterOptions{Name: "Outcome"})
	if err := s.worker.Start(); err != nil {
		s.close()
		return nil, fmt.Errorf("temporal worker: %w", err)
	}
	return s, nil
}

func temporalSaga(ctx workflow.Context, id string) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	for i := 1; i <= 3; i++ {
		var n int
		if err := workflow.ExecuteActivity(ctx, "Step", i).Get(ctx, &n); err != nil {
			return fmt.Errorf("step %d: %w", i, err)
		}
	}
	var approved bool
	if ok, _ := workflow.GetSignalChannel(ctx, approvalEvent).ReceiveWithTimeout(ctx, approvalWait, &approved); !ok {
		return fmt.Errorf("approval: no event in %s", approvalWait)
	}
	return workflow.ExecuteActivity(ctx, "Outcome", id).Get(ctx, nil)
}

func (s *temporalSystem) submit(ctx context.Context, id string) error {
	if _, err := s.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: temporalQueue}, sagaName, id); err != nil {
		return err
	}
	return s.client.SignalWorkflow(ctx, id, "", approvalEvent, true)
}

func (s *temporalSystem) close() {
	if s.worker != nil {
		s.worker.Stop()
	}
	if s.client != nil {
		s.client.Close()
	}
	_ = s.server.Stop()
}

// freePorts reserves n loopback ports and releases them for the caller.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}
