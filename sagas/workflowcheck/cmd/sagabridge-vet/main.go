// Command sagabridge-vet runs the workflowcheck analyzer, which reports
// non-deterministic code in Dapr workflow functions.
//
// It is built with singlechecker, so it works both standalone
//
//	sagabridge-vet ./...
//
// and as a vet tool, which reuses go vet's build caching:
//
//	go vet -vettool=$(which sagabridge-vet) ./...
package main

import (
	"golang.org/x/tools/go/analysis/singlechecker"

	"github.com/sagabridge/sagabridge/sagas/workflowcheck"
)

func main() { singlechecker.Main(workflowcheck.Analyzer) }
