package jobstest_test

import (
	"bytes"
	"cmp"
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/jobs/jobstest"
)

// The suites run against the simplest store that keeps the ports' promises, so that a
// failure in a real adapter's run points at the adapter, not at the suite.
func TestStoreSuite(t *testing.T) { onMem(t, jobstest.StoreSuite) }

func TestCountersSuite(t *testing.T) { onMem(t, jobstest.CountersSuite) }

func TestPoolCountsSuite(t *testing.T) { onMem(t, jobstest.PoolCountsSuite) }

// onMem runs suite on the reference store twice: once with a fresh store per subtest,
// once with one store for all, as the suites allow.
func onMem(t *testing.T, suite func(*testing.T, func(*testing.T) jobstest.Stores)) {
	t.Run("Fresh", func(t *testing.T) {
		suite(t, func(*testing.T) jobstest.Stores { return newMem().stores() })
	})
	shared := newMem()
	t.Run("Shared", func(t *testing.T) {
		suite(t, func(*testing.T) jobstest.Stores { return shared.stores() })
	})
}

// mem is every port in maps under one lock. It scans where a real store keeps an index:
// it is a reference for behaviour, not for cost.
type mem struct {
	mu         sync.Mutex
	deliveries map[delivery.Key]delivery.Record
	counters   map[counterKey]delivery.HourlyCount
	jobCounts  map[time.Time]jobs.HourlyJobCount
	jobs       map[int64]jobs.Job
	runners    map[string]jobs.Runner
	runs       map[int64]jobs.Run
	profiles   map[string]jobs.Profile
	pools      map[string]jobs.Pool
	gates      map[jobs.GateKey]int64 // pool and side → version
	poolCounts jobs.Tally
}

type counterKey struct {
	hour  time.Time
	event string
}

func newMem() *mem {
	return &mem{
		deliveries: map[delivery.Key]delivery.Record{},
		counters:   map[counterKey]delivery.HourlyCount{},
		jobCounts:  map[time.Time]jobs.HourlyJobCount{},
		jobs:       map[int64]jobs.Job{},
		runners:    map[string]jobs.Runner{},
		runs:       map[int64]jobs.Run{},
		profiles:   map[string]jobs.Profile{},
		pools:      map[string]jobs.Pool{},
		gates:      map[jobs.GateKey]int64{},
		poolCounts: jobs.Tally{},
	}
}

func (m *mem) stores() jobstest.Stores {
	return jobstest.Stores{Jobs: m, Deliveries: m, Counters: m, JobCounters: m}
}

func storedTime(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

// count adds to the counters; the caller holds the lock.
func (m *mem) count(event string, receivedAt time.Time, add delivery.HourlyCount) {
	k := counterKey{delivery.Hour(receivedAt), event}
	c := m.counters[k]
	c.Hour, c.Event = k.hour, event
	c.Total += add.Total
	c.Processed += add.Processed
	c.Errors += add.Errors
	m.counters[k] = c
}

func (m *mem) Create(_ context.Context, rec *delivery.Record) (*delivery.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if existing, ok := m.deliveries[rec.Key]; ok {
		existing.Payload = nil
		return &existing, nil
	}
	stored := *rec
	stored.Payload = bytes.Clone(rec.Payload)
	stored.ReceivedAt, stored.ProcessedAt = storedTime(rec.ReceivedAt), storedTime(rec.ProcessedAt)
	m.deliveries[rec.Key] = stored
	created := delivery.HourlyCount{Total: 1}
	if rec.State.Done() {
		created.Processed = 1
	}
	m.count(rec.Event, rec.ReceivedAt, created)
	return nil, nil
}

func (m *mem) Get(_ context.Context, key delivery.Key) (*delivery.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.deliveries[key]
	if !ok {
		return nil, delivery.ErrNotFound
	}
	rec.Payload = bytes.Clone(rec.Payload)
	return &rec, nil
}

func (m *mem) MarkRedelivered(_ context.Context, key delivery.Key) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.deliveries[key]
	if !ok {
		return delivery.ErrNotFound
	}
	rec.Redelivered = true
	m.deliveries[key] = rec
	return nil
}

// finish is Commit's part for a Finish; the caller holds the lock.
func (m *mem) finish(key delivery.Key, state delivery.State, outcome string, at time.Time) (already bool, err error) {
	rec, ok := m.deliveries[key]
	switch {
	case !ok:
		return false, delivery.ErrNotFound
	case rec.State.Done():
		return true, nil
	}
	rec.State, rec.Outcome, rec.ProcessedAt = state, outcome, storedTime(at)
	m.deliveries[key] = rec
	m.count(rec.Event, rec.ReceivedAt, delivery.HourlyCount{Processed: 1})
	return false, nil
}

func (m *mem) HourlyCounts(_ context.Context, from, to time.Time) ([]delivery.HourlyCount, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []delivery.HourlyCount
	for k, c := range m.counters {
		if !k.hour.Before(from) && k.hour.Before(to) {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b delivery.HourlyCount) int {
		return cmp.Or(a.Hour.Compare(b.Hour), strings.Compare(a.Event, b.Event))
	})
	return out, nil
}

func (m *mem) CountError(_ context.Context, event string, receivedAt time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.count(event, receivedAt, delivery.HourlyCount{Errors: 1})
	return nil
}

// get returns a copy of what a map holds under key, or ErrNotFound.
func get[K comparable, V any](m *mem, entities map[K]V, key K, clone func(V) V) (*V, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := entities[key]
	if !ok {
		return nil, jobs.ErrNotFound
	}
	v = clone(v)
	return &v, nil
}

func (m *mem) Job(_ context.Context, id int64) (*jobs.Job, error) {
	return get(m, m.jobs, id, cloneJob)
}
func (m *mem) Runner(_ context.Context, name string) (*jobs.Runner, error) {
	return get(m, m.runners, name, cloneRunner)
}
func (m *mem) Run(_ context.Context, id int64) (*jobs.Run, error) {
	return get(m, m.runs, id, func(r jobs.Run) jobs.Run { return r })
}
func (m *mem) Profile(_ context.Context, repo string) (*jobs.Profile, error) {
	return get(m, m.profiles, repo, cloneProfile)
}

func (m *mem) Gate(_ context.Context, pool string, side jobs.GateSide) (*jobs.Gate, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return &jobs.Gate{Pool: pool, Side: side, Version: m.gates[jobs.GateKey{Pool: pool, Side: side}]}, nil
}

func cloneJob(j jobs.Job) jobs.Job {
	j.Labels, j.Deliveries = slices.Clone(j.Labels), slices.Clone(j.Deliveries)
	return j
}

func cloneRunner(r jobs.Runner) jobs.Runner {
	r.Labels = slices.Clone(r.Labels)
	return r
}

func cloneProfile(p jobs.Profile) jobs.Profile {
	p.PoolUses = maps.Clone(p.PoolUses)
	return p
}

// list returns up to limit copies of the values that match, in order.
func list[K comparable, V any](m *mem, entities map[K]V, match func(V) bool, order func(a, b V) int, limit int, clone func(V) V) []*V {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*V
	for _, v := range entities {
		if match(v) {
			v = clone(v)
			out = append(out, &v)
		}
	}
	slices.SortFunc(out, func(a, b *V) int { return order(*a, *b) })
	return out[:min(limit, len(out))]
}

func (m *mem) IdleRunners(_ context.Context, pool, after string, limit int) ([]*jobs.Runner, error) {
	idle := func(r jobs.Runner) bool { return r.Pool == pool && r.State == jobs.RunnerIdle && r.Name > after }
	byName := func(a, b jobs.Runner) int { return strings.Compare(a.Name, b.Name) }
	return list(m, m.runners, idle, byName, limit, cloneRunner), nil
}

func (m *mem) PendingJobs(_ context.Context, pool, after string, limit int) ([]*jobs.Job, error) {
	pending := func(j jobs.Job) bool {
		return j.Pool == pool && j.Allocation == jobs.AllocationPending && j.QueueKey > after
	}
	byQueueKey := func(a, b jobs.Job) int { return strings.Compare(a.QueueKey, b.QueueKey) }
	return list(m, m.jobs, pending, byQueueKey, limit, cloneJob), nil
}

func (m *mem) PoolCounts(_ context.Context, pools []string) ([]jobs.PoolCounts, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]jobs.PoolCounts, len(pools))
	for i, pool := range pools {
		out[i] = jobs.PoolCounts{Pool: pool}
		if c, ok := m.poolCounts[pool]; ok {
			out[i] = *c
		}
	}
	return out, nil
}

func (m *mem) Pools(context.Context) ([]jobs.Pool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []jobs.Pool
	for _, name := range slices.Sorted(maps.Keys(m.pools)) {
		p := m.pools[name]
		p.Labels = slices.Clone(p.Labels)
		out = append(out, p)
	}
	return out, nil
}

func (m *mem) PutPool(_ context.Context, p jobs.Pool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p.Labels = slices.Clone(p.Labels)
	m.pools[p.Name] = p
	return nil
}

func (m *mem) DeletePool(_ context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.pools[name]; !ok {
		return jobs.ErrNotFound
	}
	delete(m.pools, name)
	return nil
}

// Commit checks everything before it writes anything, so that a failed check leaves the
// maps as they were.
func (m *mem) Commit(_ context.Context, c *jobs.Change) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(c); err != nil {
		return err
	}
	if f := c.Finish; f != nil {
		m.finish(f.Key, f.State, f.Outcome, f.At)
	}
	for _, j := range c.Jobs {
		j := cloneJob(*j)
		j.CreatedAt, j.QueuedAt = storedTime(j.CreatedAt), storedTime(j.QueuedAt)
		j.StartedAt, j.CompletedAt = storedTime(j.StartedAt), storedTime(j.CompletedAt)
		j.Version++
		m.jobs[j.ID] = j
	}
	for _, r := range c.Runners {
		r := cloneRunner(*r)
		r.UpdatedAt, r.LastSeen = storedTime(r.UpdatedAt), storedTime(r.LastSeen)
		r.Version++
		m.runners[r.Name] = r
	}
	for _, r := range c.DeleteRunners {
		delete(m.runners, r.Name)
	}
	for _, r := range c.Runs {
		r := *r
		r.CreatedAt, r.UpdatedAt = storedTime(r.CreatedAt), storedTime(r.UpdatedAt)
		r.Version++
		m.runs[r.ID] = r
	}
	for _, p := range c.Profiles {
		p := cloneProfile(*p)
		p.Version++
		m.profiles[p.Repository] = p
	}
	for _, g := range c.Gates {
		m.gates[jobs.GateKey{Pool: g.Pool, Side: g.Side}] = g.Version + 1
	}
	for _, k := range c.GateBumps {
		m.gates[k]++
	}
	for _, d := range c.Counts {
		m.poolCounts.Add(d, 1)
	}
	for _, q := range c.QueueTimes {
		m.countJob(q.StartedAt, func(hc *jobs.HourlyJobCount) { hc.QueueTimes[jobs.QueueTimeBucket(q.Wait)]++ })
	}
	for _, d := range c.Conclusions {
		m.countJob(d.CompletedAt, func(hc *jobs.HourlyJobCount) { hc.Conclusions[d.Conclusion]++ })
	}
	return nil
}

// countJob changes the job counters of at's hour; the caller holds the lock.
func (m *mem) countJob(at time.Time, add func(*jobs.HourlyJobCount)) {
	hour := delivery.Hour(at)
	hc, ok := m.jobCounts[hour]
	if !ok {
		hc = jobs.HourlyJobCount{Hour: hour, Conclusions: map[string]int64{}}
	}
	add(&hc)
	m.jobCounts[hour] = hc
}

func (m *mem) HourlyJobCounts(_ context.Context, from, to time.Time) ([]jobs.HourlyJobCount, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []jobs.HourlyJobCount
	for hour, hc := range m.jobCounts {
		if !hour.Before(from) && hour.Before(to) {
			hc.Conclusions = maps.Clone(hc.Conclusions)
			out = append(out, hc)
		}
	}
	slices.SortFunc(out, func(a, b jobs.HourlyJobCount) int { return a.Hour.Compare(b.Hour) })
	return out, nil
}

func (m *mem) check(c *jobs.Change) error {
	if f := c.Finish; f != nil {
		rec, ok := m.deliveries[f.Key]
		switch {
		case !ok:
			return jobs.ErrNotFound
		case rec.State.Done():
			return jobs.ErrConflict
		}
	}
	var stale bool
	for _, j := range c.Jobs {
		stale = stale || m.jobs[j.ID].Version != j.Version
	}
	for _, r := range c.Runners {
		stale = stale || m.runners[r.Name].Version != r.Version
	}
	for _, r := range c.DeleteRunners {
		stored, ok := m.runners[r.Name]
		stale = stale || !ok || stored.Version != r.Version
	}
	for _, r := range c.Runs {
		stale = stale || m.runs[r.ID].Version != r.Version
	}
	for _, p := range c.Profiles {
		stale = stale || m.profiles[p.Repository].Version != p.Version
	}
	for _, g := range slices.Concat(c.Gates, c.GateChecks) {
		stale = stale || m.gates[jobs.GateKey{Pool: g.Pool, Side: g.Side}] != g.Version
	}
	if stale {
		return jobs.ErrConflict
	}
	return nil
}
