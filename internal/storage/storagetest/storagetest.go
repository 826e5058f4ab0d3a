// Package storagetest runs every conformance suite that a storage adapter's store must
// pass, so that the embedded and the AWS adapters run one list and neither misses a
// suite.
package storagetest

import (
	"testing"

	"github.com/runnerhub/webhooks/internal/checkpoint"
	"github.com/runnerhub/webhooks/internal/checkpoint/checkpointtest"
	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/delivery/deliverytest"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/jobs/jobstest"
	"github.com/runnerhub/webhooks/internal/testenv/suite"
)

// Store is every port that one storage adapter's store implements.
type Store interface {
	deliverytest.Listing // delivery.Store and delivery.Lister
	delivery.Counters
	jobs.Store
	jobs.Counters
	checkpoint.Store
}

// Conformance runs the suites of delivery.Store, delivery.Lister, checkpoint.Store,
// jobs.Store (its fleet listings and pool counts included) and the counters, each as a parallel subtest.
// Every suite lets its subtests share a store, so newStore is called once per suite, with
// the suite's test. The queue suite is not here: a queue is no part of the store.
func Conformance(t *testing.T, newStore func(t *testing.T) Store) {
	stores := func(s Store) func(*testing.T) jobstest.Stores {
		return func(*testing.T) jobstest.Stores {
			return jobstest.Stores{Jobs: s, Deliveries: s, Counters: s, JobCounters: s}
		}
	}
	suite.RunParallel(t, newStore, suite.Cases[Store]{
		{"Deliveries", func(t *testing.T, s Store) {
			deliverytest.StoreSuite(t, func(*testing.T) delivery.Store { return s }, jobstest.CommitFinish)
		}},
		{"Listing", func(t *testing.T, s Store) {
			deliverytest.ListSuite(t, func(*testing.T) deliverytest.Listing { return s }, jobstest.CommitFinish)
		}},
		{"Checkpoints", func(t *testing.T, s Store) {
			checkpointtest.Suite(t, func(*testing.T) checkpoint.Store { return s })
		}},
		{"Jobs", func(t *testing.T, s Store) { jobstest.StoreSuite(t, stores(s)) }},
		{"Counters", func(t *testing.T, s Store) { jobstest.CountersSuite(t, stores(s)) }},
		{"Fleet", func(t *testing.T, s Store) { jobstest.FleetSuite(t, stores(s)) }},
		{"PoolCounts", func(t *testing.T, s Store) { jobstest.PoolCountsSuite(t, stores(s)) }},
	})
}
