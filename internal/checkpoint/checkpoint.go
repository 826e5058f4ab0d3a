// Package checkpoint is the port through which the reconciler keeps its state between
// cycles. It is apart from package reconcile so that the stores implement it without
// linking the GitHub client into every function.
package checkpoint

import "context"

// Store keeps the reconciler's small state between cycles: how far each hook's
// delivery log has been read, the GUIDs given up, the jobs asked about lately. Each
// checkpoint is one small document under a name; the reconciler runs one cycle at a
// time (a ticker locally, a schedule with one concurrent execution on AWS), so a put
// simply replaces what was there.
type Store interface {
	// Checkpoint returns the document stored under name, or nil (no error) if none is.
	Checkpoint(ctx context.Context, name string) ([]byte, error)
	// PutCheckpoint stores data under name, replacing what was there.
	PutCheckpoint(ctx context.Context, name string, data []byte) error
}

// MaxBytes bounds one checkpoint, far below DynamoDB's 400 KB item.
const MaxBytes = 256 << 10
