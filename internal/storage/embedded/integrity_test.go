package embedded_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/storage/embedded"
	"github.com/runnerhub/webhooks/internal/testenv"
	bolt "go.etcd.io/bbolt"
)

// usedDatabase is a database file that held deliveries, closed, in a directory of its own:
// enough small records that most of its pages are tree pages (branches and leaves), which
// is what bbolt can check.
func usedDatabase(t *testing.T) (path string, keys []delivery.Key) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "runnerhub.db")
	db := openAt(t, path)
	const n, writers = 3000, 32
	keys = make([]delivery.Key, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range writers {
		wg.Go(func() {
			for i := w; i < n; i += writers {
				rec := record(fmt.Sprintf("used-%05d", i))
				rec.Payload = fmt.Appendf(nil, `{"n":%d,"pad":%q}`, i, strings.Repeat("x", 150))
				keys[i] = rec.Key
				if _, err := db.Store().Create(context.Background(), rec); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path, keys
}

// Each way a database file goes bad is refused at start with one error that names the
// file and says what to do, never an empty database, a SIGBUS or a bbolt panic.
func TestOpenRefusesLostOrDamagedDatabase(t *testing.T) {
	cases := []struct {
		name string
		// spoil damages the closed database at path.
		spoil func(t *testing.T, path string)
		want  error
		// says are what the message must contain, besides the file's path.
		says []string
	}{
		{"Removed", func(t *testing.T, path string) { must(t, os.Remove(path)) },
			embedded.ErrMissing, []string{"does not exist", "backup", "delete ", embedded.MarkerSuffix}},
		{"TruncatedToZero", func(t *testing.T, path string) { must(t, os.Truncate(path, 0)) },
			embedded.ErrMissing, []string{"empty (0 bytes)", "backup", "start afresh"}},
		{"TruncatedToZeroWithoutMarker", func(t *testing.T, path string) {
			must(t, os.Truncate(path, 0))
			must(t, os.Remove(path+embedded.MarkerSuffix))
		}, embedded.ErrMissing, []string{"empty (0 bytes)"}},
		{"TruncatedToHalf", func(t *testing.T, path string) { must(t, os.Truncate(path, size(t, path)/2)) },
			embedded.ErrCorrupt, []string{"cut short", "backup", "start afresh"}},
		{"TruncatedInsideMetaPages", func(t *testing.T, path string) { must(t, os.Truncate(path, 100)) },
			embedded.ErrCorrupt, []string{"backup"}},
		{"MetaPagesScribbled", func(t *testing.T, path string) { scribble(t, path, 0, 2*4096) },
			embedded.ErrCorrupt, []string{"backup"}},
		{"TreePagesScribbled", func(t *testing.T, path string) {
			n := size(t, path)
			scribble(t, path, n/4, n/2)
		}, embedded.ErrCorrupt, []string{"backup"}},
		{"NotADatabase", func(t *testing.T, path string) {
			must(t, os.WriteFile(path, bytes.Repeat([]byte("not bbolt "), 2000), 0o600))
		}, embedded.ErrCorrupt, []string{"backup"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path, _ := usedDatabase(t)
			c.spoil(t, path)
			db, err := embedded.Open(path)
			if err == nil {
				db.Close()
				t.Fatalf("Open of a %s database succeeded", c.name)
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("Open: %v; want %v", err, c.want)
			}
			for _, other := range []error{embedded.ErrMissing, embedded.ErrCorrupt, embedded.ErrLocked} {
				if other != c.want && errors.Is(err, other) {
					t.Errorf("Open: %v is also %v", err, other)
				}
			}
			msg := err.Error()
			t.Log(msg)
			for _, s := range append(c.says, path) {
				if !strings.Contains(msg, s) {
					t.Errorf("message %q does not say %q", msg, s)
				}
			}
			if strings.Contains(msg, "goroutine ") || strings.Count(msg, "\n") > 0 {
				t.Errorf("message is not one line: %q", msg)
			}
		})
	}
}

// Starting afresh is deliberate: deleting the marker the refusal names.
func TestOpenAfreshAfterDeletingMarker(t *testing.T) {
	path, keys := usedDatabase(t)
	must(t, os.Remove(path))
	if _, err := embedded.Open(path); !errors.Is(err, embedded.ErrMissing) {
		t.Fatalf("Open without the database: %v, want ErrMissing", err)
	}
	must(t, os.Remove(path+embedded.MarkerSuffix))
	db, err := embedded.Open(path)
	if err != nil {
		t.Fatalf("Open after deleting the marker: %v", err)
	}
	defer db.Close()
	if _, err := db.Store().Get(context.Background(), keys[0]); !errors.Is(err, delivery.ErrNotFound) {
		t.Fatalf("fresh database: Get = %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(path + embedded.MarkerSuffix); err != nil {
		t.Fatalf("the fresh database has no marker: %v", err)
	}
}

// Another process holding the file is told apart from damage.
func TestOpenLockedByAnotherHandle(t *testing.T) {
	path, _ := usedDatabase(t)
	other, err := bolt.Open(path, 0o600, nil) // an flock of its own, as another process has
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	embedded.SetLockTimeout(t, 100*time.Millisecond)
	db, err := embedded.Open(path)
	if err == nil {
		db.Close()
		t.Fatal("Open of a locked database succeeded")
	}
	if !errors.Is(err, embedded.ErrLocked) || errors.Is(err, embedded.ErrCorrupt) {
		t.Fatalf("Open: %v; want ErrLocked only", err)
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "another runnerhub") {
		t.Fatalf("message %q names neither the file nor the likely cause", err)
	}
}

// A backup taken while writes go on is a sound database holding every delivery recorded
// before it began.
func TestWriteBackupWhileWriting(t *testing.T) {
	db := testenv.Embedded(t)
	ctx := context.Background()
	for i := range 50 {
		if _, err := db.Store().Create(ctx, record(fmt.Sprintf("before-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := db.Store().Create(ctx, record(fmt.Sprintf("during-%d", i))); err != nil {
				t.Error(err)
				return
			}
		}
	})
	var buf bytes.Buffer
	var announced int64
	n, err := db.WriteBackup(&buf, func(size int64) { announced = size })
	close(stop)
	wg.Wait()
	if err != nil || n != announced || int64(buf.Len()) != n {
		t.Fatalf("WriteBackup: %d bytes, %d announced, %d written, %v", n, announced, buf.Len(), err)
	}
	copyPath := filepath.Join(t.TempDir(), "restored.db")
	must(t, os.WriteFile(copyPath, buf.Bytes(), 0o600))
	if err := embedded.Verify(copyPath); err != nil {
		t.Fatalf("Verify of the backup: %v", err)
	}
	restored := openAt(t, copyPath)
	defer restored.Close()
	for i := range 50 {
		if _, err := restored.Store().Get(ctx, record(fmt.Sprintf("before-%d", i)).Key); err != nil {
			t.Fatalf("delivery before-%d missing from the backup: %v", i, err)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func size(t *testing.T, path string) int64 {
	t.Helper()
	info, err := os.Stat(path)
	must(t, err)
	return info.Size()
}

// scribble overwrites n bytes of path from offset off with random bytes (seeded: the same
// every run).
func scribble(t *testing.T, path string, off, n int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	must(t, err)
	defer f.Close()
	junk := make([]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range junk {
		junk[i] = byte(r.Uint32())
	}
	_, err = f.WriteAt(junk, off)
	must(t, err)
}
