package testenv

import "syscall"

// rieSysProcAttr puts the emulator in a process group of its own, so that stopping it
// reaches everything it started in that group, and has the kernel kill it should the test
// binary die without running its cleanups (a -timeout panic, a kill). The signal is tied to
// the thread that started the emulator, which lives as long as the process unless a
// goroutine locked to it exits; a bootstrap left behind exits by itself once the emulator's
// runtime API is gone.
func rieSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
