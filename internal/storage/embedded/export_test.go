package embedded

import (
	"testing"
	"time"
)

// SetLockTimeout shortens how long Open waits for a lock, for the test t.
func SetLockTimeout(t *testing.T, d time.Duration) {
	old := lockTimeout
	lockTimeout = d
	t.Cleanup(func() { lockTimeout = old })
}
