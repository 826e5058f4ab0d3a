package testenv

import (
	"path/filepath"
	"testing"

	"github.com/runnerhub/webhooks/internal/storage/embedded"
)

// Embedded opens a fresh embedded database in the test's temporary directory, closed
// when the test ends.
func Embedded(t testing.TB) *embedded.DB {
	t.Helper()
	db, err := embedded.Open(filepath.Join(t.TempDir(), "runnerhub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
