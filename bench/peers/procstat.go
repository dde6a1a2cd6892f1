package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// clockTicks is USER_HZ, the unit of CPU times in /proc/<pid>/stat; 100 on
// every Linux this runs on (sysconf(_SC_CLK_TCK) needs cgo).
const clockTicks = 100

// selfCPUSeconds is this process's user + system CPU time.
func selfCPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// procStat is what the harness reads of another process in /proc/<pid>/stat.
type procStat struct {
	ppid int
	// cpu is utime + stime; childCPU is cutime + cstime: the CPU of
	// children the process has reaped, which is where a PostgreSQL
	// backend's time goes when it exits.
	cpu, childCPU float64
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// The command name is in parentheses and may hold spaces: fields
	// start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: no command field", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); ppid is field 4, utime..cstime 14..17.
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	num := func(k int) float64 { v, _ := strconv.ParseFloat(f[k-3], 64); return v }
	ppid, _ := strconv.Atoi(f[1])
	return procStat{
		ppid:     ppid,
		cpu:      (num(14) + num(15)) / clockTicks,
		childCPU: (num(16) + num(17)) / clockTicks,
	}, nil
}

// processTree lists root and every live descendant of it.
func processTree(root int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readProcStat(pid)
		if err != nil {
			continue
		}
		children[st.ppid] = append(children[st.ppid], pid)
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// treeCPUSeconds is the CPU a server has spent so far: its processes'
// own time plus what its exited children spent (reaped into the root's
// cutime/cstime).
func treeCPUSeconds(root int) float64 {
	var total float64
	for _, pid := range processTree(root) {
		st, err := readProcStat(pid)
		if err != nil {
			continue
		}
		total += st.cpu
		if pid == root {
			total += st.childCPU
		}
	}
	return total
}

// treePSSMiB is the proportional set size of a server's processes: shared
// memory (PostgreSQL's buffers) counted once across them, not once per
// backend as RSS would.
func treePSSMiB(root int) float64 {
	var kib float64
	for _, pid := range processTree(root) {
		f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "smaps_rollup"))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "Pss:"); ok {
				v, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
				kib += v
				break
			}
		}
		f.Close()
	}
	return kib / 1024
}

// resetPeakRSS resets this process's high-water mark (Linux clear_refs 5).
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSSMiB is this process's high-water mark since the last reset.
func peakRSSMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}
