package reconcile

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/runnerhub/webhooks/internal/checkpoint"
	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/github"
)

// hookCheckpoint is how far a hook's delivery log has been read.
type hookCheckpoint struct {
	// HookID is the X-GitHub-Hook-ID of the hook's deliveries (the App's is learnt from
	// one of its deliveries).
	HookID string `json:"hookId,omitempty"`
	// Cursor is the oldest attempt id still of interest: the first attempt of the oldest
	// GUID not yet settled, else the newest attempt read. Reading stops below it.
	Cursor int64 `json:"cursor,omitempty"`
	// Settled are GUIDs decided without success (late acknowledgement, given up), or
	// marked redelivered, whose attempts are still at or above Cursor, so they are not
	// counted or marked twice.
	Settled map[string]int64 `json:"settled,omitempty"` // GUID → its newest attempt id
	// GivenUp lists the GUIDs given up in GitHub's window, newest last, for health.
	GivenUp []GivenUp `json:"givenUp,omitempty"`
}

// GivenUp is a delivery the reconciler stopped redelivering.
type GivenUp struct {
	Hook         string    `json:"hook"`
	GUID         string    `json:"guid"`
	Event        string    `json:"event"`
	FirstAttempt time.Time `json:"firstAttempt"`
	Redeliveries int       `json:"redeliveries"`
	At           time.Time `json:"at"`
}

// maxGivenUpListed bounds the list kept for health.
const maxGivenUpListed = 100

// attempts are one GUID's attempts in the part of the log read.
type attempts struct {
	guid, event     string
	ok              bool
	first           time.Time
	firstID, lastID int64
	redeliveries    int
	// originalFailed: the original attempt (not a redelivery) was read and failed;
	// redeliveryOK: a redelivery succeeded.
	originalFailed, redeliveryOK bool
}

func (a *attempts) add(d github.Delivery) {
	if a.firstID == 0 || d.ID < a.firstID {
		a.firstID, a.first, a.event = d.ID, d.DeliveredAt, d.Event
	}
	a.lastID = max(a.lastID, d.ID)
	a.ok = a.ok || d.OK()
	if d.Redelivery {
		a.redeliveries++
		a.redeliveryOK = a.redeliveryOK || d.OK()
	} else {
		a.originalFailed = !d.OK()
	}
}

// cameByRedelivery: what RunnerHub recorded of this GUID can only have come by a
// redelivery. (A GUID whose original RunnerHub recorded too late and that someone
// redelivered by hand also passes; the reconciler itself never redelivers those.)
func (a *attempts) cameByRedelivery() bool { return a.originalFailed && a.redeliveryOK }

func hookCheckpointName(h github.Hook) string { return "redelivery/" + h.String() }

// redeliver runs the redelivery step over every watched hook, sharing the cycle's cap.
func (r *Reconciler) redeliver(ctx context.Context, rep *Report) error {
	budget := r.Limits.RedeliveriesPerCycle
	var errs []error
	for _, h := range r.Hooks {
		err := r.redeliverHook(ctx, h, &budget, rep)
		var limited *github.RateLimitedError
		if errors.As(err, &limited) {
			return errors.Join(err, r.saveSummary(ctx))
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(append(errs, r.saveSummary(ctx))...)
}

func (r *Reconciler) redeliverHook(ctx context.Context, h github.Hook, budget *int, rep *Report) error {
	name := hookCheckpointName(h)
	var cp hookCheckpoint
	if err := r.loadCheckpoint(ctx, name, &cp); err != nil {
		return err
	}
	now := r.Now().UTC()
	groups, order, newest, oldest, err := r.readLog(ctx, h, cp.Cursor, now.Add(-Window))
	if err != nil {
		return err
	}
	if cp.HookID == "" && len(order) > 0 {
		if cp.HookID, err = r.GitHub.HookID(ctx, h, groups[order[0]].lastID); err != nil {
			return err
		}
	}
	if cp.Settled == nil {
		cp.Settled = map[string]int64{}
	}
	var pendingFrom int64
	var failed error
	// Oldest first: the cap goes to the GUIDs closest to leaving GitHub's window.
	for _, guid := range slices.Backward(order) {
		a := groups[guid]
		_, settled := cp.Settled[guid]
		if a.ok && (settled || !a.cameByRedelivery()) {
			continue
		}
		if settled {
			cp.Settled[guid] = a.lastID
			continue
		}
		if a.ok {
			if err := r.markRedelivered(ctx, h, cp.HookID, a); err != nil {
				// Keep the GUID in the part read next cycle, to mark it then.
				if pendingFrom == 0 || a.firstID < pendingFrom {
					pendingFrom = a.firstID
				}
				failed = cmp.Or(failed, err)
				continue
			}
			cp.Settled[guid] = a.lastID
			continue
		}
		outcome, err := r.decide(ctx, h, cp.HookID, a, budget, rep, now)
		if outcome == givenUp {
			cp.GivenUp = append(cp.GivenUp, GivenUp{Hook: h.String(), GUID: guid, Event: a.event, FirstAttempt: a.first, Redeliveries: a.redeliveries, At: now})
		}
		if outcome != pending {
			cp.Settled[guid] = a.lastID
			continue
		}
		if pendingFrom == 0 || a.firstID < pendingFrom {
			pendingFrom = a.firstID
		}
		var limited *github.RateLimitedError
		if errors.As(err, &limited) || errors.Is(err, github.ErrUnavailable) || ctx.Err() != nil {
			// GitHub is limiting, down or slow: the other GUIDs would fare no better.
			failed = err
			break
		}
		if err != nil && failed == nil {
			failed = err
		}
	}
	switch {
	case pendingFrom != 0:
		cp.Cursor = pendingFrom
	case failed != nil:
		// Stopped before deciding every GUID: read the same part again next cycle.
		cp.Cursor = max(cp.Cursor, oldest)
	case newest != 0:
		cp.Cursor = newest
	}
	for guid, last := range cp.Settled {
		if last < cp.Cursor {
			delete(cp.Settled, guid)
		}
	}
	cp.GivenUp = slices.DeleteFunc(cp.GivenUp, func(g GivenUp) bool { return now.Sub(g.FirstAttempt) > Window })
	if len(cp.GivenUp) > maxGivenUpListed {
		cp.GivenUp = cp.GivenUp[len(cp.GivenUp)-maxGivenUpListed:]
	}
	if err := r.saveCheckpoint(ctx, name, &cp); err != nil {
		return err
	}
	return failed
}

// readLog reads h's log newest first down to cursor (inclusive) or horizon, at most
// PagesPerHook pages, and groups the attempts by GUID (order: newest first).
func (r *Reconciler) readLog(ctx context.Context, h github.Hook, cursor int64, horizon time.Time) (map[string]*attempts, []string, int64, int64, error) {
	groups := map[string]*attempts{}
	var order []string
	var newest, oldest int64
	page := ""
	for n := 0; ; n++ {
		if n == r.Limits.PagesPerHook {
			r.Log.WarnContext(ctx, "delivery log longer than the pages read per cycle: older attempts are skipped",
				"hook", h.String(), "pages", n)
			return groups, order, newest, oldest, nil
		}
		items, next, err := r.GitHub.ListDeliveries(ctx, h, page, github.MaxDeliveriesPerPage)
		if err != nil {
			return nil, nil, 0, 0, err
		}
		for _, d := range items {
			if d.ID < cursor || d.DeliveredAt.Before(horizon) {
				return groups, order, newest, oldest, nil
			}
			newest, oldest = max(newest, d.ID), d.ID
			a := groups[d.GUID]
			if a == nil {
				a = &attempts{guid: d.GUID}
				groups[d.GUID] = a
				order = append(order, d.GUID)
			}
			a.add(d)
		}
		if next == "" {
			return groups, order, newest, oldest, nil
		}
		page = next
	}
}

// outcome is what became of a GUID with no successful attempt.
type outcome int

const (
	pending outcome = iota // redelivery requested, or waiting for the cap
	late                   // recorded by RunnerHub: acknowledged too late
	givenUp
)

// decide handles a GUID with no successful attempt.
func (r *Reconciler) decide(ctx context.Context, h github.Hook, hookID string, a *attempts, budget *int, rep *Report, now time.Time) (outcome, error) {
	rec, err := r.Deliveries.Get(ctx, delivery.Key{HookID: hookID, DeliveryID: a.guid})
	switch {
	case err == nil:
		// Recorded, but GitHub saw no timely 2xx: we are slow. A record not yet processed
		// is queued again, as a redelivery would have done.
		rep.LateAcks++
		r.Metrics.LateAcknowledgement(h.String())
		r.Log.WarnContext(ctx, "late acknowledgement: GitHub logged a failure for a delivery RunnerHub recorded",
			"hook", h.String(), "delivery_id", a.guid, "event", a.event)
		if !rec.State.Done() {
			if err := r.Queue.Enqueue(ctx, delivery.Message{Key: rec.Key, Event: rec.Event}); err != nil {
				return pending, err
			}
		}
		return late, nil
	case !errors.Is(err, delivery.ErrNotFound):
		return pending, err
	case a.redeliveries >= r.Limits.MaxRedeliveries || now.Sub(a.first) > r.Limits.GiveUpAge:
		rep.GivenUp++
		r.Metrics.DeliveryGivenUp(h.String())
		r.Log.ErrorContext(ctx, "delivery given up: it never arrived and redelivery did not help",
			"hook", h.String(), "delivery_id", a.guid, "event", a.event, "redeliveries", a.redeliveries, "first_attempt", a.first)
		return givenUp, nil
	case *budget <= 0:
		return pending, nil
	}
	if err := r.GitHub.Redeliver(ctx, h, a.lastID); err != nil {
		return pending, err
	}
	*budget--
	rep.Redelivered++
	r.Metrics.RedeliveryRequested(h.String())
	r.Log.InfoContext(ctx, "redelivery requested", "hook", h.String(), "delivery_id", a.guid, "event", a.event, "attempt", a.lastID)
	return pending, nil
}

// markRedelivered marks the record of a GUID that arrived by redelivery, so that the
// events API can say so. A GUID RunnerHub has no record of (a delivery to a hook id it
// does not know) is left alone.
func (r *Reconciler) markRedelivered(ctx context.Context, h github.Hook, hookID string, a *attempts) error {
	err := r.Deliveries.MarkRedelivered(ctx, delivery.Key{HookID: hookID, DeliveryID: a.guid})
	if errors.Is(err, delivery.ErrNotFound) {
		r.Log.DebugContext(ctx, "redelivered delivery not recorded", "hook", h.String(), "delivery_id", a.guid)
		return nil
	}
	if err == nil {
		r.Log.InfoContext(ctx, "delivery marked redelivered", "hook", h.String(), "delivery_id", a.guid, "event", a.event)
	}
	return err
}

// summaryCheckpointName holds the deliveries given up over every hook, so that health
// reads one item and needs no hook configuration (the ApiFunction has none).
const summaryCheckpointName = "redelivery/given-up"

type givenUpSummary struct {
	GivenUp []GivenUp `json:"givenUp"`
}

// saveSummary stores the given-up deliveries of every hook.
func (r *Reconciler) saveSummary(ctx context.Context) error {
	var sum givenUpSummary
	for _, h := range r.Hooks {
		var cp hookCheckpoint
		if err := r.loadCheckpoint(ctx, hookCheckpointName(h), &cp); err != nil {
			return err
		}
		sum.GivenUp = append(sum.GivenUp, cp.GivenUp...)
	}
	return r.saveCheckpoint(ctx, summaryCheckpointName, &sum)
}

// GivenUpDeliveries lists the deliveries the reconciler gave up that are still in
// GitHub's window, for health. It reads one checkpoint from store.
func GivenUpDeliveries(ctx context.Context, store checkpoint.Store, now time.Time) ([]GivenUp, error) {
	raw, err := store.Checkpoint(ctx, summaryCheckpointName)
	if err != nil || raw == nil {
		return nil, err
	}
	var sum givenUpSummary
	if err := json.Unmarshal(raw, &sum); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", summaryCheckpointName, err)
	}
	// Past the window GitHub has forgotten them too; the reconciler may not run to prune.
	return slices.DeleteFunc(sum.GivenUp, func(g GivenUp) bool { return now.Sub(g.FirstAttempt) > Window }), nil
}

// GivenUpCount counts GivenUpDeliveries, as health wants it.
func GivenUpCount(store checkpoint.Store, now func() time.Time) func(ctx context.Context) (int, error) {
	return func(ctx context.Context) (int, error) {
		given, err := GivenUpDeliveries(ctx, store, now())
		return len(given), err
	}
}
