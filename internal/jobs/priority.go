package jobs

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Priority is the product description's calculateJobPriority, exactly: label tests are
// exact, case-sensitive matches, as in the original TypeScript (labels.includes).
func Priority(labels []string) int {
	has := func(names ...string) bool {
		for _, n := range names {
			if slices.Contains(labels, n) {
				return true
			}
		}
		return false
	}
	p := 0
	if has("production", "deploy") {
		p += 100
	}
	if has("critical", "urgent") {
		p += 50
	}
	if has("ubuntu-latest", "small") {
		p += 10
	}
	if has("large", "xl") {
		p -= 10
	}
	return p
}

// DefaultPriorityStep is how much waiting one priority point is worth.
const DefaultPriorityStep = time.Minute

// Rank orders the pending queue: the job with the smallest rank is served first.
//
// rank = queued_at − priority × step
//
// A job's rank is fixed when it is queued, and a job queued later starts with a later
// rank, so however high the priority of the jobs that keep arriving, a waiting job is
// overtaken only by jobs whose priority advantage exceeds the time it has already waited:
// nothing starves. With step = 1 minute, a deploy job (priority 100) goes ahead of a
// standard job (priority 10) queued up to 90 minutes earlier. A very large step gives
// the description's strict priority order; a zero step gives first come, first served.
func Rank(queuedAt time.Time, priority int, step time.Duration) time.Time {
	return queuedAt.Add(-time.Duration(priority) * step)
}

// rankOffset shifts ranks to non-negative numbers so they sort as fixed-width strings
// (some 290 years either side of the epoch).
const rankOffset = int64(1) << 62

// RankKey encodes a rank and job id as a string that sorts in queue order, for stores
// that keep the pending queue in a sorted index (DynamoDB sort keys, bbolt keys).
func RankKey(rank time.Time, jobID int64) string {
	return fmt.Sprintf("%020d#%020d", rank.UnixMicro()+rankOffset, jobID)
}

// Fits reports whether a job with jobLabels can run on a runner with runnerLabels (its
// pool's and its own): every job label must be among them, compared case-insensitively,
// "self-hosted" being implied for every runner.
func Fits(jobLabels, runnerLabels []string) bool {
	for _, l := range jobLabels {
		if strings.EqualFold(l, "self-hosted") {
			continue
		}
		if !slices.ContainsFunc(runnerLabels, func(p string) bool { return strings.EqualFold(p, l) }) {
			return false
		}
	}
	return true
}
