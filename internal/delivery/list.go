package delivery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Limits of a listing, shared by the stores and the HTTP API.
const (
	// MaxLimit is the largest page.
	MaxLimit = 1000
	// MaxOffset is the largest offset: an offset is paid for by reading past every
	// skipped delivery, so it is bounded; a cursor costs nothing however deep it goes.
	MaxOffset = 10000
	// DefaultMaxReads bounds the index reads (DynamoDB Queries) of one List call:
	// enough to skip MaxOffset deliveries and walk a month of empty days.
	DefaultMaxReads = 64
	// maxRead is the most index entries one read asks for; minFilteredRead the least
	// when a filter may reject most of them (fewer round trips for sparse matches).
	maxRead         = 1000
	minFilteredRead = 200
)

// TimeKeyLayout formats the time part of a time index key: fixed width, UTC,
// milliseconds, so that keys sort by time as strings. The DynamoDB store's gsi1sk and
// the embedded store's byTime keys both start with it.
const TimeKeyLayout = "2006-01-02T15:04:05.000Z07:00"

// Filter selects deliveries. Zero fields select everything.
type Filter struct {
	// Repository is repository.full_name, compared case-insensitively as GitHub does.
	Repository string
	Event      string
	Action     string
	// Processed: nil selects any state, true the finished deliveries (processed or
	// ignored), false those not finished yet.
	Processed *bool
}

// IsZero reports whether f selects everything.
func (f Filter) IsZero() bool {
	return f.Repository == "" && f.Event == "" && f.Action == "" && f.Processed == nil
}

// Match reports whether f selects rec.
func (f Filter) Match(rec *Record) bool {
	return (f.Repository == "" || strings.EqualFold(f.Repository, rec.Repository)) &&
		(f.Event == "" || f.Event == rec.Event) &&
		(f.Action == "" || f.Action == rec.Action) &&
		(f.Processed == nil || *f.Processed == rec.State.Done())
}

// Position is a place in the newest-first order of deliveries: the deliveries that come
// after it are those strictly older. An entry's position is its ReceivedAt (to the
// millisecond) and its Key, which orders deliveries received in the same millisecond;
// a bare time (zero Key) comes after every delivery received at or after it.
type Position struct {
	At  time.Time
	Key Key
}

// SortKey is the position as a time index key: <At>#<hookId>#<deliveryId>, or <At> alone
// for a bare time, which sorts after every key of a delivery received at or after At.
func (p Position) SortKey() string {
	at := p.At.UTC().Format(TimeKeyLayout)
	if p.Key == (Key{}) {
		return at
	}
	return at + "#" + p.Key.HookID + "#" + p.Key.DeliveryID
}

// Day is the UTC day whose time index holds the deliveries just after p.
func (p Position) Day() time.Time {
	at := p.At
	if p.Key == (Key{}) {
		at = at.Add(-time.Millisecond) // a bare time excludes its own millisecond
	}
	return utcDay(at)
}

func utcDay(t time.Time) time.Time { return t.UTC().Truncate(24 * time.Hour) }

// Cursor continues a listing: where the previous call stopped, and how many matching
// deliveries of an offset are still to be skipped (when that call ran out of reads
// while skipping).
type Cursor struct {
	Position
	Skip int
}

// ListQuery asks for one page of deliveries, newest first.
type ListQuery struct {
	Filter
	// Since (inclusive) and Until (exclusive) bound ReceivedAt; both are required, so
	// that every listing ends.
	Since, Until time.Time
	// Limit is the page size, 1 to MaxLimit.
	Limit int
	// Offset skips that many matching deliveries first (0 to MaxOffset).
	Offset int
	// After continues from a previous page's Next instead of starting at Until; Offset
	// is then ignored.
	After *Cursor
	// MaxReads bounds the index reads of this call (0: DefaultMaxReads).
	MaxReads int
}

// Page is one page of a listing.
type Page struct {
	// Records are the matching deliveries, newest first, without payloads; at most
	// Limit of them, and fewer, even none, when the call ran out of reads first.
	Records []*Record
	// Next continues the listing; nil when nothing in the range is left.
	Next *Cursor
}

// ErrInvalidQuery wraps the error of a ListQuery out of range.
var ErrInvalidQuery = errors.New("invalid list query")

// Lister lists deliveries by the time they were received, newest first, from a time
// index: nothing is scanned.
//
// A listing walks the index back one UTC day at a time, from Until (or the cursor) until
// the page is full or Since is passed. Filters are applied to what the index returns, so
// a filter that matches few deliveries makes a page cost several reads; every call
// stops after MaxReads reads and then returns what it found with a Next cursor, so a
// page may hold fewer than Limit deliveries although more follow.
type Lister interface {
	List(ctx context.Context, q ListQuery) (Page, error)
}

// DayReader reads the time index of one UTC day, newest first, for ListDays: at most max
// deliveries strictly after before (older than it) in the newest-first order, without
// payloads. more reports whether the day may hold deliveries after the last one
// returned. One call is one read of the index (one request for a remote store).
type DayReader func(ctx context.Context, day time.Time, before Position, max int) (recs []*Record, more bool, err error)

// ListDays answers q from a store's DayReader: the walk, filters, offset, cursor and read
// budget every Lister shares, so that stores only have to read one day of their index.
func ListDays(ctx context.Context, q ListQuery, read DayReader) (Page, error) {
	if err := q.check(); err != nil {
		return Page{}, err
	}
	maxReads := q.MaxReads
	if maxReads <= 0 {
		maxReads = DefaultMaxReads
	}
	pos, skip := Position{At: ceilMillisecond(q.Until)}, q.Offset
	if q.After != nil {
		pos, skip = q.After.Position, q.After.Skip
	}
	firstDay := utcDay(q.Since)
	var page Page
	for reads := 0; ; reads++ {
		day := pos.Day()
		if day.Before(firstDay) {
			return page, nil
		}
		if reads == maxReads {
			page.Next = &Cursor{Position: pos, Skip: skip}
			return page, nil
		}
		want := skip + q.Limit + 1 - len(page.Records) // one more than the page: is there a next?
		if !q.Filter.IsZero() {
			want = max(want, minFilteredRead)
		}
		recs, more, err := read(ctx, day, pos, min(want, maxRead))
		if err != nil {
			return Page{}, fmt.Errorf("list deliveries of %s: %w", day.Format(time.DateOnly), err)
		}
		for _, rec := range recs {
			if rec.ReceivedAt.Before(q.Since) {
				return page, nil
			}
			at := Position{At: rec.ReceivedAt, Key: rec.Key}
			switch {
			case !q.Filter.Match(rec):
			case skip > 0:
				skip--
			case len(page.Records) == q.Limit:
				// A match beyond the page: the next page starts after this page's last.
				last := page.Records[len(page.Records)-1]
				page.Next = &Cursor{Position: Position{At: last.ReceivedAt, Key: last.Key}}
				return page, nil
			default:
				page.Records = append(page.Records, rec)
			}
			pos = at
		}
		if !more || len(recs) == 0 {
			pos = Position{At: day} // the day is done: go on with the one before
		}
	}
}

func (q ListQuery) check() error {
	var problems []string
	if q.Since.IsZero() || q.Until.IsZero() {
		problems = append(problems, "Since and Until are required")
	}
	if q.Limit < 1 || q.Limit > MaxLimit {
		problems = append(problems, fmt.Sprintf("Limit %d is not in 1..%d", q.Limit, MaxLimit))
	}
	if q.Offset < 0 || q.Offset > MaxOffset {
		problems = append(problems, fmt.Sprintf("Offset %d is not in 0..%d", q.Offset, MaxOffset))
	}
	if q.After != nil && (q.After.At.IsZero() || q.After.Skip < 0 || q.After.Skip > MaxOffset) {
		problems = append(problems, "After is not a cursor a listing returned")
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidQuery, strings.Join(problems, "; "))
	}
	return nil
}

// ceilMillisecond rounds t up to the millisecond: stores keep milliseconds, so "received
// before t" and "received before ceilMillisecond(t)" select the same deliveries.
func ceilMillisecond(t time.Time) time.Time {
	c := t.Truncate(time.Millisecond)
	if c.Before(t) {
		c = c.Add(time.Millisecond)
	}
	return c
}
