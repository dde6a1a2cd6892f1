// Package forbidden exercises every forbidden call inside a workflow.
package forbidden

import (
	crand "crypto/rand"
	"io/ioutil"
	"math/rand"
	randv2 "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/dapr/durabletask-go/workflow"
)

func OrderSaga(ctx *workflow.WorkflowContext) (any, error) {
	start := time.Now()                    // want `time\.Now in workflow function OrderSaga: not replay-safe; use ctx\.CurrentTimeUTC\(\)`
	_ = time.Since(start)                  // want `time\.Since in workflow function OrderSaga: not replay-safe; use ctx\.CurrentTimeUTC\(\)\.Sub\(t\)`
	_ = time.Until(start)                  // want `time\.Until in workflow function OrderSaga: not replay-safe`
	time.Sleep(time.Second)                // want `time\.Sleep in workflow function OrderSaga: not replay-safe; use ctx\.CreateTimer\(d\)\.Await\(nil\)`
	_ = time.After(time.Second)            // want `time\.After in workflow function OrderSaga: not replay-safe; use ctx\.CreateTimer`
	_ = time.Tick(time.Second)             // want `time\.Tick in workflow function OrderSaga`
	_ = time.NewTimer(time.Second)         // want `time\.NewTimer in workflow function OrderSaga`
	_ = time.NewTicker(time.Second)        // want `time\.NewTicker in workflow function OrderSaga`
	time.AfterFunc(time.Second, func() {}) // want `time\.AfterFunc in workflow function OrderSaga`
	now := time.Now                        // want `time\.Now in workflow function OrderSaga`
	_ = now

	// Pure time helpers and methods are fine.
	t := ctx.CurrentTimeUTC()
	_ = t.After(t.Add(time.Minute))
	_ = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	_, _ = time.ParseDuration("1s")
	return nil, nil
}

func Random(ctx *workflow.WorkflowContext) (any, error) {
	_ = rand.Intn(10)                // want `rand\.Intn in workflow function Random: random values differ on replay; generate them in an activity`
	r := rand.New(rand.NewSource(1)) // want `rand\.New in workflow function Random` `rand\.NewSource in workflow function Random`
	_ = r.Intn(3)                    // want `\(\*rand\.Rand\)\.Intn in workflow function Random`
	_ = randv2.IntN(10)              // want `rand\.IntN in workflow function Random`
	buf := make([]byte, 8)
	_, _ = crand.Read(buf) // want `rand\.Read in workflow function Random`
	return nil, nil
}

func IO(ctx *workflow.WorkflowContext) (any, error) {
	_ = os.Getenv("HOME")   // want `os\.Getenv in workflow function IO: i/o and process state are not replay-safe; do it in an activity`
	f, err := os.Open("x")  // want `os\.Open in workflow function IO`
	if os.IsNotExist(err) { // pure helper: allowed
		return nil, err
	}
	_ = f.Close()                         // want `\(\*os\.File\)\.Close in workflow function IO`
	_, _ = ioutil.ReadFile("x")           // want `ioutil\.ReadFile in workflow function IO`
	_, _ = http.Get("http://example.com") // want `http\.Get in workflow function IO`
	_ = http.StatusText(404)              // pure helper: allowed
	h := http.Header{}
	h.Set("a", "b")                          // http.Header methods are map operations: allowed
	_, _ = net.Dial("tcp", "example.com:80") // want `net\.Dial in workflow function IO`
	_ = net.ParseIP("127.0.0.1").String()    // pure helpers: allowed
	_ = exec.Command("ls").Run()             // want `exec\.Command in workflow function IO` `\(\*exec\.Cmd\)\.Run in workflow function IO`
	_ = syscall.Getpid()                     // want `syscall\.Getpid in workflow function IO`
	if err != nil {
		_ = err.Error()
	}
	return nil, nil
}

// NotAWorkflow has no workflow context, so nothing here is reported.
func NotAWorkflow() {
	_ = time.Now()
	_ = rand.Intn(3)
	_ = os.Getenv("HOME")
}
