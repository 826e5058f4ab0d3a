package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

type keyed[T any] struct {
	key string
	v   T
}

// readMerged reads up to n entries after `after` from each partition of ix, at the same
// time, and merges them in the index's order.
func readMerged[T any](ctx context.Context, ix ListIndex, partitions []string, after string, n int, read RangeReader[T], key func(T) string) ([]keyed[T], error) {
	got := make([][]T, len(partitions))
	errs := make([]error, len(partitions))
	var wg sync.WaitGroup
	for i, part := range partitions {
		wg.Go(func() { got[i], errs[i] = read(ctx, ix, part, after, n) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("list %s: %w", ix, err)
	}
	var out []keyed[T]
	for _, vs := range got {
		for _, v := range vs {
			out = append(out, keyed[T]{key(v), v})
		}
	}
	slices.SortStableFunc(out, func(a, b keyed[T]) int {
		if ix.Descending() {
			return strings.Compare(b.key, a.key)
		}
		return strings.Compare(a.key, b.key)
	})
	return out, nil
}

// cut returns the first limit entries, and the cursor after them if more were read.
// Each partition was read limit+1 deep, so the first limit of the merge are the first
// limit of the whole, and one more entry means there is a next page.
func cut[T any](entries []keyed[T], limit int) ([]keyed[T], string) {
	if len(entries) <= limit {
		return entries, ""
	}
	return entries[:limit], encodeCursor(entries[limit-1].key)
}
