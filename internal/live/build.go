package live

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/jobs"
)

// JobHref is where the management API serves a job.
func JobHref(id int64) string { return "/api/jobs/" + strconv.FormatInt(id, 10) }

// Messages returns what a commit announces, in order. For a delivery: its event's own
// message(s) (workflow-job for every job the delivery changed, push-event, pull-request,
// ping), then webhook-event, which every delivery gets. For a fleet operation: a
// workflow-job (action "allocation") for every job it moved. Everything comes from the
// commit's facts; only the repository messages decode the payload (the engine did not),
// for the few fields they carry, and a payload that does not decode gets its
// webhook-event only.
func Messages(c *jobs.Commit) []Message {
	rec := c.Delivery
	if rec == nil {
		return jobMessages(c, "")
	}
	room, at := Room(rec.Repository), c.At
	var msgs []Message
	switch rec.Event {
	case "workflow_job":
		msgs = jobMessages(c, rec.Action)
	case "push":
		var p pushPayload
		if json.Unmarshal(rec.Payload, &p) == nil {
			msgs = append(msgs, Message{Event: EventPush, Room: room, At: at, Data: p.data(rec, c.Plan),
				Brief: pushBrief{Trimmed: trimmed(""), Repository: repoRef{rec.Repository}, Ref: p.Ref, After: p.After, DeliveryID: rec.DeliveryID}})
		}
	case "pull_request":
		var p pullRequestPayload
		if json.Unmarshal(rec.Payload, &p) == nil {
			msgs = append(msgs, Message{Event: EventPullRequest, Room: room, At: at, Data: p.data(rec, c.Plan),
				Brief: pullRequestBrief{Trimmed: trimmed(""), Action: rec.Action, Repository: repoRef{rec.Repository}, Number: p.Number, DeliveryID: rec.DeliveryID}})
		}
	case "ping":
		var p pingPayload
		if json.Unmarshal(rec.Payload, &p) == nil {
			msgs = append(msgs, Message{Event: EventPing, Room: room, At: at, Data: pingData{
				Zen: p.Zen, HookID: p.HookID, Repository: optionalRepo(rec.Repository), DeliveryID: rec.DeliveryID,
			}})
		}
	}
	return append(msgs, Message{Event: EventWebhook, Room: room, At: at, Data: webhookData{
		DeliveryID: rec.DeliveryID, HookID: rec.HookID, Event: rec.Event, Action: rec.Action, Repository: rec.Repository,
		Timestamp: rec.ReceivedAt.UTC(), ProcessedAt: at, Processed: true, State: c.State, Outcome: c.Outcome.Text(), OutcomeCode: c.Outcome.Code,
	}})
}

// jobMessages announces every job the commit changed: a delivery's own job with GitHub's
// action (ownAction), and jobs whose allocation it changed in passing (a runner it freed
// went to the next job in the queue, a reservation it broke sent a job back to the queue)
// with the action "allocation" in its repository's room. "applied" is the plan's:
// false only for the own job of a late or repeated event.
func jobMessages(c *jobs.Commit, ownAction string) []Message {
	var deliveryID string
	if c.Delivery != nil {
		deliveryID = c.Delivery.DeliveryID
	}
	var msgs []Message
	for _, tr := range c.Transitions {
		j, action, room := tr.Job, "allocation", Room(tr.Job.Repository)
		if tr.Own {
			action, room = ownAction, Room(c.Delivery.Repository)
		}
		t := transition{Status: j.Status, Allocation: j.Allocation, Applied: tr.Applied, Outcome: c.Outcome.Text(), OutcomeCode: c.Outcome.Code}
		msgs = append(msgs, Message{
			Event: EventWorkflowJob, Room: room, At: c.At,
			Data: jobData{Action: action, Repository: repoRef{j.Repository}, Job: viewJob(j), Transition: t, DeliveryID: deliveryID},
			Brief: jobBrief{Trimmed: trimmed(JobHref(j.ID)), Action: action, Repository: repoRef{j.Repository},
				Job:        jobRef{ID: j.ID, Status: j.Status, Conclusion: j.Conclusion, Allocation: j.Allocation, Pool: j.Pool},
				Transition: t, DeliveryID: deliveryID},
		})
	}
	return msgs
}

// repoRef is the description's repository object: data.repository.full_name.
type repoRef struct {
	FullName string `json:"full_name"`
}

func optionalRepo(name string) *repoRef {
	if name == "" {
		return nil
	}
	return &repoRef{name}
}

type transition struct {
	Status     jobs.Status     `json:"status"`
	Allocation jobs.Allocation `json:"allocation,omitempty"`
	// Applied is false for a late or repeated event that did not move the job.
	Applied bool   `json:"applied"`
	Outcome string `json:"outcome"`
	// OutcomeCode is the outcome for programs (jobs.OutcomeCode), Outcome its text.
	OutcomeCode jobs.OutcomeCode `json:"outcomeCode"`
}

type jobData struct {
	Action     string     `json:"action"`
	Repository repoRef    `json:"repository"`
	Job        jobView    `json:"job"`
	Transition transition `json:"transition"`
	DeliveryID string     `json:"deliveryId"`
}

type jobRef struct {
	ID         int64           `json:"id"`
	Status     jobs.Status     `json:"status"`
	Conclusion string          `json:"conclusion,omitempty"`
	Allocation jobs.Allocation `json:"allocation,omitempty"`
	Pool       string          `json:"pool,omitempty"`
}

type jobBrief struct {
	Trimmed
	Action     string     `json:"action"`
	Repository repoRef    `json:"repository"`
	Job        jobRef     `json:"job"`
	Transition transition `json:"transition"`
	DeliveryID string     `json:"deliveryId"`
}

// jobView is a job record as clients see it (camelCase, zero values left out, as the
// management API's jobs).
type jobView struct {
	ID             int64           `json:"id"`
	RunID          int64           `json:"runId,omitempty"`
	Repository     string          `json:"repository"`
	Name           string          `json:"name,omitempty"`
	Labels         []string        `json:"labels"`
	HeadSHA        string          `json:"headSha,omitempty"`
	HTMLURL        string          `json:"htmlUrl,omitempty"`
	Status         jobs.Status     `json:"status"`
	Conclusion     string          `json:"conclusion,omitempty"`
	Priority       int             `json:"priority"`
	RunnerID       int64           `json:"runnerId,omitempty"`
	RunnerName     string          `json:"runnerName,omitempty"`
	Pool           string          `json:"pool,omitempty"`
	Allocation     jobs.Allocation `json:"allocation,omitempty"`
	ReservedRunner string          `json:"reservedRunner,omitempty"`
	CreatedAt      *time.Time      `json:"createdAt,omitempty"`
	QueuedAt       *time.Time      `json:"queuedAt,omitempty"`
	StartedAt      *time.Time      `json:"startedAt,omitempty"`
	CompletedAt    *time.Time      `json:"completedAt,omitempty"`
	WaitSeconds    float64         `json:"waitSeconds,omitempty"`
	RunSeconds     float64         `json:"runSeconds,omitempty"`
}

func viewJob(j *jobs.Job) jobView {
	labels := j.Labels
	if labels == nil {
		labels = []string{}
	}
	return jobView{
		ID: j.ID, RunID: j.RunID, Repository: j.Repository, Name: j.Name, Labels: labels, HeadSHA: j.HeadSHA,
		HTMLURL: j.HTMLURL, Status: j.Status, Conclusion: j.Conclusion, Priority: j.Priority, RunnerID: j.RunnerID,
		RunnerName: j.RunnerName, Pool: j.Pool, Allocation: j.Allocation, ReservedRunner: j.ReservedRunner,
		CreatedAt: optionalTime(j.CreatedAt), QueuedAt: optionalTime(j.QueuedAt), StartedAt: optionalTime(j.StartedAt),
		CompletedAt: optionalTime(j.CompletedAt), WaitSeconds: j.WaitSeconds(), RunSeconds: j.RunSeconds(),
	}
}

func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// The payload fields the repository messages carry.
type (
	pushPayload struct {
		refUpdate
		Commits []struct {
			ID string `json:"id"`
		} `json:"commits"`
		HeadCommit *struct {
			ID        string `json:"id"`
			Message   string `json:"message"`
			Timestamp string `json:"timestamp"`
		} `json:"head_commit"`
		Pusher struct {
			Name string `json:"name"`
		} `json:"pusher"`
		Sender sender `json:"sender"`
	}
	pullRequestPayload struct {
		Number      int `json:"number"`
		PullRequest struct {
			Title   string `json:"title"`
			State   string `json:"state"`
			Draft   bool   `json:"draft"`
			Merged  bool   `json:"merged"`
			HTMLURL string `json:"html_url"`
			User    struct {
				Login string `json:"login"`
			} `json:"user"`
			Head branchRef `json:"head"`
			Base branchRef `json:"base"`
		} `json:"pull_request"`
		Sender sender `json:"sender"`
	}
	pingPayload struct {
		Zen    string `json:"zen"`
		HookID int64  `json:"hook_id"`
	}
	sender struct {
		Login string `json:"login"`
	}
	branchRef struct {
		Ref string `json:"ref"`
		SHA string `json:"sha"`
	}
)

// maxCommitMessage bounds the head commit message a push-event carries.
const maxCommitMessage = 1024

// refUpdate is what a push did to its ref, as GitHub's payload says and as the
// push-event passes it on (the same JSON names).
type refUpdate struct {
	Ref     string `json:"ref"`
	Before  string `json:"before"`
	After   string `json:"after"`
	Created bool   `json:"created"`
	Deleted bool   `json:"deleted"`
	Forced  bool   `json:"forced"`
}

type pushData struct {
	Repository repoRef `json:"repository"`
	refUpdate
	Commits    int         `json:"commits"`
	HeadCommit *headCommit `json:"headCommit,omitempty"`
	Pusher     string      `json:"pusher,omitempty"`
	Sender     string      `json:"sender,omitempty"`
	// Prewarm are the pools signalled to get ready for this repository's jobs.
	Prewarm    []string `json:"prewarm,omitempty"`
	DeliveryID string   `json:"deliveryId"`
}

type headCommit struct {
	ID        string `json:"id"`
	Message   string `json:"message"`
	Timestamp string `json:"timestamp,omitempty"`
}

type pushBrief struct {
	Trimmed
	Repository repoRef `json:"repository"`
	Ref        string  `json:"ref"`
	After      string  `json:"after"`
	DeliveryID string  `json:"deliveryId"`
}

func (p *pushPayload) data(rec *delivery.Record, plan *jobs.Plan) pushData {
	d := pushData{
		Repository: repoRef{rec.Repository}, refUpdate: p.refUpdate, Commits: len(p.Commits), Pusher: p.Pusher.Name, Sender: p.Sender.Login,
		Prewarm: prewarmed(plan), DeliveryID: rec.DeliveryID,
	}
	if c := p.HeadCommit; c != nil {
		msg := c.Message
		if len(msg) > maxCommitMessage {
			msg = msg[:maxCommitMessage] // may split a UTF-8 sequence; JSON encoding replaces it
		}
		d.HeadCommit = &headCommit{ID: c.ID, Message: msg, Timestamp: c.Timestamp}
	}
	return d
}

type pullRequestData struct {
	Action      string          `json:"action"`
	Number      int             `json:"number"`
	Repository  repoRef         `json:"repository"`
	PullRequest pullRequestView `json:"pullRequest"`
	Sender      string          `json:"sender,omitempty"`
	Prewarm     []string        `json:"prewarm,omitempty"`
	DeliveryID  string          `json:"deliveryId"`
}

type pullRequestView struct {
	Title   string    `json:"title"`
	State   string    `json:"state"`
	Draft   bool      `json:"draft"`
	Merged  bool      `json:"merged"`
	HTMLURL string    `json:"htmlUrl,omitempty"`
	User    string    `json:"user,omitempty"`
	Head    branchRef `json:"head"`
	Base    branchRef `json:"base"`
}

type pullRequestBrief struct {
	Trimmed
	Action     string  `json:"action"`
	Repository repoRef `json:"repository"`
	Number     int     `json:"number"`
	DeliveryID string  `json:"deliveryId"`
}

func (p *pullRequestPayload) data(rec *delivery.Record, plan *jobs.Plan) pullRequestData {
	pr := p.PullRequest
	return pullRequestData{
		Action: rec.Action, Number: p.Number, Repository: repoRef{rec.Repository},
		PullRequest: pullRequestView{Title: pr.Title, State: pr.State, Draft: pr.Draft, Merged: pr.Merged,
			HTMLURL: pr.HTMLURL, User: pr.User.Login, Head: pr.Head, Base: pr.Base},
		Sender: p.Sender.Login, Prewarm: prewarmed(plan), DeliveryID: rec.DeliveryID,
	}
}

func prewarmed(plan *jobs.Plan) []string {
	var pools []string
	for _, w := range plan.Prewarms {
		pools = append(pools, w.Pools...)
	}
	return pools
}

type pingData struct {
	Zen        string   `json:"zen"`
	HookID     int64    `json:"hookId"`
	Repository *repoRef `json:"repository,omitempty"`
	DeliveryID string   `json:"deliveryId"`
}

// webhookData is the description's webhook-event: event.event, event.repository, plus
// what the processor made of it.
type webhookData struct {
	DeliveryID  string           `json:"deliveryId"`
	HookID      string           `json:"hookId"`
	Event       string           `json:"event"`
	Action      string           `json:"action,omitempty"`
	Repository  string           `json:"repository,omitempty"`
	Timestamp   time.Time        `json:"timestamp"`
	ProcessedAt time.Time        `json:"processedAt"`
	Processed   bool             `json:"processed"`
	State       delivery.State   `json:"state"`
	Outcome     string           `json:"outcome"`
	OutcomeCode jobs.OutcomeCode `json:"outcomeCode"`
}
