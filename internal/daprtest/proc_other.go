//go:build !linux

package daprtest

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }
