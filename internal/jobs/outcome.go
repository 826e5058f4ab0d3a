package jobs

import "fmt"

// OutcomeCode says what a change did, for programs: the post-commit event's subscribers
// (the reconciler, the provisioner, dashboards) act on the code and its parameters, and
// Outcome.Text renders them for people.
type OutcomeCode string

// The outcomes of deliveries (each workflow_job outcome names the delivery's job) and
// of fleet operations (each names the runner).
const (
	OutcomeIgnored        OutcomeCode = "ignored"           // Reason
	OutcomePong           OutcomeCode = "pong"              //
	OutcomeJobLate        OutcomeCode = "job.late"          // Status (the event's), Kept (the job's)
	OutcomeJobWaiting     OutcomeCode = "job.waiting"       //
	OutcomeJobUnmatched   OutcomeCode = "job.unmatched"     // Labels
	OutcomeJobReserved    OutcomeCode = "job.reserved"      // Runner, Pool
	OutcomeJobBehind      OutcomeCode = "job.behind"        // Pool, OtherJob (took Runner)
	OutcomeJobPending     OutcomeCode = "job.pending"       // Pool, Offline (fitting idle runners offline)
	OutcomeJobStarted     OutcomeCode = "job.started"       // Runner
	OutcomeJobUnmanaged   OutcomeCode = "job.unmanaged"     // Runner: started on a runner RunnerHub does not manage
	OutcomeJobStartedLate OutcomeCode = "job.started_late"  // Runner, OtherJob (the runner's newer job)
	OutcomeJobCompleted   OutcomeCode = "job.completed"     // Conclusion, Seconds
	OutcomePrewarm        OutcomeCode = "prewarm"           // Repository, Pools
	OutcomeNoPoolHistory  OutcomeCode = "prewarm.none"      // Repository
	OutcomeRun            OutcomeCode = "run"               // Run, RunStatus
	OutcomeRunStale       OutcomeCode = "run.stale"         // Run, RunStatus (kept)
	OutcomeRegistered     OutcomeCode = "runner.registered" // Runner, Pool, Reserved
	OutcomeRemoved        OutcomeCode = "runner.removed"    // Runner
	OutcomeHeartbeat      OutcomeCode = "runner.heartbeat"  // Runner, Reserved
	OutcomeStarting       OutcomeCode = "runner.starting"   // Runner, Pool, Job (0 for a warm runner); Runners, Pool for a burst
	OutcomeCreated        OutcomeCode = "runner.created"    // Runner
)

// Outcome is what a change did: a code and the parameters it names (the others stay
// zero). The allocation code states facts; Text is rendered only at the edges (the
// delivery's stored outcome, logs, live updates).
type Outcome struct {
	Code       OutcomeCode `json:"code"`
	Job        int64       `json:"job,omitempty"`
	OtherJob   int64       `json:"otherJob,omitempty"`
	Runner     string      `json:"runner,omitempty"`
	Pool       string      `json:"pool,omitempty"`
	Status     Status      `json:"status,omitempty"`
	Kept       Status      `json:"kept,omitempty"`
	Labels     []string    `json:"labels,omitempty"`
	Offline    int         `json:"offline,omitempty"`
	Conclusion string      `json:"conclusion,omitempty"`
	Seconds    float64     `json:"seconds,omitempty"`
	Repository string      `json:"repository,omitempty"`
	Pools      []string    `json:"pools,omitempty"`
	Run        int64       `json:"run,omitempty"`
	RunStatus  string      `json:"runStatus,omitempty"`
	// Reserved is the job a fleet operation reserved its runner for, 0 for none.
	Reserved int64  `json:"reserved,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// Runners are the runners a burst started in one commit.
	Runners []string `json:"runners,omitempty"`
}

// Text renders the outcome for people, as the delivery records, logs and dashboards show it.
func (o Outcome) Text() string {
	switch o.Code {
	case OutcomeIgnored:
		return "ignored: " + o.Reason
	case OutcomePong:
		return "pong"
	case OutcomeJobLate:
		return fmt.Sprintf("job %d: late or repeated %s, status stays %s", o.Job, o.Status, o.Kept)
	case OutcomeJobWaiting:
		return fmt.Sprintf("job %d waiting", o.Job)
	case OutcomeJobUnmatched:
		return fmt.Sprintf("job %d queued; no pool fits labels %v", o.Job, o.Labels)
	case OutcomeJobReserved:
		return fmt.Sprintf("job %d queued; reserved runner %s in pool %s", o.Job, o.Runner, o.Pool)
	case OutcomeJobBehind:
		return fmt.Sprintf("job %d queued in pool %s behind job %d, which took runner %s", o.Job, o.Pool, o.OtherJob, o.Runner)
	case OutcomeJobPending:
		if o.Offline > 0 {
			return fmt.Sprintf("job %d queued in pool %s; %d fitting idle runner(s) offline, demand sent", o.Job, o.Pool, o.Offline)
		}
		return fmt.Sprintf("job %d queued in pool %s; no idle runner, demand sent", o.Job, o.Pool)
	case OutcomeJobStarted:
		return fmt.Sprintf("job %d in progress on runner %s", o.Job, o.Runner)
	case OutcomeJobUnmanaged:
		return fmt.Sprintf("job %d in progress on unmanaged runner %q", o.Job, o.Runner)
	case OutcomeJobStartedLate:
		return fmt.Sprintf("job %d in progress on runner %s (late event: the runner has since started job %d)", o.Job, o.Runner, o.OtherJob)
	case OutcomeJobCompleted:
		return fmt.Sprintf("job %d completed (%s) after %.0fs", o.Job, o.Conclusion, o.Seconds)
	case OutcomePrewarm:
		return fmt.Sprintf("pre-warm %v for %s", o.Pools, o.Repository)
	case OutcomeNoPoolHistory:
		return "no pool history for " + o.Repository + "; nothing to pre-warm"
	case OutcomeRun:
		return fmt.Sprintf("run %d %s", o.Run, o.RunStatus)
	case OutcomeRunStale:
		return fmt.Sprintf("run %d: older than what is recorded, kept %s", o.Run, o.RunStatus)
	case OutcomeRegistered:
		return "runner " + o.Runner + " registered in pool " + o.Pool + o.reserved()
	case OutcomeRemoved:
		return "runner " + o.Runner + " removed"
	case OutcomeHeartbeat:
		return "heartbeat of runner " + o.Runner + o.reserved()
	case OutcomeStarting:
		if len(o.Runners) > 0 {
			return fmt.Sprintf("%d runners starting in pool %s", len(o.Runners), o.Pool)
		}
		if o.Job == 0 {
			return "runner " + o.Runner + " starting in pool " + o.Pool + " (warm)"
		}
		return fmt.Sprintf("runner %s starting in pool %s for job %d", o.Runner, o.Pool, o.Job)
	case OutcomeCreated:
		return "runner " + o.Runner + " created by its provider"
	}
	return string(o.Code)
}

func (o Outcome) reserved() string {
	if o.Reserved == 0 {
		return ""
	}
	return fmt.Sprintf("; reserved for job %d", o.Reserved)
}
