package daprtest

import "syscall"

// sysProcAttr kills the child when the test process dies, so a test
// binary that panics or times out leaves no daprd behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
