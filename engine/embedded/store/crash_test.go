package store_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dapr/durabletask-go/api"
	"github.com/dapr/durabletask-go/backend"
	"github.com/dapr/durabletask-go/task"
)

const crashInstances = 150

// crashRegistry: two activities, an external event, a durable timer and a
// third activity. Every activity execution appends a line to logPath.
func crashRegistry(logPath string) *task.TaskRegistry {
	r := task.NewTaskRegistry()
	_ = r.AddOrchestratorN("Saga", func(ctx *task.OrchestrationContext) (any, error) {
		sum := 0
		for i := 1; i <= 3; i++ {
			if i == 3 {
				if err := ctx.WaitForSingleEvent("go", time.Minute).Await(nil); err != nil {
					return nil, err
				}
				if err := ctx.CreateTimer(5 * time.Millisecond).Await(nil); err != nil {
					return nil, err
				}
			}
			var n int
			if err := ctx.CallActivity("Step", task.WithActivityInput(fmt.Sprintf("%s %d", ctx.ID, i))).Await(&n); err != nil {
				return nil, err
			}
			sum += n
		}
		return sum, nil
	})
	_ = r.AddActivityN("Step", func(ctx task.ActivityContext) (any, error) {
		var line string
		if err := ctx.GetInput(&line); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(logPath, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
		if err != nil {
			return nil, err
		}
		_, err = f.WriteString(line + "\n")
		_ = f.Close()
		time.Sleep(time.Millisecond)
		var id string
		var step int
		_, _ = fmt.Sscanf(line, "%s %d", &id, &step)
		return step, err
	})
	return r
}

// TestCrashRecovery runs sagas in a child process, SIGKILLs it mid-run,
// reopens the database and checks that every saga finishes exactly once:
// activities may run again (at least once), but each instance completes
// once, with each activity's result recorded once.
func TestCrashRecovery(t *testing.T) {
	if dir := os.Getenv("STORE_CRASH_CHILD"); dir != "" {
		crashChild(t, dir)
		return
	}
	if testing.Short() {
		t.Skip("crash test")
	}
	dir := t.TempDir()
	logPath := filepath.Join(dir, "activities.log")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashRecovery$", "-test.v")
	cmd.Env = append(os.Environ(), "STORE_CRASH_CHILD="+dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it once every saga was started and about half the activities
	// ran.
	deadline := time.Now().Add(60 * time.Second)
	for !exists(filepath.Join(dir, "created")) || countLines(logPath) < crashInstances*3/2 {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("child made no progress:\n%s", out.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	killedAt := countLines(logPath)
	t.Logf("child killed after %d activity executions", killedAt)

	h := startHubWith(t, filepath.Join(dir, "wf.db"), 16, crashRegistry(logPath))
	defer h.stop()
	ctx := context.Background()
	for i := 0; i < crashInstances; i++ {
		id := api.InstanceID(fmt.Sprint("s", i))
		md := waitStatus(t, h.be, id, api.RUNTIME_STATUS_COMPLETED)
		if md.GetOutput().GetValue() != "6" {
			t.Fatalf("%s output %v", id, md.GetOutput())
		}
		st, err := h.be.GetOrchestrationRuntimeState(ctx, &backend.OrchestrationWorkItem{InstanceID: id})
		if err != nil {
			t.Fatal(err)
		}
		var started, completed, scheduled int
		done := map[int32]int{}
		for _, e := range st.OldEvents {
			switch {
			case e.GetExecutionStarted() != nil:
				started++
			case e.GetExecutionCompleted() != nil:
				completed++
			case e.GetTaskScheduled() != nil:
				scheduled++
			case e.GetTaskCompleted() != nil:
				done[e.GetTaskCompleted().TaskScheduledId]++
			}
		}
		if started != 1 || completed != 1 || scheduled != 3 || len(done) != 3 {
			t.Fatalf("%s history: started %d completed %d scheduled %d results %v", id, started, completed, scheduled, done)
		}
		for task, n := range done {
			if n != 1 {
				t.Fatalf("%s: task %d completed %d times", id, task, n)
			}
		}
	}
	// Activities ran at least once each; those cut short ran again.
	runs := map[string]int{}
	data, _ := os.ReadFile(logPath)
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		runs[line]++
	}
	again := 0
	for i := 0; i < crashInstances; i++ {
		for s := 1; s <= 3; s++ {
			n := runs[fmt.Sprintf("s%d %d", i, s)]
			if n < 1 {
				t.Fatalf("s%d step %d never ran", i, s)
			}
			again += n - 1
		}
	}
	t.Logf("%d activity executions for %d activities: %d ran again after the crash", countLines(logPath), crashInstances*3, again)
}

func crashChild(t *testing.T, dir string) {
	h := startHubWith(t, filepath.Join(dir, "wf.db"), 16, crashRegistry(filepath.Join(dir, "activities.log")))
	ctx := context.Background()
	for i := 0; i < crashInstances; i++ {
		id := api.InstanceID(fmt.Sprint("s", i))
		if _, err := h.client.ScheduleNewOrchestration(ctx, "Saga", api.WithInstanceID(id)); err != nil {
			t.Fatal(err)
		}
		if err := h.client.RaiseEvent(ctx, id, "go"); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "created"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	select {} // until killed
}

func countLines(path string) int {
	b, _ := os.ReadFile(path)
	return bytes.Count(b, []byte("\n"))
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
