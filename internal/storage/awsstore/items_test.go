package awsstore

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/runnerhub/webhooks/internal/jobs"
)

// Items already stored must read back, so every entity keeps the attribute names and
// types it had when it was encoded by hand: all fields set, each attribute is checked
// by name, type and value, and the entity decodes back equal.
func TestEntityAttributesAreStable(t *testing.T) {
	at := time.Date(2024, 5, 1, 12, 0, 0, 123_000_000, time.UTC)
	const stamp = "S:2024-05-01T12:00:00.123Z"
	job := &jobs.Job{ID: 42, RunID: 7, Repository: "o/r", Name: "build", Labels: []string{"linux", "x64"},
		HeadSHA: "abc", HTMLURL: "https://x/42", Status: jobs.StatusQueued, Conclusion: "success", Priority: 10,
		RunnerID: 9, RunnerName: "r-1", Pool: "linux", Allocation: jobs.AllocationPending, ReservedRunner: "r-2",
		QueueKey: "q", CreatedAt: at, QueuedAt: at, StartedAt: at, CompletedAt: at, Deliveries: []string{"1:a"}, Version: 3}
	runner := &jobs.Runner{Name: "r-1", Pool: "linux", Labels: []string{"big"}, Ephemeral: true,
		State: jobs.RunnerBusy, JobID: 42, UpdatedAt: at, LastSeen: at, Version: 2}
	run := &jobs.Run{ID: 7, Repository: "o/r", WorkflowName: "CI", HeadBranch: "main", HeadSHA: "abc",
		Event: "push", Status: "completed", Conclusion: "success", CreatedAt: at, UpdatedAt: at, Version: 1}
	profile := &jobs.Profile{Repository: "o/r", PoolUses: map[string]int{"linux": 3}, Version: 4}
	pool := jobs.Pool{Name: "linux", Labels: []string{"linux"}, MinIdle: 1, MaxRunners: 5}

	jobItem, err := encodeJob(job)
	must(t, err)
	runnerItem, err := encodeRunner(runner)
	must(t, err)
	runItem, err := marshalItem(runKey(run.ID), runAttrs(*run))
	must(t, err)
	profileItem, err := marshalItem(profileKey(profile.Repository), profileAttrs(*profile))
	must(t, err)
	poolItem, err := marshalItem(poolKey(pool.Name), poolAttrs(pool))
	must(t, err)

	cases := []struct {
		name string
		item map[string]types.AttributeValue
		want map[string]string // attribute → type:value, key and index attributes left out
	}{
		{"Job", jobItem, map[string]string{"id": "N:42", "runId": "N:7", "repository": "S:o/r", "name": "S:build",
			"labels": "L:[S:linux S:x64]", "headSha": "S:abc", "htmlUrl": "S:https://x/42", "status": "S:queued",
			"conclusion": "S:success", "priority": "N:10", "runnerId": "N:9", "runnerName": "S:r-1", "pool": "S:linux",
			"allocation": "S:pending", "reservedRunner": "S:r-2", "queueKey": "S:q", "createdAt": stamp, "queuedAt": stamp,
			"startedAt": stamp, "completedAt": stamp, "deliveries": "L:[S:1:a]", "version": "N:3"}},
		{"Runner", runnerItem, map[string]string{"name": "S:r-1", "pool": "S:linux", "labels": "L:[S:big]",
			"ephemeral": "BOOL:true", "state": "S:busy", "jobId": "N:42", "updatedAt": stamp, "lastSeen": stamp, "version": "N:2"}},
		{"Run", runItem, map[string]string{"id": "N:7", "repository": "S:o/r", "workflowName": "S:CI", "headBranch": "S:main",
			"headSha": "S:abc", "event": "S:push", "status": "S:completed", "conclusion": "S:success",
			"createdAt": stamp, "updatedAt": stamp, "version": "N:1"}},
		{"Profile", profileItem, map[string]string{"repository": "S:o/r", "poolUses": "M:[linux=N:3]", "version": "N:4"}},
		{"Pool", poolItem, map[string]string{"name": "S:linux", "labels": "L:[S:linux]", "minIdle": "N:1", "maxRunners": "N:5"}},
		{"ZeroValuesLeftOut", func() map[string]types.AttributeValue {
			item, err := encodeJob(&jobs.Job{ID: 1})
			must(t, err)
			return item
		}(), map[string]string{"id": "N:1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := map[string]string{}
			for name, v := range c.item {
				if name != attrPK && name != attrSK && !strings.HasPrefix(name, "gsi") {
					got[name] = show(v)
				}
			}
			names := maps.Clone(got)
			maps.Copy(names, c.want)
			for _, name := range slices.Sorted(maps.Keys(names)) {
				if got[name] != c.want[name] {
					t.Errorf("%s: %q, want %q", name, got[name], c.want[name])
				}
			}
		})
	}

	roundTrips := []struct {
		name      string
		want, got any
	}{
		{"Job", job, decoded(decodeJob(jobItem))},
		{"Runner", runner, decoded(decodeRunner(runnerItem))},
		{"Run", run, decoded(decodeRun(runItem))},
		{"Profile", profile, decoded(decodeProfile(profileItem))},
		{"Pool", pool, decoded(decodePool(poolItem))},
	}
	for _, r := range roundTrips {
		if !reflect.DeepEqual(r.want, r.got) {
			t.Errorf("%s decodes as %+v, want %+v", r.name, r.got, r.want)
		}
	}
}

// show writes an attribute value as type:value.
func show(v types.AttributeValue) string {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return "S:" + v.Value
	case *types.AttributeValueMemberN:
		return "N:" + v.Value
	case *types.AttributeValueMemberBOOL:
		return fmt.Sprintf("BOOL:%v", v.Value)
	case *types.AttributeValueMemberL:
		parts := make([]string, len(v.Value))
		for i, e := range v.Value {
			parts[i] = show(e)
		}
		return "L:[" + strings.Join(parts, " ") + "]"
	case *types.AttributeValueMemberM:
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(v.Value)) {
			parts = append(parts, k+"="+show(v.Value[k]))
		}
		return "M:[" + strings.Join(parts, " ") + "]"
	}
	return fmt.Sprintf("%T", v)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// decoded is what a decoder returned: the value, or the error.
func decoded[T any](v T, err error) any {
	if err != nil {
		return err
	}
	return v
}
