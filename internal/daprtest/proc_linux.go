package daprtest

import "syscall"

// sysProcAttr kills the child when the test process dies, so a test
// binary that panics or times out leaves no daprd behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// sysProcAttrAs is sysProcAttr for a child that runs as another user (the
// kernel keeps the death signal: Go sets it after switching).
func sysProcAttrAs(uid, gid uint32) (*syscall.SysProcAttr, error) {
	attr := sysProcAttr()
	attr.Credential = &syscall.Credential{Uid: uid, Gid: gid}
	return attr, nil
}
