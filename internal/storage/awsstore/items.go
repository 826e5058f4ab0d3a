package awsstore

import (
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/runnerhub/webhooks/internal/jobs"
	"github.com/runnerhub/webhooks/internal/provider"
)

// The job domain's items are mapped by attributevalue over the structs below, one per
// entity. Each has the fields of its jobs type, in the same order and of the same types,
// so that the two convert into each other (jobAttrs(*j), jobs.Job(a)): a field added to
// an entity and not here is a compile error, not an attribute silently left unstored.
// The tags name the attributes; omitempty leaves zero values out of the item, so absent
// attributes read back as zero. Times are strings as deliveries' are (RFC 3339, UTC,
// milliseconds, see itemEncoder), lists are L (order and duplicates kept), PoolUses an M.
// The key attributes (pk, sk) and the index entries (gsi*) are set on the marshalled item:
// they derive from the entity, they are not fields of it.

type jobAttrs struct {
	ID             int64           `dynamodbav:"id,omitempty"`
	RunID          int64           `dynamodbav:"runId,omitempty"`
	Repository     string          `dynamodbav:"repository,omitempty"`
	Name           string          `dynamodbav:"name,omitempty"`
	Labels         []string        `dynamodbav:"labels,omitempty"`
	HeadSHA        string          `dynamodbav:"headSha,omitempty"`
	HTMLURL        string          `dynamodbav:"htmlUrl,omitempty"`
	Status         jobs.Status     `dynamodbav:"status,omitempty"`
	Conclusion     string          `dynamodbav:"conclusion,omitempty"`
	Priority       int             `dynamodbav:"priority,omitempty"`
	RunnerID       int64           `dynamodbav:"runnerId,omitempty"`
	RunnerName     string          `dynamodbav:"runnerName,omitempty"`
	Pool           string          `dynamodbav:"pool,omitempty"`
	Allocation     jobs.Allocation `dynamodbav:"allocation,omitempty"`
	ReservedRunner string          `dynamodbav:"reservedRunner,omitempty"`
	QueueKey       string          `dynamodbav:"queueKey,omitempty"`
	StartedRunner  string          `dynamodbav:"startedRunner,omitempty"`
	CreatedAt      time.Time       `dynamodbav:"createdAt,omitempty"`
	QueuedAt       time.Time       `dynamodbav:"queuedAt,omitempty"`
	StartedAt      time.Time       `dynamodbav:"startedAt,omitempty"`
	CompletedAt    time.Time       `dynamodbav:"completedAt,omitempty"`
	Deliveries     []string        `dynamodbav:"deliveries,omitempty"`
	Version        int64           `dynamodbav:"version,omitempty"`
}

type runnerAttrs struct {
	Name       string           `dynamodbav:"name,omitempty"`
	Pool       string           `dynamodbav:"pool,omitempty"`
	Labels     []string         `dynamodbav:"labels,omitempty"`
	Ephemeral  bool             `dynamodbav:"ephemeral,omitempty"`
	State      jobs.RunnerState `dynamodbav:"state,omitempty"`
	JobID      int64            `dynamodbav:"jobId,omitempty"`
	UpdatedAt  time.Time        `dynamodbav:"updatedAt,omitempty"`
	LastSeen   time.Time        `dynamodbav:"lastSeen,omitempty"`
	ProviderID string           `dynamodbav:"providerId,omitempty"`
	GitHubID   int64            `dynamodbav:"githubId,omitempty"`
	Version    int64            `dynamodbav:"version,omitempty"`
}

type runAttrs struct {
	ID           int64     `dynamodbav:"id,omitempty"`
	Repository   string    `dynamodbav:"repository,omitempty"`
	WorkflowName string    `dynamodbav:"workflowName,omitempty"`
	HeadBranch   string    `dynamodbav:"headBranch,omitempty"`
	HeadSHA      string    `dynamodbav:"headSha,omitempty"`
	Event        string    `dynamodbav:"event,omitempty"`
	Status       string    `dynamodbav:"status,omitempty"`
	Conclusion   string    `dynamodbav:"conclusion,omitempty"`
	CreatedAt    time.Time `dynamodbav:"createdAt,omitempty"`
	UpdatedAt    time.Time `dynamodbav:"updatedAt,omitempty"`
	Version      int64     `dynamodbav:"version,omitempty"`
}

type profileAttrs struct {
	Repository string         `dynamodbav:"repository,omitempty"`
	PoolUses   map[string]int `dynamodbav:"poolUses,omitempty"`
	Version    int64          `dynamodbav:"version,omitempty"`
}

type gateAttrs struct {
	Pool    string        `dynamodbav:"-"` // in the key only
	Side    jobs.GateSide `dynamodbav:"-"` // in the key only
	Version int64         `dynamodbav:"version,omitempty"`
}

// poolAttrs keeps a pool's provider as a map of its Go fields (Type, and Exec or EC2),
// and the timeouts as nanoseconds.
type poolAttrs struct {
	Name          string           `dynamodbav:"name,omitempty"`
	Labels        []string         `dynamodbav:"labels,omitempty"`
	MinIdle       int              `dynamodbav:"minIdle,omitempty"`
	MaxRunners    int              `dynamodbav:"maxRunners,omitempty"`
	Provider      *provider.Config `dynamodbav:"provider,omitempty"`
	BootTimeout   time.Duration    `dynamodbav:"bootTimeoutNs,omitempty"`
	IdleTimeout   time.Duration    `dynamodbav:"idleTimeoutNs,omitempty"`
	Ephemeral     bool             `dynamodbav:"ephemeral,omitempty"`
	Prewarm       int              `dynamodbav:"prewarm,omitempty"`
	RunnerScope   string           `dynamodbav:"runnerScope,omitempty"`
	RunnerGroupID int64            `dynamodbav:"runnerGroupId,omitempty"`
}

// counterAttrs are the tallies of a counter item.
type counterAttrs struct {
	Total     int64 `dynamodbav:"total"`
	Processed int64 `dynamodbav:"processed"`
	Errors    int64 `dynamodbav:"errors"`
}

// itemEncoder and itemDecoder store times as the rest of the table does (timeLayout:
// fixed width, so that a time sorts as a string) and leave zero times out.
var (
	itemEncoder = attributevalue.NewEncoder(func(o *attributevalue.EncoderOptions) {
		o.EncodeTime = func(t time.Time) (types.AttributeValue, error) { return stringValue(formatTime(t)), nil }
		o.OmitEmptyTime = true
	})
	itemDecoder = attributevalue.NewDecoder(func(o *attributevalue.DecoderOptions) {
		o.DecodeTime.S = func(s string) (time.Time, error) { return time.Parse(timeLayout, s) }
	})
)

// marshalItem is the item of an entity: key and the attributes of v.
func marshalItem(key map[string]types.AttributeValue, v any) (map[string]types.AttributeValue, error) {
	av, err := itemEncoder.Encode(v)
	if err != nil {
		return nil, err
	}
	m, ok := av.(*types.AttributeValueMemberM)
	if !ok {
		return nil, fmt.Errorf("%T does not encode as a map", v)
	}
	for name, v := range key {
		m.Value[name] = v
	}
	return m.Value, nil
}

// decoder returns the decoding of items whose attributes are an A, converted to a T.
func decoder[A, T any](convert func(A) T) func(map[string]types.AttributeValue) (T, error) {
	return func(item map[string]types.AttributeValue) (T, error) {
		var a A
		if err := itemDecoder.Decode(&types.AttributeValueMemberM{Value: item}, &a); err != nil {
			var zero T
			return zero, err
		}
		return convert(a), nil
	}
}

var (
	decodeJob     = decoder(func(a jobAttrs) *jobs.Job { j := jobs.Job(a); return &j })
	decodeRunner  = decoder(func(a runnerAttrs) *jobs.Runner { r := jobs.Runner(a); return &r })
	decodeRun     = decoder(func(a runAttrs) *jobs.Run { r := jobs.Run(a); return &r })
	decodeProfile = decoder(func(a profileAttrs) *jobs.Profile { p := jobs.Profile(a); return &p })
	decodePool    = decoder(func(a poolAttrs) jobs.Pool { return jobs.Pool(a) })
	decodeGate    = decoder(func(a gateAttrs) *jobs.Gate { g := jobs.Gate(a); return &g })
	decodeCounter = decoder(func(a counterAttrs) counterAttrs { return a })
)
