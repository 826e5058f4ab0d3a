//go:build !linux

package testenv

import "syscall"

// rieSysProcAttr puts the emulator in a process group of its own. Unused in practice:
// StartLambda skips off Linux, where the emulator and the bootstraps do not run.
func rieSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
