package jobs

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
)

// Engine decides what a delivery or a fleet operation does to the job state, and owns
// the commit pipeline (commit.go): Apply and the fleet operations plan, commit, re-plan
// on conflict, and announce each commit to the Subscribers. Plan alone only reads.
type Engine struct {
	Store Store
	// Pools are the configured pools (RUNNERHUB_POOLS); pools in the store overlay them.
	Pools []Pool
	// Step is the priority step of the pending queue's virtual time (see Rank).
	Step time.Duration
	// OfflineAfter, when positive, keeps runners not seen for longer (no registration,
	// heartbeat or job event naming them) out of allocation: a job is not reserved for a
	// runner that has probably gone, and its scale-up demand is sent instead.
	OfflineAfter time.Duration
	// Deliveries is where Apply reads a delivery's record again after a conflict.
	Deliveries Deliveries
	// Subscribers hear of every committed change, in order (see Subscriber, Subscribe).
	Subscribers []Subscriber
	// Now stamps a delivery's finish; time.Now when nil.
	Now func() time.Time
}

// Plan is the outcome of applying one delivery.
type Plan struct {
	Change   Change
	State    delivery.State // Processed or Ignored
	Outcome  Outcome
	Demands  []Demand
	Prewarms []Prewarm
	// Retires are the provisioned runners the change deletes.
	Retires []Retire
	// Job is a workflow_job delivery's own job, as planned (also when the event changed
	// nothing: a late or repeated event).
	Job *Job
	// Advanced is set when a workflow_job delivery moved its job to a later status, for
	// the metrics that count transitions (queued, completed) once per job.
	Advanced *Transition
}

// Transition is what a change did to one job: Job as planned, From its status before.
type Transition struct {
	Job  *Job
	From Status
	// Own marks the delivery's own job; the other jobs a change writes were moved in
	// passing (only their allocation changed).
	Own bool
	// Applied is false for the own job of a late or repeated event, which did not move it.
	Applied bool
}

// maxDeliveriesPerJob bounds the delivery ids kept on a job record.
const maxDeliveriesPerJob = 20

// maxProfilePools bounds a repository profile.
const maxProfilePools = 5

// planner holds what one Plan has read and changed, so each entity is read once and
// written once, and later steps see earlier steps' changes.
type planner struct {
	ctx context.Context
	e   *Engine
	rec *delivery.Record // nil for the fleet operations (fleet.go)
	// payload is rec's payload, decoded once however often rec is planned.
	payload *payload
	// at is when the effects happen: the delivery's receipt, or the API request's time.
	at      time.Time
	jobs    map[int64]*Job
	runners map[string]*Runner
	deleted map[string]*Runner
	// unmanaged are the runner names read and not found (GitHub's hosted runners, most
	// often), so each is read once per plan.
	unmanaged map[string]bool
	dirty     map[any]bool
	// gates are the allocation gate sides the plan read, at the versions it read them
	// (see gate and collectGates).
	gates map[GateKey]*Gate
	pools []Pool
	// labelled holds, per pool, the runners with labels of their own (by name), read
	// once per plan when a pool's labels alone do not fit a job (see fitting).
	labelled map[string]map[string]*Runner
	// stored is what each job and runner read counted as stored (poolcounts.go).
	stored stored
	// counted holds each pool's runners as read, once per plan (see countRunners), and
	// added the runners the plan starts, by pool.
	counted, added map[string]int
	plan           *Plan
}

// Plan reads the state rec touches and computes its effects. An error wrapping
// ErrBadPayload means the delivery can never be applied.
func (e *Engine) Plan(ctx context.Context, rec *delivery.Record) (*Plan, error) {
	return e.plan(ctx, rec, decode(rec))
}

func (e *Engine) plan(ctx context.Context, rec *delivery.Record, decoded *payload) (*Plan, error) {
	p := e.newPlanner(ctx, rec.ReceivedAt)
	p.rec, p.payload = rec, decoded
	var err error
	switch rec.Event {
	case "workflow_job":
		err = p.workflowJob()
	case "workflow_run":
		err = p.workflowRun()
	case "push":
		err = p.prewarm("push")
	case "pull_request":
		switch rec.Action {
		case "opened", "synchronize", "reopened":
			err = p.prewarm("pull_request." + rec.Action)
		default:
			p.ignore("pull_request." + rec.Action + " does not start workflows")
		}
	case "ping":
		p.plan.Outcome = Outcome{Code: OutcomePong}
	default:
		p.ignore(rec.Event + " events are recorded only")
	}
	if err != nil {
		return nil, err
	}
	if err := p.collect(); err != nil {
		return nil, err
	}
	return p.plan, nil
}

func (e *Engine) newPlanner(ctx context.Context, at time.Time) *planner {
	return &planner{
		ctx: ctx, e: e, at: at.UTC(),
		jobs: map[int64]*Job{}, runners: map[string]*Runner{}, deleted: map[string]*Runner{}, unmanaged: map[string]bool{},
		dirty: map[any]bool{}, gates: map[GateKey]*Gate{}, stored: stored{}, counted: map[string]int{}, added: map[string]int{}, plan: &Plan{State: delivery.Processed},
	}
}

func (p *planner) ignore(reason string) {
	p.plan.State, p.plan.Outcome = delivery.Ignored, Outcome{Code: OutcomeIgnored, Reason: reason}
}

// collect moves every changed entity into the Change, in a stable order, with the
// changes to the pools' counts that writing them makes.
func (p *planner) collect() error {
	p.collectGates()
	for _, id := range slices.Sorted(maps.Keys(p.jobs)) {
		if j := p.jobs[id]; p.dirty[j] {
			p.plan.Change.Jobs = append(p.plan.Change.Jobs, j)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(p.runners)) {
		if r := p.runners[name]; p.dirty[r] {
			p.plan.Change.Runners = append(p.plan.Change.Runners, r)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(p.deleted)) {
		p.plan.Change.DeleteRunners = append(p.plan.Change.DeleteRunners, p.deleted[name])
	}
	return p.countChange()
}

func (p *planner) touch(v any) { p.dirty[v] = true }

// holdGate reads the pool's capacity gate and always writes it: a count of the pool's
// runners (maxRunners) must be ordered with every other such count.
func (p *planner) holdGate(pool string) error {
	for _, g := range p.plan.Change.Gates {
		if g.Pool == pool && g.Side == GateCapacity {
			return nil
		}
	}
	g, err := p.e.Store.Gate(p.ctx, pool, GateCapacity)
	if err != nil {
		return err
	}
	p.plan.Change.Gates = append(p.plan.Change.Gates, g)
	return nil
}

// collectGates puts in the Change the allocation gate sides its decisions need (see
// Gate). A plan that leaves a job pending checks the runners side of every pool whose
// idle runners it read, and bumps those pools' jobs sides: a runner of any of them could
// have run the job, and the plan that frees one checks only its own pool's jobs side
// (see match). A plan that leaves a runner idle checks the jobs side of the pools whose
// queues it read under their gates, and bumps their runners sides. A side both checked
// and bumped is written version checked. A plan that only reserves (a job takes an idle
// runner, a freed runner takes a pending job) needs no gate: the runner's and the job's
// versions order it with any plan that wants either. Without a gate, a reservation
// concurrent with the queueing of a higher-ranked job may take a lower-ranked one: the
// two arrived at the same moment, and nothing waits beside an idle runner.
func (p *planner) collectGates() {
	checked, bumped := map[GateKey]*Gate{}, map[GateKey]bool{}
	jobPending, runnerIdle := p.leavesJobPending(), p.leavesRunnerIdle()
	for key, g := range p.gates {
		other, leaves := GateKey{Pool: key.Pool, Side: GateJobs}, jobPending
		if key.Side == GateJobs {
			other.Side, leaves = GateRunners, runnerIdle
		}
		if leaves {
			checked[key], bumped[other] = g, true
		}
	}
	for _, key := range slices.SortedFunc(maps.Keys(checked), compareGateKeys) {
		if g := checked[key]; bumped[key] {
			p.plan.Change.Gates = append(p.plan.Change.Gates, g)
		} else {
			p.plan.Change.GateChecks = append(p.plan.Change.GateChecks, g)
		}
	}
	for _, key := range slices.SortedFunc(maps.Keys(bumped), compareGateKeys) {
		if checked[key] == nil {
			p.plan.Change.GateBumps = append(p.plan.Change.GateBumps, key)
		}
	}
}

func compareGateKeys(a, b GateKey) int {
	return cmp.Or(strings.Compare(a.Pool, b.Pool), strings.Compare(string(a.Side), string(b.Side)))
}

// leavesJobPending reports whether the plan leaves a job pending in a pool, and
// leavesRunnerIdle whether it leaves a runner idle: negative allocation decisions, which
// only hold if nothing changed what the plan read since (see collectGates).
func (p *planner) leavesJobPending() bool {
	for _, j := range p.jobs {
		if p.dirty[j] && j.Allocation == AllocationPending {
			return true
		}
	}
	return false
}

func (p *planner) leavesRunnerIdle() bool {
	for _, r := range p.runners {
		if p.dirty[r] && r.State == RunnerIdle {
			return true
		}
	}
	return false
}

func (p *planner) job(id int64) (*Job, error) {
	if j, ok := p.jobs[id]; ok {
		return j, nil
	}
	j, err := p.e.Store.Job(p.ctx, id)
	if errors.Is(err, ErrNotFound) {
		j, err = &Job{ID: id}, nil
	}
	if err != nil {
		return nil, err
	}
	keep(p, p.jobs, id, j)
	return j, nil
}

// runner returns a managed runner, or nil for a name RunnerHub does not manage.
func (p *planner) runner(name string) (*Runner, error) {
	if name == "" {
		return nil, nil
	}
	if r, ok := p.runners[name]; ok {
		return r, nil
	}
	if _, gone := p.deleted[name]; gone || p.unmanaged[name] {
		return nil, nil
	}
	r, err := p.e.Store.Runner(p.ctx, name)
	if errors.Is(err, ErrNotFound) {
		p.unmanaged[name] = true
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	keep(p, p.runners, name, r)
	return r, nil
}

func (p *planner) allPools() ([]Pool, error) {
	if p.pools == nil {
		pools, err := p.e.AllPools(p.ctx)
		if err != nil {
			return nil, err
		}
		p.pools = pools
	}
	return p.pools, nil
}

// AllPools returns the configured pools overlaid with those in the store, by name.
func (e *Engine) AllPools(ctx context.Context) ([]Pool, error) {
	stored, err := e.Store.Pools(ctx)
	if err != nil {
		return nil, err
	}
	return mergePools(e.Pools, stored), nil
}

// Pool returns the pool named name, configured or created through the API, and whether
// there is one.
func (e *Engine) Pool(ctx context.Context, name string) (Pool, bool, error) {
	pools, err := e.AllPools(ctx)
	return findPool(pools, name, err)
}

func (p *planner) pool(name string) (Pool, bool, error) {
	pools, err := p.allPools()
	return findPool(pools, name, err)
}

func findPool(pools []Pool, name string, err error) (Pool, bool, error) {
	if err != nil {
		return Pool{}, false, err
	}
	for _, pl := range pools {
		if pl.Name == name {
			return pl, true, nil
		}
	}
	return Pool{}, false, nil
}

// workflowJob applies a workflow_job delivery: merge what it says into the job (status
// only moves forward; a late event only fills what is missing), then act on the
// transition it caused, if any.
func (p *planner) workflowJob() error {
	ev, err := p.payload.job, p.payload.err
	if err != nil {
		return err
	}
	if why := ev.unknownIdentity(); why != "" {
		p.ignore(why) // GitHub has its 202; no job is made of it
		return nil
	}
	job, err := p.job(ev.WorkflowJob.ID)
	if err != nil {
		return err
	}
	from := job.Status
	wasQueued := !job.QueuedAt.IsZero() && job.StartedAt.IsZero()
	merge(job, ev, p.rec)
	if job.Allocation == AllocationPending {
		// An earlier queued delivery (another hook's) may have moved QueuedAt back.
		job.QueueKey = p.queueKey(job)
	}
	p.touch(job)
	p.plan.Job = job
	advanced := job.Status.Rank() > from.Rank()
	if advanced {
		p.plan.Advanced = &Transition{Job: job, From: from}
	}

	var what Outcome
	switch {
	case !advanced:
		what = Outcome{Code: OutcomeJobLate, Status: ev.WorkflowJob.Status, Kept: job.Status}
	case job.Status == StatusWaiting:
		what = Outcome{Code: OutcomeJobWaiting}
	case job.Status == StatusQueued:
		what, err = p.place(job, "")
	case job.Status == StatusInProgress:
		what, err = p.start(job, from)
	case job.Status == StatusCompleted:
		what, err = p.complete(job, from)
	}
	what.Job = job.ID
	p.plan.Outcome = what
	p.countJob(job, wasQueued, advanced && job.Status == StatusCompleted)
	return err
}

// merge folds one workflow_job event into the job. Fields are filled when missing; the
// status and the fields that belong to a later status only move forward.
func merge(job *Job, ev *jobEvent, rec *delivery.Record) {
	w := ev.WorkflowJob
	fill := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	if job.RunID == 0 {
		job.RunID = w.RunID
	}
	fill(&job.Repository, ev.Repository.FullName)
	fill(&job.Name, w.Name)
	fill(&job.HeadSHA, w.HeadSHA)
	fill(&job.HTMLURL, w.HTMLURL)
	if job.Labels == nil && w.Labels != nil {
		job.Labels = w.Labels
		job.Priority = Priority(w.Labels)
	}
	if job.CreatedAt.IsZero() {
		job.CreatedAt = w.CreatedAt.UTC()
	}
	// Every hook that watches the job sends its own queued delivery: the job was queued
	// when the first of them was received, whichever is processed first.
	if w.Status == StatusQueued && (job.QueuedAt.IsZero() || rec.ReceivedAt.Before(job.QueuedAt)) {
		job.QueuedAt = rec.ReceivedAt.UTC()
	}
	if w.Status.Rank() >= StatusInProgress.Rank() {
		if job.StartedAt.IsZero() && !w.StartedAt.IsZero() {
			job.StartedAt = w.StartedAt.UTC()
		}
		if job.RunnerName == "" && w.RunnerName != nil {
			job.RunnerName = *w.RunnerName
		}
		if job.RunnerID == 0 && w.RunnerID != nil {
			job.RunnerID = *w.RunnerID
		}
	}
	if w.Status == StatusCompleted {
		if job.CompletedAt.IsZero() && !w.CompletedAt.IsZero() {
			job.CompletedAt = w.CompletedAt.UTC()
		}
		if job.Conclusion == "" && w.Conclusion != nil {
			job.Conclusion = *w.Conclusion
		}
	}
	if w.Status.Rank() > job.Status.Rank() {
		job.Status = w.Status
	}
	if !slices.Contains(job.Deliveries, rec.DeliveryID) {
		job.Deliveries = append(job.Deliveries, rec.DeliveryID)
		if len(job.Deliveries) > maxDeliveriesPerJob {
			job.Deliveries = job.Deliveries[len(job.Deliveries)-maxDeliveriesPerJob:]
		}
	}
}

// queueKey is the job's place in a pending queue (see Rank).
func (p *planner) queueKey(job *Job) string {
	return RankKey(Rank(job.QueuedAt, job.Priority, p.e.Step), job.ID)
}

// place puts a queued job where it belongs: with an idle runner of a fitting pool if
// there is one (given to the highest-ranked fitting job of that pool), else in the
// pending queue of the preferred pool (if it fits) or of the first fitting pool, with a
// scale-up demand. It returns what happened, for the delivery's outcome.
func (p *planner) place(job *Job, preferred string) (Outcome, error) {
	fitting, err := p.fitting(job)
	if err != nil {
		return Outcome{}, err
	}
	if i := slices.IndexFunc(fitting, func(pl Pool) bool { return pl.Name == preferred }); i > 0 {
		fitting = append([]Pool{fitting[i]}, slices.Delete(slices.Clone(fitting), i, i+1)...)
	}
	if len(fitting) == 0 {
		job.Allocation = AllocationUnmatched
		return Outcome{Code: OutcomeJobUnmatched, Labels: job.Labels}, nil
	}
	job.QueueKey = p.queueKey(job)
	p.touch(job)
	offline := 0
	for _, pl := range fitting[:min(len(fitting), maxPoolsRead)] {
		r, silent, err := p.idleRunner(pl, job)
		if err != nil {
			return Outcome{}, err
		}
		offline += silent
		if r == nil {
			continue
		}
		job.Pool, job.Allocation = pl.Name, AllocationPending
		winner, err := p.match(r, ownQueue) // job is in pl's queue, and fits r
		if err != nil {
			return Outcome{}, err
		}
		if winner == job {
			return Outcome{Code: OutcomeJobReserved, Runner: r.Name, Pool: pl.Name}, nil
		}
		p.demand(job)
		return Outcome{Code: OutcomeJobBehind, Pool: pl.Name, OtherJob: winner.ID, Runner: r.Name}, nil
	}
	job.Pool, job.Allocation = fitting[0].Name, AllocationPending
	p.demand(job)
	return Outcome{Code: OutcomeJobPending, Pool: job.Pool, Offline: offline}, nil
}

// fitting returns the pools that fit job, by name. A pool fits a job when one of its
// runners could run it, as GitHub matches: every job label is among the pool's labels or
// among the runner's own (see runnerFits). A pool whose labels fit needs no runner read; for
// the others the plan reads the runners once.
func (p *planner) fitting(job *Job) ([]Pool, error) {
	pools, err := p.allPools()
	if err != nil {
		return nil, err
	}
	var fitting []Pool
	for _, pl := range pools {
		fits := Fits(job.Labels, pl.Labels)
		if !fits {
			labelled, err := p.labelledRunners(pl.Name)
			if err != nil {
				return nil, err
			}
			fits = slices.ContainsFunc(labelled, func(r *Runner) bool { return p.runnerFits(r, pl, job) })
		}
		if fits {
			fitting = append(fitting, pl)
		}
	}
	return fitting, nil
}

// labelledRunners returns the runners of pool that have labels of their own, as this plan
// sees them. The first call reads every runner (a page per MaxListLimit): one read of the
// runners index serves every pool, where reading pool by pool would cost a read per pool.
func (p *planner) labelledRunners(pool string) ([]*Runner, error) {
	if p.labelled == nil {
		p.labelled = map[string]map[string]*Runner{}
		for cursor := ""; ; {
			page, next, err := p.e.Store.ListRunners(p.ctx, "", cursor, MaxListLimit)
			if err != nil {
				return nil, err
			}
			for _, r := range page {
				p.addLabelled(r) // only its labels matter, which do not change
			}
			if cursor = next; cursor == "" {
				break
			}
		}
	}
	// Runners this plan registered or removed are not in the store's index yet.
	for _, r := range p.runners {
		p.addLabelled(r)
	}
	for name, r := range p.deleted {
		delete(p.labelled[r.Pool], name)
	}
	return slices.SortedFunc(maps.Values(p.labelled[pool]), func(a, b *Runner) int { return strings.Compare(a.Name, b.Name) }), nil
}

func (p *planner) addLabelled(r *Runner) {
	if len(r.Labels) == 0 {
		return
	}
	if p.labelled[r.Pool] == nil {
		p.labelled[r.Pool] = map[string]*Runner{}
	}
	p.labelled[r.Pool][r.Name] = r
}

// settle records, once, where a job that has started or finished ran: the same facts
// whatever order its events arrive in, because they follow from what GitHub reported and
// not from where the job happened to wait. A job that ran on a runner RunnerHub manages
// belongs to that runner's pool (allocation assigned). Any other job belongs to the first
// pool by name that fits it (assigned if GitHub named a runner, abandoned if it ended
// without one, cancelled while queued), or to none (unmatched). The pool is noted in the
// repository's profile. from is the job's status before this event: a job settled by an
// earlier event keeps what it was given.
func (p *planner) settle(job *Job, from Status) error {
	if from.Rank() >= StatusInProgress.Rank() {
		return nil
	}
	job.QueueKey = ""
	ran, err := p.runner(job.RunnerName)
	if err != nil {
		return err
	}
	fitting, err := p.fitting(job)
	switch {
	case err != nil:
		return err
	case ran != nil:
		job.Pool, job.Allocation = ran.Pool, AllocationAssigned
	case len(fitting) == 0:
		job.Pool, job.Allocation = "", AllocationUnmatched
	case job.RunnerName != "":
		job.Pool, job.Allocation = fitting[0].Name, AllocationAssigned
	default:
		job.Pool, job.Allocation = fitting[0].Name, AllocationAbandoned
	}
	if job.Pool == "" {
		return nil
	}
	return p.recordUse(job.Repository, job.Pool, job.CreatedAt)
}

// idleRunner finds an online idle runner of pool pl that can run job, reading the pool's
// idle runners page by page until one fits or the index ends, and counts the idle runners
// that would fit but are offline. Offline is decided on read (see Runner.Offline), so
// silent runners stay in the idle index and a search must be able to read past them.
func (p *planner) idleRunner(pl Pool, job *Job) (*Runner, int, error) {
	if err := p.gate(pl.Name, GateRunners); err != nil {
		return nil, 0, err
	}
	offline := 0
	// Runners this plan freed are not in the store's index yet; the others are read
	// from it.
	fits := func(r *Runner) bool {
		if r.Pool != pl.Name || r.State != RunnerIdle || !p.runnerFits(r, pl, job) {
			return false
		}
		if !p.online(r) {
			offline++
			return false
		}
		return true
	}
	for _, name := range slices.Sorted(maps.Keys(p.runners)) {
		if r := p.runners[name]; p.dirty[r] && fits(r) {
			return r, 0, nil
		}
	}
	for after, read := "", 0; ; {
		size := pageSize(read)
		page, err := p.e.Store.IdleRunners(p.ctx, pl.Name, after, size)
		if err != nil {
			return nil, 0, err
		}
		var fitting []*Runner
		for _, stored := range page {
			r := p.cachedRunner(stored)
			if r != nil && !p.dirty[r] && fits(r) {
				fitting = append(fitting, r)
			}
		}
		if len(fitting) > 0 {
			// Idle runners that fit are alike, so jobs queued at once spread over the
			// page's rather than all taking the first by name and conflicting on it.
			return fitting[uint64(job.ID)%uint64(len(fitting))], 0, nil
		}
		if len(page) < size {
			return nil, offline, nil
		}
		read, after = read+len(page), page[len(page)-1].Name
	}
}

// cachedRunner returns this plan's copy of a runner read from an index (nil if the plan
// removed it): the plan may already have changed it.
func (p *planner) cachedRunner(r *Runner) *Runner {
	if _, gone := p.deleted[r.Name]; gone {
		return nil
	}
	if cached, ok := p.runners[r.Name]; ok {
		return cached
	}
	keep(p, p.runners, r.Name, r)
	return r
}

// online reports whether r may be given a job now (see Engine.OfflineAfter).
func (p *planner) online(r *Runner) bool {
	return p.e.OfflineAfter <= 0 || !r.Offline(p.at, p.e.OfflineAfter)
}

// firstPage is the size of a search's first read of an index (a pool's idle runners or
// pending queue): the first entries usually decide. Later pages double, up to
// MaxListLimit, so that a long search costs few requests. No bound is needed beyond the
// index's end: reads are not part of a plan's transaction.
const firstPage = 8

// pageSize is the size of a search's next read after it has read `read` entries.
func pageSize(read int) int { return min(max(firstPage, read), MaxListLimit) }

// gate reads one allocation side of the pool's gate (once): the runners side before the
// plan reads the pool's idle runners, the jobs side before it reads the pool's queue.
// collectGates decides what the Change does with it.
func (p *planner) gate(pool string, side GateSide) error {
	key := GateKey{Pool: pool, Side: side}
	if _, read := p.gates[key]; read {
		return nil
	}
	g, err := p.e.Store.Gate(p.ctx, pool, side)
	if err != nil {
		return err
	}
	p.gates[key] = g
	return nil
}

// runnerFits reports whether the runner r of pool pl can run job: GitHub's rule, every job
// label among the runner's labels, which are its pool's and its own.
func (p *planner) runnerFits(r *Runner, pl Pool, job *Job) bool {
	return Fits(job.Labels, append(slices.Clip(pl.Labels), r.Labels...))
}

// maxPoolsRead bounds how many pools one search for a runner or a job reads, and so how
// many gates it adds to the plan: each is a write in the plan's transaction, which
// DynamoDB caps at 100 actions, and a job labelled only self-hosted fits every pool.
// Without the bound, a fleet of a hundred pools would make such a delivery impossible to
// commit; with it, pools past the first 32 by name are not searched by that plan (the
// job waits with a demand, or the runner stays idle).
const maxPoolsRead = 32

// Where match looks for a job for an idle runner.
const (
	ownQueue  = false // its pool's queue only
	anyQueues = true  // its pool's queue first, then the other pools'
)

// match reserves the idle runner r for the highest-ranked pending job it can run and
// returns that job (nil when none is waiting). Its own pool's queue comes first; when
// nothing there fits and acrossPools is set, the other pools' queues are searched,
// because a job that fits several pools waits in only one of them and must not wait
// beside an idle runner of another.
//
// Only the jobs side of the runner's own pool's gate is taken to search. That is enough:
// a job that r fits counts r's pool among its fitting pools (runnerFits and fitting
// agree), so a plan that leaves such a job pending, in whichever pool, has read r's
// pool's idle runners under its runners side, checks that side and bumps r's pool's jobs
// side (collectGates): of the two plans, the one committing second fails its check.
// Taking every searched pool's gate made small pools' gates as hot as the busiest
// pool's, each freed runner with nothing waiting at home writing them all.
func (p *planner) match(r *Runner, acrossPools bool) (*Job, error) {
	pl, ok, err := p.pool(r.Pool)
	if err != nil || !ok {
		return nil, err
	}
	if !p.leftPendingFor(r, pl) {
		if err := p.gate(r.Pool, GateJobs); err != nil {
			return nil, err
		}
	}
	best, err := p.firstFitting(r, pl, r.Pool)
	if err != nil || best != nil || !acrossPools {
		if best != nil {
			p.reserve(best, r)
		}
		return best, err
	}
	pools, err := p.allPools()
	if err != nil {
		return nil, err
	}
	searched := 1
	for _, other := range pools {
		if other.Name == r.Pool {
			continue
		}
		if searched >= maxPoolsRead {
			break
		}
		searched++
		j, err := p.firstFitting(r, pl, other.Name)
		if err != nil {
			return nil, err
		}
		if j != nil && (best == nil || j.QueueKey < best.QueueKey) {
			best = j
		}
	}
	if best != nil {
		p.reserve(best, r)
	}
	return best, nil
}

// leftPendingFor reports whether this plan has put a job that r fits in r's own queue
// (place does, before it matches): r is then taken whatever the queue holds, which is
// read only to rank, so no gate side need hold the decision and none is read for it.
func (p *planner) leftPendingFor(r *Runner, pl Pool) bool {
	for _, j := range p.jobs {
		if p.dirty[j] && j.Allocation == AllocationPending && j.Pool == r.Pool && p.runnerFits(r, pl, j) {
			return true
		}
	}
	return false
}

// firstFitting returns the highest-ranked job pending in queue's pool that the idle
// runner r of pool pl can run, or nil, reading the queue page by page until a job fits
// or the queue ends. The caller takes the gates (see match).
func (p *planner) firstFitting(r *Runner, pl Pool, queue string) (*Job, error) {
	fits := func(j *Job) bool {
		return j.Allocation == AllocationPending && j.Pool == queue && p.runnerFits(r, pl, j)
	}
	// The jobs this plan has read or changed are judged as the plan sees them (those it
	// made pending are not in the store's index yet); the rest as the index lists them.
	var best *Job
	for _, j := range p.jobs {
		if fits(j) && (best == nil || j.QueueKey < best.QueueKey) {
			best = j
		}
	}
	for after, read := "", 0; ; {
		size := pageSize(read)
		page, err := p.e.Store.PendingJobs(p.ctx, queue, after, size)
		if err != nil {
			return nil, err
		}
		for _, j := range page {
			if best != nil && j.QueueKey >= best.QueueKey {
				return best, nil // the index is in queue order: nothing later ranks higher
			}
			if _, seen := p.jobs[j.ID]; seen {
				continue
			}
			keep(p, p.jobs, j.ID, j)
			if fits(j) {
				return j, nil
			}
		}
		if len(page) < size {
			return best, nil
		}
		read, after = read+len(page), page[len(page)-1].QueueKey
	}
}

func (p *planner) reserve(j *Job, r *Runner) {
	j.Allocation, j.ReservedRunner, j.Pool, j.QueueKey = AllocationReserved, r.Name, r.Pool, ""
	r.State, r.JobID, r.UpdatedAt = RunnerReserved, j.ID, p.at
	p.touch(j)
	p.touch(r)
}

func (p *planner) demand(j *Job) {
	p.plan.Demands = append(p.plan.Demands, demandFor(j, p.at))
}

// start applies in_progress: the job runs on the runner GitHub names.
func (p *planner) start(job *Job, from Status) (Outcome, error) {
	if job.ReservedRunner != "" && job.ReservedRunner != job.RunnerName {
		// GitHub picked another runner: the reserved one goes to the next job.
		if err := p.release(job.ReservedRunner, job.ID); err != nil {
			return Outcome{}, err
		}
	}
	job.ReservedRunner = ""
	if err := p.settle(job, from); err != nil {
		return Outcome{}, err
	}
	r, err := p.runner(job.RunnerName)
	if err != nil || r == nil {
		return Outcome{Code: OutcomeJobUnmanaged, Runner: job.RunnerName}, err
	}
	if r.State == RunnerBusy && r.JobID != job.ID && r.JobID != 0 {
		// A runner runs one job at a time: if the job it is busy with started later, this
		// in_progress is a late event and the runner stays with the newer job.
		current, err := p.job(r.JobID)
		if err != nil {
			return Outcome{}, err
		}
		if current.StartedAt.After(job.StartedAt) {
			return Outcome{Code: OutcomeJobStartedLate, Runner: r.Name, OtherJob: current.ID}, nil
		}
	}
	if r.JobID != job.ID {
		// The runner was held for another job, which goes back to the queue.
		if err := p.requeueReserved(r); err != nil {
			return Outcome{}, err
		}
	}
	r.State, r.JobID, r.UpdatedAt = RunnerBusy, job.ID, p.at
	p.seen(r)
	p.touch(r)
	return Outcome{Code: OutcomeJobStarted, Runner: r.Name}, nil
}

// requeueReserved places the job r is reserved for again (another idle runner, or the
// pending queue with a scale-up demand) when r is taken by another job or retired.
func (p *planner) requeueReserved(r *Runner) error {
	if r.State != RunnerReserved || r.JobID == 0 {
		return nil
	}
	job, err := p.job(r.JobID)
	if err != nil {
		return err
	}
	if job.Allocation != AllocationReserved || job.ReservedRunner != r.Name {
		return nil
	}
	// Placed again like a newly queued job (at its old rank), so it takes another idle
	// runner if there is one rather than waiting beside it.
	pool := job.Pool
	job.Allocation, job.ReservedRunner, job.Pool = AllocationPending, "", ""
	_, err = p.place(job, pool)
	return err
}

// complete applies completed: record the end and free the runner for the next job.
func (p *planner) complete(job *Job, from Status) (Outcome, error) {
	if err := p.settle(job, from); err != nil {
		return Outcome{}, err
	}
	if err := p.retireEphemeral(job); err != nil {
		return Outcome{}, err
	}
	for _, name := range []string{job.ReservedRunner, job.RunnerName} {
		if err := p.release(name, job.ID); err != nil {
			return Outcome{}, err
		}
	}
	job.ReservedRunner = ""
	return Outcome{Code: OutcomeJobCompleted, Conclusion: job.Conclusion, Seconds: job.RunSeconds()}, nil
}

// release frees a managed runner held by job (an ephemeral one that ran it is retired
// already): it becomes idle and is matched with the next pending job. A runner already
// given to another job is left alone (events about the same runner can arrive out of
// order).
func (p *planner) release(name string, jobID int64) error {
	r, err := p.runner(name)
	if err != nil || r == nil || r.JobID != jobID {
		return err
	}
	r.State, r.JobID, r.UpdatedAt = RunnerIdle, 0, p.at
	p.seen(r)
	p.touch(r)
	_, err = p.match(r, anyQueues)
	return err
}

// retireEphemeral removes the ephemeral runner that GitHub reports the completed job ran
// on. Such a runner runs one job, so it is gone even when the job's in_progress has not
// been processed yet and the runner is still listed idle or reserved for another job
// (which is then placed again): it must not be given a job it will never run.
func (p *planner) retireEphemeral(job *Job) error {
	r, err := p.runner(job.RunnerName)
	if err != nil || r == nil || !r.Ephemeral || (r.State == RunnerBusy && r.JobID != job.ID) {
		return err
	}
	if err := p.requeueReserved(r); err != nil {
		return err
	}
	p.retire(r, RetireCompleted)
	return nil
}

// retire deletes the runner r in the change; a provisioned one is also announced as a
// Retire signal, so that its machine and its GitHub registration go too.
func (p *planner) retire(r *Runner, reason string) {
	delete(p.runners, r.Name)
	p.deleted[r.Name] = r
	if r.Provisioned() {
		p.plan.Retires = append(p.plan.Retires, Retire{Pool: r.Pool, Runner: r.Name, ProviderID: r.ProviderID,
			GitHubID: r.GitHubID, JobID: r.JobID, Reason: reason, At: p.at})
	}
}

// seen records that GitHub reported r at work at the plan's time: a runner that runs
// jobs is alive without heartbeats.
func (p *planner) seen(r *Runner) {
	if p.at.After(r.LastSeen) {
		r.LastSeen = p.at
	}
}

// recordUse notes in the repository's profile that a job created at created used pool.
// The profile keeps, per pool, the day of the latest such job (see Profile), so it is
// written only when a pool joins it or a new day begins: the jobs of a busy repository
// mostly leave it as it is, and a write that would change nothing is not made.
func (p *planner) recordUse(repo, pool string, created time.Time) error {
	if repo == "" {
		return nil
	}
	prof, err := p.e.Store.Profile(p.ctx, repo)
	if errors.Is(err, ErrNotFound) {
		prof, err = &Profile{Repository: repo}, nil
	}
	if err != nil {
		return err
	}
	day := ProfileDay(created)
	if last, ok := prof.PoolUses[pool]; ok && last >= day {
		return nil
	}
	uses := maps.Clone(prof.PoolUses)
	if uses == nil {
		uses = map[string]int{}
	}
	uses[pool] = day
	for len(uses) > maxProfilePools {
		delete(uses, leastUsed(uses))
	}
	if maps.Equal(uses, prof.PoolUses) {
		return nil // the pool was the least recent of a full profile
	}
	prof.PoolUses = uses
	p.plan.Change.Profiles = append(p.plan.Change.Profiles, prof)
	return nil
}

// ProfileDay is the day (since the Unix epoch, UTC) a profile records for a job created
// at t.
func ProfileDay(t time.Time) int { return int(t.Unix() / int64(24*time.Hour/time.Second)) }

// leastUsed is the pool of the profile used least recently (the first by name of those
// used on that day): which pool a full profile drops does not depend on the order in
// which jobs are counted.
func leastUsed(uses map[string]int) string {
	least := ""
	for _, name := range slices.Sorted(maps.Keys(uses)) {
		if least == "" || uses[name] < uses[least] {
			least = name
		}
	}
	return least
}

// prewarm signals the pools a repository's recent jobs used.
func (p *planner) prewarm(reason string) error {
	if p.rec.Repository == "" {
		p.ignore(reason + " without a repository")
		return nil
	}
	prof, err := p.e.Store.Profile(p.ctx, p.rec.Repository)
	if errors.Is(err, ErrNotFound) || (err == nil && len(prof.PoolUses) == 0) {
		p.plan.Outcome = Outcome{Code: OutcomeNoPoolHistory, Repository: p.rec.Repository}
		return nil
	}
	if err != nil {
		return err
	}
	pools := slices.Sorted(maps.Keys(prof.PoolUses))
	sort.SliceStable(pools, func(a, b int) bool { return prof.PoolUses[pools[a]] > prof.PoolUses[pools[b]] })
	p.plan.Prewarms = append(p.plan.Prewarms, Prewarm{Repository: p.rec.Repository, Pools: pools, Reason: reason, At: p.at})
	p.plan.Outcome = Outcome{Code: OutcomePrewarm, Repository: p.rec.Repository, Pools: pools}
	return nil
}

// workflowRun keeps the run record, changed only by information at least as new.
func (p *planner) workflowRun() error {
	ev, err := p.payload.run, p.payload.err
	if err != nil {
		return err
	}
	w := ev.WorkflowRun
	run, err := p.e.Store.Run(p.ctx, w.ID)
	if errors.Is(err, ErrNotFound) {
		run, err = &Run{ID: w.ID}, nil
	}
	if err != nil {
		return err
	}
	if run.Version > 0 && w.UpdatedAt.Before(run.UpdatedAt) {
		p.plan.Outcome = Outcome{Code: OutcomeRunStale, Run: run.ID, RunStatus: run.Status}
		return nil
	}
	run.Repository, run.WorkflowName, run.HeadBranch, run.HeadSHA = ev.Repository.FullName, w.Name, w.HeadBranch, w.HeadSHA
	run.Event, run.Status = w.Event, w.Status
	if w.Conclusion != nil {
		run.Conclusion = *w.Conclusion
	}
	if run.CreatedAt.IsZero() {
		run.CreatedAt = w.CreatedAt.UTC()
	}
	run.UpdatedAt = w.UpdatedAt.UTC()
	p.plan.Change.Runs = append(p.plan.Change.Runs, run)
	p.plan.Outcome = Outcome{Code: OutcomeRun, Run: run.ID, RunStatus: run.Status}
	return nil
}
