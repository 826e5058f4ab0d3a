// Package checkpointtest holds the conformance suite of checkpoint.Store.
package checkpointtest

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/runnerhub/webhooks/internal/checkpoint"
	"github.com/runnerhub/webhooks/internal/testenv/suite"
)

// Suite runs the checkpoint.Store contract against the store newStore returns. The
// subtests use names of their own, so a store may be shared among them.
func Suite(t *testing.T, newStore func(t *testing.T) checkpoint.Store) {
	ctx := context.Background()
	ownNames := func(t *testing.T) checkpoint.Store { return prefixed{newStore(t), t.Name() + "/"} }
	suite.Run(t, ownNames, suite.Cases[checkpoint.Store]{
		{"missing is nil without error", func(t *testing.T, s checkpoint.Store) {
			got, err := s.Checkpoint(ctx, "redelivery/app")
			if err != nil || got != nil {
				t.Fatalf("Checkpoint of nothing: %q, %v; want nil, nil", got, err)
			}
		}},
		{"put then get, replaced by the next put", func(t *testing.T, s checkpoint.Store) {
			for _, doc := range []string{`{"cursor":1}`, `{"cursor":2,"givenUp":{"x":1}}`} {
				if err := s.PutCheckpoint(ctx, "redelivery/repo/o/r/1", []byte(doc)); err != nil {
					t.Fatal(err)
				}
				got, err := s.Checkpoint(ctx, "redelivery/repo/o/r/1")
				if err != nil || string(got) != doc {
					t.Fatalf("got %q, %v; want %q", got, err, doc)
				}
			}
		}},
		{"names are independent", func(t *testing.T, s checkpoint.Store) {
			for i, name := range []string{"redelivery/app", "redelivery/org/o/2", "jobs"} {
				if err := s.PutCheckpoint(ctx, name, []byte(fmt.Sprint(i))); err != nil {
					t.Fatal(err)
				}
			}
			for i, name := range []string{"redelivery/app", "redelivery/org/o/2", "jobs"} {
				got, err := s.Checkpoint(ctx, name)
				if err != nil || string(got) != fmt.Sprint(i) {
					t.Fatalf("%s: %q, %v", name, got, err)
				}
			}
		}},
		{"a large document survives whole", func(t *testing.T, s checkpoint.Store) {
			doc := bytes.Repeat([]byte("0123456789abcdef"), checkpoint.MaxBytes/16)
			if err := s.PutCheckpoint(ctx, "big", doc); err != nil {
				t.Fatal(err)
			}
			got, err := s.Checkpoint(ctx, "big")
			if err != nil || !bytes.Equal(got, doc) {
				t.Fatalf("got %d bytes, %v; want %d", len(got), err, len(doc))
			}
		}},
		{"concurrent puts leave one of them", func(t *testing.T, s checkpoint.Store) {
			suite.Race(8, func(i int) {
				if err := s.PutCheckpoint(ctx, "race", []byte(fmt.Sprint(i))); err != nil {
					t.Error(err)
				}
			})
			got, err := s.Checkpoint(ctx, "race")
			if err != nil || len(got) != 1 || got[0] < '0' || got[0] > '7' {
				t.Fatalf("after concurrent puts: %q, %v", got, err)
			}
		}},
	})
}

// prefixed keeps each subtest's names apart from the others'.
type prefixed struct {
	checkpoint.Store
	prefix string
}

func (p prefixed) Checkpoint(ctx context.Context, name string) ([]byte, error) {
	return p.Store.Checkpoint(ctx, p.prefix+name)
}

func (p prefixed) PutCheckpoint(ctx context.Context, name string, data []byte) error {
	return p.Store.PutCheckpoint(ctx, p.prefix+name, data)
}
