package deliverytest

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/testenv/suite"
)

// Listing is what ListSuite needs of an adapter: a store to record deliveries in and the
// lister over them.
type Listing interface {
	delivery.Store
	delivery.Lister
}

// ListSuite runs every behaviour delivery.Lister promises against stores from newStore.
// Every subtest records deliveries in days of its own (in the 1990s, days apart from
// every other subtest's) and lists only those days, so newStore may hand out the same
// store each time.
func ListSuite(t *testing.T, newStore func(t *testing.T) Listing, finish Finish) {
	// made is read and written without a lock: suite.Run makes the harnesses one after
	// the other (suite.RunParallel would need an atomic counter here).
	base, made := randomDay(), 0
	newHarness := func(t *testing.T) listHarness {
		days := &span{first: base.AddDate(0, 0, 200*made)} // 200 days each, none shared
		made++
		return listHarness{newStore(t), days}
	}
	suite.Run(t, newHarness, suite.Cases[listHarness]{
		{"NewestFirstAcrossDays", testNewestFirstAcrossDays},
		{"CursorPaging", testCursorPaging},
		{"OffsetPaging", testOffsetPaging},
		{"Filters", func(t *testing.T, h listHarness) { testFilters(t, h, finish) }},
		{"TimeRange", testTimeRange},
		{"StateIsCurrent", func(t *testing.T, h listHarness) { testStateIsCurrent(t, h, finish) }},
		{"EmptyRange", testEmptyRange},
		{"EmptyDaysCostReads", testEmptyDaysCostReads},
		{"ReadBudgetContinues", testReadBudgetContinues},
		{"InvalidQuery", testInvalidQuery},
	})
}

// listHarness is a subtest's store and its own stretch of days.
type listHarness struct {
	s    Listing
	days *span
}

// span is a subtest's own stretch of days.
type span struct{ first time.Time }

// at is a time on the nth day of the span.
func (s *span) at(day int, clock time.Duration) time.Time {
	return s.first.AddDate(0, 0, day).Add(clock)
}

// query lists days [from, to) of the span.
func (s *span) query(from, to int, limit int) delivery.ListQuery {
	return delivery.ListQuery{Since: s.at(from, 0), Until: s.at(to, 0), Limit: limit}
}

// randomDay is a UTC midnight between 1990 and 1993.
func randomDay() time.Time {
	var b [2]byte
	rand.Read(b[:]) // never fails since Go 1.24
	return time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(binary.BigEndian.Uint16(b[:])%1000))
}

// Deliveries at the edges of days and in the same millisecond: the order is by time, then
// by key, across day boundaries; records come back without payloads.
func testNewestFirstAcrossDays(t *testing.T, h listHarness) {
	at := []time.Time{
		h.days.at(0, 0), // the first millisecond of a day
		h.days.at(0, 12*time.Hour),
		h.days.at(0, 12*time.Hour),                      // same millisecond: ordered by key
		h.days.at(0, 12*time.Hour+500*time.Microsecond), // stored as the millisecond above
		h.days.at(1, -time.Millisecond),                 // the last millisecond of day 0
		h.days.at(1, 0),
		h.days.at(2, 5*time.Minute),
		h.days.at(3, -time.Millisecond),
	}
	want := sortNewestFirst(createAt(t, h.s, at...))
	got := listAll(t, h.s, h.days.query(0, 3, delivery.MaxLimit))
	checkOrder(t, "listing", got, want)
	for _, rec := range got {
		if len(rec.Payload) != 0 {
			t.Errorf("listed delivery %s carries a payload of %d bytes; listings leave payloads out", rec.DeliveryID, len(rec.Payload))
			break
		}
	}
	for i, rec := range got {
		if i < len(want) {
			withoutPayload := *want[i]
			withoutPayload.Payload = nil
			checkRecord(t, "listed "+rec.DeliveryID, rec, &withoutPayload)
		}
	}
}

// Following Next pages through everything once, in order; a range that ends exactly at a
// page's end has no empty page after it.
func testCursorPaging(t *testing.T, h listHarness) {
	all := createAt(t, h.s, spread(h.days, 0, 3, 20)...)
	for _, limit := range []int{1, 3, 5, 7, 20, 21} {
		t.Run(fmt.Sprint("Limit", limit), func(t *testing.T) {
			q := h.days.query(0, 3, limit)
			var got []*delivery.Record
			for pages := 1; ; pages++ {
				page := mustList(t, h.s, q)
				if len(page.Records) > limit {
					t.Fatalf("page %d has %d records, limit %d", pages, len(page.Records), limit)
				}
				got = append(got, page.Records...)
				if page.Next == nil {
					if wantPages := max(1, (len(all)+limit-1)/limit); pages != wantPages {
						t.Errorf("%d pages, want %d", pages, wantPages)
					}
					break
				}
				if len(page.Records) != limit {
					t.Errorf("page %d has %d records and a next page; want a full page of %d", pages, len(page.Records), limit)
				}
				if pages > len(all)+1 {
					t.Fatal("paging does not end")
				}
				q.After = page.Next
			}
			checkOrder(t, "pages", got, sortNewestFirst(all))
		})
	}
}

// An offset skips that many deliveries of the full order.
func testOffsetPaging(t *testing.T, h listHarness) {
	all := sortNewestFirst(createAt(t, h.s, spread(h.days, 0, 2, 12)...))
	for _, offset := range []int{0, 1, 5, 11, 12, 30} {
		q := h.days.query(0, 2, 5)
		q.Offset = offset
		page := mustList(t, h.s, q)
		want := all[min(offset, len(all)):min(offset+5, len(all))]
		checkOrder(t, fmt.Sprintf("offset %d", offset), page.Records, want)
		if hasMore := offset+5 < len(all); (page.Next != nil) != hasMore {
			t.Errorf("offset %d: Next %+v, want one: %v", offset, page.Next, hasMore)
		}
	}
}

func testFilters(t *testing.T, h listHarness, finish Finish) {
	type attrs struct{ repo, event, action string }
	kinds := []attrs{
		{"octo-org/alpha", "workflow_job", "queued"},
		{"octo-org/alpha", "workflow_job", "completed"},
		{"octo-org/beta", "workflow_job", "queued"},
		{"octo-org/beta", "push", ""},
		{"Octo-Org/Alpha", "pull_request", "opened"},
	}
	var all []*delivery.Record
	for i, at := range spread(h.days, 0, 2, 3*len(kinds)) {
		k := kinds[i%len(kinds)]
		rec := newRecord([]byte(`{}`))
		rec.ReceivedAt, rec.Repository, rec.Event, rec.Action = at, k.repo, k.event, k.action
		mustCreate(t, h.s, rec)
		if i%2 == 0 {
			finish(t, h.s, rec, delivery.Processed, "processed", at.Add(time.Second))
			rec.State = delivery.Processed
		}
		all = append(all, rec)
	}
	all = sortNewestFirst(all)
	yes, no := true, false
	cases := []struct {
		name   string
		filter delivery.Filter
		want   func(r *delivery.Record) bool
	}{
		{"Repository", delivery.Filter{Repository: "octo-org/alpha"},
			func(r *delivery.Record) bool { return strings.EqualFold(r.Repository, "octo-org/alpha") }},
		{"RepositoryOtherCase", delivery.Filter{Repository: "OCTO-ORG/BETA"},
			func(r *delivery.Record) bool { return r.Repository == "octo-org/beta" }},
		{"Event", delivery.Filter{Event: "workflow_job"}, func(r *delivery.Record) bool { return r.Event == "workflow_job" }},
		{"Action", delivery.Filter{Action: "queued"}, func(r *delivery.Record) bool { return r.Action == "queued" }},
		{"Processed", delivery.Filter{Processed: &yes}, func(r *delivery.Record) bool { return r.State == delivery.Processed }},
		{"NotProcessed", delivery.Filter{Processed: &no}, func(r *delivery.Record) bool { return r.State == delivery.Received }},
		{"Combined", delivery.Filter{Repository: "octo-org/beta", Event: "workflow_job", Action: "queued", Processed: &no},
			func(r *delivery.Record) bool {
				return r.Repository == "octo-org/beta" && r.Action == "queued" && r.State == delivery.Received
			}},
		{"NoMatch", delivery.Filter{Event: "workflow_run"}, func(*delivery.Record) bool { return false }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := slices.DeleteFunc(slices.Clone(all), func(r *delivery.Record) bool { return !c.want(r) })
			q := h.days.query(0, 2, 2)
			q.Filter = c.filter
			checkOrder(t, "filtered listing", listAll(t, h.s, q), want)
		})
	}
}

// Since is inclusive, Until exclusive, to the millisecond the stores keep.
func testTimeRange(t *testing.T, h listHarness) {
	noon := h.days.at(1, 12*time.Hour)
	all := createAt(t, h.s, noon.Add(-time.Millisecond), noon, noon.Add(time.Millisecond), noon.Add(2*time.Millisecond))
	cases := []struct {
		name         string
		since, until time.Time
		want         []*delivery.Record
	}{
		{"SinceInclusive", noon, h.days.at(2, 0), []*delivery.Record{all[3], all[2], all[1]}},
		{"UntilExclusive", h.days.at(0, 0), noon.Add(time.Millisecond), []*delivery.Record{all[1], all[0]}},
		{"UntilBelowTheMillisecond", h.days.at(0, 0), noon.Add(time.Microsecond), []*delivery.Record{all[1], all[0]}},
		{"OneMillisecond", noon, noon.Add(time.Millisecond), []*delivery.Record{all[1]}},
		{"Empty", noon, noon, nil},
		{"Reversed", noon.Add(time.Second), noon, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := delivery.ListQuery{Since: c.since, Until: c.until, Limit: 10}
			checkOrder(t, "listing", listAll(t, h.s, q), c.want)
		})
	}
}

// A listing shows a delivery's current state and redelivered mark.
func testStateIsCurrent(t *testing.T, h listHarness, finish Finish) {
	recs := createAt(t, h.s, h.days.at(0, time.Hour), h.days.at(0, 2*time.Hour))
	finishedAt := h.days.at(0, 3*time.Hour)
	finish(t, h.s, recs[0], delivery.Ignored, "ignored: event not handled", finishedAt)
	if err := h.s.MarkRedelivered(t.Context(), recs[0].Key); err != nil {
		t.Fatalf("MarkRedelivered: %v", err)
	}
	got := listAll(t, h.s, h.days.query(0, 1, 10))
	want := *recs[0]
	want.Payload, want.State, want.Outcome, want.ProcessedAt = nil, delivery.Ignored, "ignored: event not handled", finishedAt
	want.Redelivered = true
	if len(got) != 2 {
		t.Fatalf("listed %d deliveries, want 2", len(got))
	}
	checkRecord(t, "finished delivery", got[1], &want)
}

func testEmptyRange(t *testing.T, h listHarness) {
	page := mustList(t, h.s, h.days.query(0, 10, 10))
	if len(page.Records) != 0 || page.Next != nil {
		t.Fatalf("listing of days without deliveries: %d records, Next %+v; want none and no Next", len(page.Records), page.Next)
	}
}

// Every day is one read at least, so a long range of empty days ends a call before its
// page is full; Next picks up where it stopped, and nothing is lost or repeated.
func testEmptyDaysCostReads(t *testing.T, h listHarness) {
	want := sortNewestFirst(createAt(t, h.s, h.days.at(0, time.Hour), h.days.at(0, 2*time.Hour)))
	q := h.days.query(0, 150, 10) // 150 days, only the oldest has deliveries
	first := mustList(t, h.s, q)
	if len(first.Records) != 0 || first.Next == nil {
		t.Fatalf("first call over 150 days: %d records, Next %+v; want none yet and a Next (%d reads are not enough)",
			len(first.Records), first.Next, delivery.DefaultMaxReads)
	}
	checkOrder(t, "after following Next", listAll(t, h.s, q), want)
}

// With a budget of one read per call, a filtered listing and an offset both still reach
// every match, carrying the rest of the offset in the cursor.
func testReadBudgetContinues(t *testing.T, h listHarness) {
	var all []*delivery.Record
	for i, at := range spread(h.days, 0, 4, 24) {
		rec := newRecord([]byte(`{}`))
		rec.ReceivedAt = at
		if i%6 == 0 {
			rec.Event = "workflow_run"
		}
		mustCreate(t, h.s, rec)
		all = append(all, rec)
	}
	all = sortNewestFirst(all)
	runs := slices.DeleteFunc(slices.Clone(all), func(r *delivery.Record) bool { return r.Event != "workflow_run" })

	q := h.days.query(0, 4, 2)
	q.Event, q.MaxReads = "workflow_run", 1
	checkOrder(t, "filtered, one read per call", listAll(t, h.s, q), runs)

	q = h.days.query(0, 4, 3)
	q.Offset, q.MaxReads = 10, 1
	checkOrder(t, "offset 10, one read per call", listAll(t, h.s, q), all[10:])
}

func testInvalidQuery(t *testing.T, h listHarness) {
	valid := h.days.query(0, 1, 10)
	cases := []struct {
		name   string
		change func(q *delivery.ListQuery)
	}{
		{"NoSince", func(q *delivery.ListQuery) { q.Since = time.Time{} }},
		{"NoUntil", func(q *delivery.ListQuery) { q.Until = time.Time{} }},
		{"LimitZero", func(q *delivery.ListQuery) { q.Limit = 0 }},
		{"LimitTooLarge", func(q *delivery.ListQuery) { q.Limit = delivery.MaxLimit + 1 }},
		{"NegativeOffset", func(q *delivery.ListQuery) { q.Offset = -1 }},
		{"OffsetTooLarge", func(q *delivery.ListQuery) { q.Offset = delivery.MaxOffset + 1 }},
		{"EmptyCursor", func(q *delivery.ListQuery) { q.After = &delivery.Cursor{} }},
	}
	for _, c := range cases {
		q := valid
		c.change(&q)
		if _, err := h.s.List(t.Context(), q); !errors.Is(err, delivery.ErrInvalidQuery) {
			t.Errorf("%s: err = %v, want ErrInvalidQuery", c.name, err)
		}
	}
}

// spread returns n times in days [from, to) of the span, a few of them in the same
// millisecond, in no particular order.
func spread(days *span, from, to, n int) []time.Time {
	total := time.Duration(to-from) * 24 * time.Hour
	at := make([]time.Time, n)
	for i := range at {
		at[i] = days.at(from, total*time.Duration((i*7)%n)/time.Duration(n)+time.Duration(i%3)*time.Millisecond)
		if i%5 == 4 {
			at[i] = at[i-1] // same millisecond as another
		}
	}
	return at
}

// createAt records one delivery received at each time and returns them in that order.
func createAt(t *testing.T, s delivery.Store, at ...time.Time) []*delivery.Record {
	t.Helper()
	recs := make([]*delivery.Record, len(at))
	for i, a := range at {
		recs[i] = newRecord(fmt.Appendf(nil, `{"n":%d}`, i))
		recs[i].ReceivedAt = a
		mustCreate(t, s, recs[i])
	}
	return recs
}

func mustList(t *testing.T, s delivery.Lister, q delivery.ListQuery) delivery.Page {
	t.Helper()
	page, err := s.List(t.Context(), q)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return page
}

// listAll follows Next to the end.
func listAll(t *testing.T, s delivery.Lister, q delivery.ListQuery) []*delivery.Record {
	t.Helper()
	var all []*delivery.Record
	for calls := 0; ; calls++ {
		if calls > 1000 {
			t.Fatal("listing does not end")
		}
		page := mustList(t, s, q)
		all = append(all, page.Records...)
		if page.Next == nil {
			return all
		}
		q.After = page.Next
	}
}

// sortNewestFirst sorts as the time index does: by received time (to the millisecond),
// then key, descending.
func sortNewestFirst(recs []*delivery.Record) []*delivery.Record {
	sorted := slices.Clone(recs)
	slices.SortFunc(sorted, func(a, b *delivery.Record) int { return strings.Compare(sortKey(b), sortKey(a)) })
	return sorted
}

func sortKey(r *delivery.Record) string {
	return delivery.Position{At: r.ReceivedAt.UTC().Truncate(time.Millisecond), Key: r.Key}.SortKey()
}

// checkOrder compares listed deliveries with want by key, in order.
func checkOrder(t *testing.T, what string, got, want []*delivery.Record) {
	t.Helper()
	want = sortNewestFirst(want)
	keys := func(recs []*delivery.Record) []string {
		out := make([]string, len(recs))
		for i, r := range recs {
			out[i] = sortKey(r)
		}
		return out
	}
	if g, w := keys(got), keys(want); !slices.Equal(g, w) {
		t.Errorf("%s: got %d deliveries\n  %s\nwant %d\n  %s", what, len(g), strings.Join(g, "\n  "), len(w), strings.Join(w, "\n  "))
	}
}
