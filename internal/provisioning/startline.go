package provisioning

import (
	"context"
	"sync"
	"time"

	"github.com/runnerhub/webhooks/internal/jobs"
)

// startLine records the starts of one pool in this process, a burst at a time. Every
// start writes its pool's gate, so starts recorded one by one would wait for each
// other's commits (or conflict and be planned again): a burst of 200 demands would
// spend most of its time in that line. Instead the first start to arrive commits
// whatever has arrived since the last commit ended, up to jobs.MaxStartBatch, in one
// StartRunners; while it commits, the next starts gather, and the first of them commits
// them next. There is no timer: a lone start commits at once.
type startLine struct {
	mu      sync.Mutex
	waiting []*lineSpot
	busy    bool // a start is committing the line
}

// lineSpot is one start waiting in the line and, once committed, its result.
type lineSpot struct {
	spec   jobs.StartSpec
	result jobs.Started
	err    error
	// lead is set, before done is closed, on the spot whose start commits next.
	lead bool
	done chan struct{}
}

// start records spec's runner, with the specs waiting beside it, through engine.StartRunners.
func (l *startLine) start(ctx context.Context, spec jobs.StartSpec, now time.Time, engine *jobs.Engine) (jobs.Started, error) {
	me := &lineSpot{spec: spec, done: make(chan struct{})}
	l.mu.Lock()
	l.waiting = append(l.waiting, me)
	leads := !l.busy
	l.busy = true
	l.mu.Unlock()
	if !leads {
		<-me.done
		if !me.lead {
			return me.result, me.err
		}
	}
	// me is first in the line: the line was empty, or the last commit chose me.
	l.mu.Lock()
	n := min(len(l.waiting), jobs.MaxStartBatch)
	burst := l.waiting[:n:n]
	l.waiting = l.waiting[n:]
	l.mu.Unlock()

	specs := make([]jobs.StartSpec, len(burst))
	for i, s := range burst {
		specs[i] = s.spec
	}
	started, _, err := engine.StartRunners(ctx, specs, now)
	for i, s := range burst {
		if err == nil {
			s.result = started[i]
		}
		s.err = err
		if s != me {
			close(s.done)
		}
	}

	l.mu.Lock()
	if len(l.waiting) > 0 {
		next := l.waiting[0]
		next.lead = true
		close(next.done)
	} else {
		l.busy = false
	}
	l.mu.Unlock()
	return me.result, me.err
}
