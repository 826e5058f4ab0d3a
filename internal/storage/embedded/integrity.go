package embedded

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Why Open refuses a database file. Each error's message names the file and says what to
// do; errors.Is tells them apart.
var (
	// ErrMissing: the data directory held a database before (its marker file says so)
	// and the database file is gone, or the file is empty. Starting on an empty database
	// would silently drop every acknowledged delivery.
	ErrMissing = errors.New("database missing")
	// ErrCorrupt: the file is not a sound bbolt database (cut short, pages overwritten,
	// not a database at all).
	ErrCorrupt = errors.New("database damaged")
	// ErrLocked: another process holds the file's lock (bbolt allows one writer per
	// file), most likely another runnerhub on the same data directory.
	ErrLocked = errors.New("database locked by another process")
)

// MarkerSuffix names the marker file that Open writes beside a database it has opened
// (runnerhub.db.created for runnerhub.db). While the marker exists, a missing database is
// an error rather than a reason to create an empty one; deleting the marker is how an
// operator starts afresh on purpose.
const MarkerSuffix = ".created"

// lockTimeout is how long Open waits for another process to release the file.
var lockTimeout = 2 * time.Second

// restoreHint is the advice every refusal ends with.
const restoreHint = "restore it from a backup (README: Backup and restore)"

// checkBeforeOpen refuses a database file that is missing from a data directory used
// before, empty, damaged, or locked, before the read-write open, whose free-page scan
// would crash the process on a damaged file rather than report it.
func checkBeforeOpen(path string) error {
	marker := path + MarkerSuffix
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if _, err := os.Stat(marker); err == nil {
			return fmt.Errorf("%w: %s does not exist, yet %s says a database was created there: %s, or delete %s to start afresh with an empty database",
				ErrMissing, path, marker, restoreHint, marker)
		}
		return nil // a new data directory
	case err != nil:
		return fmt.Errorf("open %s: %w", path, err)
	case info.Size() == 0:
		// bbolt writes its first pages as it creates a file: an empty one was cut short.
		return fmt.Errorf("%w: %s is empty (0 bytes): %s, or delete it and %s to start afresh with an empty database",
			ErrMissing, path, restoreHint, marker)
	}
	return Verify(path)
}

// Verify checks the database file at path without changing it: it opens it read-only
// (which validates the meta pages), checks that the file holds every page they count,
// reads every key and value, and runs bbolt's consistency check (tx.Check). It takes time
// proportional to the file's size. A damaged file is ErrCorrupt, a file another process
// holds is ErrLocked.
func Verify(path string) error {
	db, err := openBolt(path, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if err != nil {
		return err
	}
	defer db.Close()
	err = contained(func() error {
		return db.View(func(tx *bolt.Tx) error {
			info, err := os.Stat(path)
			if err != nil {
				return err
			}
			if info.Size() < tx.Size() {
				return fmt.Errorf("the file is %d bytes but its pages run to %d: it was cut short", info.Size(), tx.Size())
			}
			if err := readEverything(tx); err != nil {
				return err
			}
			// Check's own goroutine would crash on a fault, hence readEverything first:
			// it touches every page Check walks, in this goroutine, where faults are
			// contained.
			var first error
			for err := range tx.Check() { // drained to the end: Check stops when nobody reads
				if first == nil {
					first = err
				}
			}
			return first
		})
	})
	if err != nil {
		return corrupt(path, err)
	}
	return nil
}

// openBolt opens path with bbolt, turning its panics and memory faults into errors and
// its errors into ErrLocked or ErrCorrupt.
func openBolt(path string, opts *bolt.Options) (*bolt.DB, error) {
	var db *bolt.DB
	err := contained(func() error {
		var err error
		db, err = bolt.Open(path, 0o600, opts)
		return err
	})
	var pathErr *fs.PathError
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("%w: %s is held by another process after %s (is another runnerhub running on this data directory?)", ErrLocked, path, opts.Timeout)
	case errors.As(err, &pathErr):
		return nil, fmt.Errorf("open %s: %w", path, err) // permissions and the like
	}
	return nil, corrupt(path, err)
}

func corrupt(path string, err error) error {
	return fmt.Errorf("%w: %s: %v: %s, or move it and %s aside to start afresh with an empty database",
		ErrCorrupt, path, err, restoreHint, path+MarkerSuffix)
}

// contained runs fn, turning a panic in it (bbolt panics on pages that do not say what
// they should be) or a memory fault (reading a mapped page past the end of a cut-short
// file raises SIGBUS) into an error. Faults only become panics in the goroutine that
// asks for it, so fn must not hand bbolt work to other goroutines.
func contained(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("bbolt failed reading it: %v", r)
		}
	}()
	return fn()
}

// readEverything reads every key and value of every bucket, so that every page reachable
// from the root is touched once.
func readEverything(tx *bolt.Tx) error {
	sum := crc32.NewIEEE()
	var walk func(b *bolt.Bucket) error
	walk = func(b *bolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				if child := b.Bucket(k); child != nil {
					return walk(child)
				}
			}
			sum.Write(k)
			sum.Write(v)
			return nil
		})
	}
	return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
		if err := walk(b); err != nil {
			return fmt.Errorf("bucket %q: %w", name, err)
		}
		return nil
	})
}

// writeMarker records that a database was created beside it, once.
func writeMarker(path string) error {
	f, err := os.OpenFile(path+MarkerSuffix, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path+MarkerSuffix, err)
	}
	_, err = io.WriteString(f, "RunnerHub created its database beside this file.\n"+
		"While this file exists, RunnerHub refuses to start when the database is missing,\n"+
		"instead of starting on an empty one. Delete it to start afresh on purpose.\n")
	if err == nil {
		err = f.Sync()
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path+MarkerSuffix, err)
	}
	return nil
}
