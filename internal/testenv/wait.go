package testenv

import (
	"testing"
	"time"
)

// WaitUntil calls check every poll until it reports done, for up to d, and then fails t
// with what it waited for and check's last reason.
func WaitUntil(t testing.TB, d, poll time.Duration, what string, check func() (why string, done bool)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		why, done := check()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s after %v: %s", what, d, why)
		}
		time.Sleep(poll)
	}
}
