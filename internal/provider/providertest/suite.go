// Package providertest is the conformance suite of provider.Provider: every adapter runs
// Run against real parts (a command, moto's EC2 and SSM).
package providertest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/provider"
	"github.com/runnerhub/webhooks/internal/testenv/suite"
)

// Harness is one adapter under test.
type Harness struct {
	Provider provider.Provider
	// HandedJITConfig returns the JIT configuration the machine providerID can read, the
	// way the machine reads it (the fake command's record, the SSM parameter its tag
	// names), failing the test when it has none.
	HandedJITConfig func(t *testing.T, providerID string) string
}

// Run runs the suite; newHarness is called once per test.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	suite.Run(t, newHarness, suite.Cases[Harness]{
		{"CreateListDelete", testCreateListDelete},
		{"ListSeparatesPools", testListSeparatesPools},
		{"DeleteTwice", testDeleteTwice},
		{"CanceledCreateStartsNothing", testCanceledCreate},
	})
}

var seq atomic.Int64

// unique returns a name no other test of this process uses, valid as a pool or runner
// name, so that adapters on a shared backend (one moto) need no cleaning between tests.
func unique(kind string) string {
	return fmt.Sprintf("%s-%d-%d", kind, time.Now().UnixNano()%1e9, seq.Add(1))
}

func request(pool string) provider.CreateRequest {
	name := unique("runner")
	return provider.CreateRequest{
		Name: name, Pool: pool, Labels: []string{"self-hosted", "linux", "x64"},
		JITConfig: "jit-" + name + "-c2VjcmV0", Ephemeral: true,
		Repository: "octo-org/hello", JobID: 4242,
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func create(t *testing.T, h Harness, req provider.CreateRequest) provider.Instance {
	t.Helper()
	id, err := h.Provider.Create(ctx(t), req)
	if err != nil {
		t.Fatalf("Create %s: %v", req.Name, err)
	}
	if id == "" {
		t.Fatalf("Create %s returned an empty provider ID", req.Name)
	}
	return provider.Instance{Name: req.Name, ProviderID: id}
}

func list(t *testing.T, h Harness, pool string) []provider.Instance {
	t.Helper()
	got, err := h.Provider.List(ctx(t), pool)
	if err != nil {
		t.Fatalf("List %s: %v", pool, err)
	}
	slices.SortFunc(got, func(a, b provider.Instance) int { return strings.Compare(a.Name, b.Name) })
	return got
}

func expectList(t *testing.T, h Harness, pool string, want ...provider.Instance) {
	t.Helper()
	slices.SortFunc(want, func(a, b provider.Instance) int { return strings.Compare(a.Name, b.Name) })
	if got := list(t, h, pool); !slices.Equal(got, want) {
		t.Fatalf("List %s = %v, want %v", pool, got, want)
	}
}

func testCreateListDelete(t *testing.T, h Harness) {
	pool := unique("pool")
	a, b := request(pool), request(pool)
	ia, ib := create(t, h, a), create(t, h, b)
	if ia.ProviderID == ib.ProviderID {
		t.Fatalf("two runners got one provider ID %s", ia.ProviderID)
	}
	for _, c := range []struct {
		req provider.CreateRequest
		in  provider.Instance
	}{{a, ia}, {b, ib}} {
		if got := h.HandedJITConfig(t, c.in.ProviderID); got != c.req.JITConfig {
			t.Errorf("machine %s was handed JIT config %q, want %q", c.in.ProviderID, got, c.req.JITConfig)
		}
	}
	expectList(t, h, pool, ia, ib)
	if err := h.Provider.Delete(ctx(t), ia.Name, ia.ProviderID); err != nil {
		t.Fatalf("Delete %s: %v", ia.Name, err)
	}
	expectList(t, h, pool, ib)
}

func testListSeparatesPools(t *testing.T, h Harness) {
	p, q := unique("pool"), unique("pool")
	ip, iq := create(t, h, request(p)), create(t, h, request(q))
	expectList(t, h, p, ip)
	expectList(t, h, q, iq)
	expectList(t, h, unique("pool"))
}

func testDeleteTwice(t *testing.T, h Harness) {
	pool := unique("pool")
	in := create(t, h, request(pool))
	for i := range 2 {
		if err := h.Provider.Delete(ctx(t), in.Name, in.ProviderID); err != nil {
			t.Fatalf("Delete %s (call %d): %v; an instance already gone is deleted", in.Name, i+1, err)
		}
	}
	expectList(t, h, pool)
}

func testCanceledCreate(t *testing.T, h Harness) {
	pool := unique("pool")
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if id, err := h.Provider.Create(c, request(pool)); err == nil {
		t.Fatalf("Create with a canceled context returned %q and no error", id)
	}
	expectList(t, h, pool)
}
