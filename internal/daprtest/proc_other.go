//go:build !linux

package daprtest

import (
	"errors"
	"syscall"
)

func sysProcAttr() *syscall.SysProcAttr { return nil }

func sysProcAttrAs(uid, gid uint32) (*syscall.SysProcAttr, error) {
	return nil, errors.New("starting a process as another user is implemented on Linux only")
}
