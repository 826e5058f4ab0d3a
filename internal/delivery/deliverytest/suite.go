// Package deliverytest holds the conformance suites that every adapter of the delivery
// ports runs, so that the embedded and the AWS adapters promise the same behaviour.
//
// The suites rely on the ports alone. What they hold a Store to, beyond the port's own
// comments:
//   - times (ReceivedAt, ProcessedAt) come back in UTC, truncated to the millisecond;
//   - a zero ProcessedAt comes back zero, an empty or nil payload comes back empty;
//   - returned records and payloads do not alias memory the caller or the store keeps.
package deliverytest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/testenv/suite"
)

// Finish moves a recorded delivery of s to a final state, as the processor does. The
// delivery port has no such method: a delivery is finished by the commit that applies its
// effects (jobs.Store.Commit with a jobs.Finish), so each adapter's test hands the suites
// that (jobstest.CommitFinish does it for any store that is also a jobs.Store).
type Finish func(t *testing.T, s delivery.Store, rec *delivery.Record, state delivery.State, outcome string, at time.Time)

// StoreSuite runs every behaviour delivery.Store promises against a fresh store from
// newStore. Every subtest calls newStore once and uses keys of its own, so newStore may
// hand out the same store each time.
func StoreSuite(t *testing.T, newStore func(t *testing.T) delivery.Store, finish Finish) {
	suite.Run(t, newStore, suite.Cases[delivery.Store]{
		{"CreateNew", testCreateNew},
		{"CreateExistingKeepsFirst", testCreateExistingKeepsFirst},
		{"CreateExistingKeepsFirstLargePayload", testCreateExistingKeepsFirstLargePayload},
		{"CreateAfterFinishReturnsFinished", func(t *testing.T, s delivery.Store) { testCreateAfterFinish(t, s, finish) }},
		{"SameDeliveryOtherHook", testSameDeliveryOtherHook},
		{"GetUnknown", testGetUnknown},
		{"GetRoundTripsEveryField", testGetRoundTripsEveryField},
		{"GetRoundTripsReceived", testGetRoundTripsReceived},
		{"Payloads", testPayloads},
		{"NoAliasing", testNoAliasing},
		{"ConcurrentCreate", testConcurrentCreate},
		{"MarkRedelivered", func(t *testing.T, s delivery.Store) { testMarkRedelivered(t, s, finish) }},
	})
}

func testCreateNew(t *testing.T, s delivery.Store) {
	rec := newRecord(jsonPayload(200))
	mustCreate(t, s, rec)
	checkRecord(t, "Get", mustGet(t, s, rec.Key), rec)
}

func testCreateExistingKeepsFirst(t *testing.T, s delivery.Store) {
	checkCreateExistingKeepsFirst(t, s, jsonPayload(300), jsonPayload(500))
}

// The large payloads leave the item in the AWS store (claim check): the second Create must
// not overwrite the first one's payload wherever it is kept.
func testCreateExistingKeepsFirstLargePayload(t *testing.T, s delivery.Store) {
	checkCreateExistingKeepsFirst(t, s, largePayload(), largePayload())
}

func checkCreateExistingKeepsFirst(t *testing.T, s delivery.Store, firstPayload, secondPayload []byte) {
	first := newRecord(firstPayload)
	mustCreate(t, s, first)

	second := newRecord(secondPayload)
	second.Key = first.Key
	second.Event, second.Action, second.Repository = "push", "", "other/repo"
	second.InstallationTargetType, second.InstallationTargetID = "organization", "99"
	second.ReceivedAt = first.ReceivedAt.Add(time.Hour)
	second.State, second.Outcome, second.ProcessedAt = delivery.Ignored, "second", second.ReceivedAt

	existing, err := s.Create(t.Context(), second)
	if err != nil {
		t.Fatalf("second Create: %v", err)
	}
	if existing == nil {
		t.Fatal("second Create of the same key returned no existing record")
	}
	checkExisting(t, "existing", existing, first)
	checkRecord(t, "Get", mustGet(t, s, first.Key), first)
}

// A redelivery of a processed delivery must be recognisable as such.
func testCreateAfterFinish(t *testing.T, s delivery.Store, finish Finish) {
	rec := newRecord(jsonPayload(100))
	mustCreate(t, s, rec)
	at := time.Now()
	finish(t, s, rec, delivery.Processed, "processed", at)

	existing, err := s.Create(t.Context(), rec)
	if err != nil {
		t.Fatalf("second Create: %v", err)
	}
	want := *rec
	want.State, want.Outcome, want.ProcessedAt = delivery.Processed, "processed", at
	checkExisting(t, "existing", existing, &want)
}

// GitHub can send the same delivery GUID to two hooks: (hook id, delivery id) is the key.
func testSameDeliveryOtherHook(t *testing.T, s delivery.Store) {
	a := newRecord(jsonPayload(100))
	b := newRecord(jsonPayload(150))
	b.DeliveryID = a.DeliveryID
	c := newRecord(jsonPayload(120))
	c.HookID, c.DeliveryID = delivery.NoHook, a.DeliveryID
	for _, rec := range []*delivery.Record{a, b, c} {
		mustCreate(t, s, rec)
	}
	for _, rec := range []*delivery.Record{a, b, c} {
		checkRecord(t, "Get "+rec.HookID, mustGet(t, s, rec.Key), rec)
	}
}

func testGetUnknown(t *testing.T, s delivery.Store) {
	key := newKey()
	_, err := s.Get(t.Context(), key)
	if !errors.Is(err, delivery.ErrNotFound) {
		t.Fatalf("Get of an unknown key: err = %v, want ErrNotFound", err)
	}
}

// Every field set, times in a zone other than UTC and below the millisecond: they come back
// in UTC, truncated to the millisecond.
func testGetRoundTripsEveryField(t *testing.T, s delivery.Store) {
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	rec := newRecord(jsonPayload(1000))
	rec.ReceivedAt = time.Date(2024, 2, 29, 23, 59, 59, 123_456_789, zone)
	rec.State, rec.Outcome = delivery.Ignored, "ignored: event not handled"
	rec.ProcessedAt = rec.ReceivedAt.Add(1500 * time.Microsecond)
	rec.Redelivered = true
	mustCreate(t, s, rec)
	checkRecord(t, "Get", mustGet(t, s, rec.Key), rec)
}

// A record as ingest writes it: optional fields empty, not processed yet.
func testGetRoundTripsReceived(t *testing.T, s delivery.Store) {
	rec := newRecord([]byte(`{"zen":"Keep it logically awesome."}`))
	rec.Event, rec.Action, rec.Repository = "ping", "", ""
	rec.InstallationTargetType, rec.InstallationTargetID = "", ""
	mustCreate(t, s, rec)
	checkRecord(t, "Get", mustGet(t, s, rec.Key), rec)
}

func testPayloads(t *testing.T, s delivery.Store) {
	payloads := []struct {
		name    string
		payload []byte
	}{
		{"Empty", nil},
		{"Typical9KB", jsonPayload(9 << 10)},
		{"Incompressible2MiB", largePayload()},
	}
	for _, p := range payloads {
		t.Run(p.name, func(t *testing.T) {
			rec := newRecord(p.payload)
			mustCreate(t, s, rec)
			checkRecord(t, "Get", mustGet(t, s, rec.Key), rec)
		})
	}
}

// Stores that keep records in memory or in memory-mapped files must copy in and out.
func testNoAliasing(t *testing.T, s delivery.Store) {
	payload := jsonPayload(500)
	rec := newRecord(bytes.Clone(payload))
	mustCreate(t, s, rec)
	want := *rec
	want.Payload = payload

	clear(rec.Payload)
	got := mustGet(t, s, rec.Key)
	checkRecord(t, "Get after changing the created payload", got, &want)

	clear(got.Payload)
	got.Event = "changed"
	checkRecord(t, "Get after changing a returned record", mustGet(t, s, rec.Key), &want)
}

// Redeliveries can race the original (or two webhook instances can get the same delivery):
// exactly one Create wins, every other one sees the winner's record.
// MarkRedelivered sets Redelivered alone, before or after the delivery is finished, twice
// harmlessly, and is seen by Get and by the existing record Create returns; an unknown key
// is ErrNotFound.
func testMarkRedelivered(t *testing.T, s delivery.Store, finish Finish) {
	if err := s.MarkRedelivered(t.Context(), newKey()); !errors.Is(err, delivery.ErrNotFound) {
		t.Fatalf("MarkRedelivered of an unknown key: err = %v, want ErrNotFound", err)
	}
	for _, finishFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("finishedFirst=%v", finishFirst), func(t *testing.T) {
			rec := newRecord(jsonPayload(200))
			mustCreate(t, s, rec)
			if got := mustGet(t, s, rec.Key); got.Redelivered {
				t.Fatal("a new record is Redelivered")
			}
			at := time.Now()
			want := *rec
			want.State, want.Outcome, want.ProcessedAt = delivery.Processed, "processed", at
			want.Redelivered = true
			if finishFirst {
				finish(t, s, rec, want.State, want.Outcome, at)
			}
			for range 2 {
				if err := s.MarkRedelivered(t.Context(), rec.Key); err != nil {
					t.Fatalf("MarkRedelivered: %v", err)
				}
			}
			if !finishFirst {
				finish(t, s, rec, want.State, want.Outcome, at)
			}
			checkRecord(t, "Get", mustGet(t, s, rec.Key), &want)
			existing, err := s.Create(t.Context(), rec)
			if err != nil {
				t.Fatalf("second Create: %v", err)
			}
			checkExisting(t, "existing", existing, &want)
		})
	}
}

func testConcurrentCreate(t *testing.T, s delivery.Store) {
	const n = 8
	key := newKey()
	recs := make([]*delivery.Record, n)
	for i := range recs {
		recs[i] = newRecord(fmt.Appendf(nil, `{"attempt":%d}`, i))
		recs[i].Key = key
		recs[i].Action = "attempt " + strconv.Itoa(i)
	}

	existing := make([]*delivery.Record, n)
	errs := make([]error, n)
	suite.Race(n, func(i int) { existing[i], errs[i] = s.Create(t.Context(), recs[i]) })

	winner := -1
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Create %d: %v", i, err)
		}
		if existing[i] == nil {
			if winner >= 0 {
				t.Fatalf("Creates %d and %d both created the record", winner, i)
			}
			winner = i
		}
	}
	if winner < 0 {
		t.Fatal("no Create created the record")
	}
	for i, rec := range existing {
		if rec != nil {
			checkExisting(t, fmt.Sprintf("existing returned to Create %d", i), rec, recs[winner])
		}
	}
	checkRecord(t, "Get", mustGet(t, s, key), recs[winner])
}

// QueueSuite checks Enqueue hands messages over intact, at least once; drain returns (and
// removes) what is waiting on the queue. Every subtest calls newQueue once and expects an
// empty queue: the same queue may be handed out again only if drain empties it.
func QueueSuite(t *testing.T, newQueue func(t *testing.T) (q delivery.Queue, drain func(ctx context.Context) []delivery.Message)) {
	newHarness := func(t *testing.T) queueHarness {
		q, drain := newQueue(t)
		return queueHarness{q, drain}
	}
	suite.Run(t, newHarness, suite.Cases[queueHarness]{
		{"DrainEmpty", testDrainEmpty},
		{"RoundTrip", testQueueRoundTrip},
		{"ConcurrentEnqueue", testConcurrentEnqueue},
	})
}

// queueHarness is a queue and the drain that returns (and removes) what waits on it.
type queueHarness struct {
	q     delivery.Queue
	drain func(ctx context.Context) []delivery.Message
}

func testDrainEmpty(t *testing.T, h queueHarness) {
	if got := h.drain(t.Context()); len(got) != 0 {
		t.Fatalf("drain of an empty queue returned %v", got)
	}
}

func testQueueRoundTrip(t *testing.T, h queueHarness) {
	sent := []delivery.Message{
		{Key: newKey(), Event: "workflow_job"},
		{Key: newKey(), Event: "workflow_run"},
		{Key: delivery.Key{HookID: delivery.NoHook, DeliveryID: newKey().DeliveryID}, Event: "ping"},
		{Key: newKey(), Event: "push"},
		// Nothing in a message may be lost or invented, not even an empty event.
		{Key: newKey()},
	}
	for _, m := range sent {
		if err := h.q.Enqueue(t.Context(), m); err != nil {
			t.Fatalf("Enqueue %+v: %v", m, err)
		}
	}
	checkDrained(t, sent, h.drain(t.Context()))
	if again := h.drain(t.Context()); len(again) != 0 {
		t.Fatalf("second drain returned %v, want nothing", again)
	}
}

func testConcurrentEnqueue(t *testing.T, h queueHarness) {
	const senders, each = 8, 3
	sent := make([]delivery.Message, senders*each)
	for i := range sent {
		sent[i] = delivery.Message{Key: newKey(), Event: "workflow_job"}
	}
	errs := make(chan error, len(sent))
	suite.Race(senders, func(i int) {
		for _, m := range sent[i*each : (i+1)*each] {
			errs <- h.q.Enqueue(t.Context(), m)
		}
	})
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
	}
	checkDrained(t, sent, h.drain(t.Context()))
}

// checkDrained allows duplicates (at least once) and any order, nothing else.
func checkDrained(t *testing.T, sent, drained []delivery.Message) {
	t.Helper()
	want := make(map[delivery.Message]bool, len(sent))
	for _, m := range sent {
		want[m] = false
	}
	for _, m := range drained {
		if _, ok := want[m]; !ok {
			t.Errorf("drained %+v, which was never enqueued", m)
			continue
		}
		want[m] = true
	}
	for m, seen := range want {
		if !seen {
			t.Errorf("enqueued %+v, never drained", m)
		}
	}
}

func mustCreate(t *testing.T, s delivery.Store, rec *delivery.Record) {
	t.Helper()
	existing, err := s.Create(t.Context(), rec)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if existing != nil {
		// A record received at the very instant of this one is this write landing twice
		// (a request retried after its first attempt was applied), not another delivery.
		t.Fatalf("Create of a new key returned an existing record %+v received at %v (this one: %v; the same instant is a replay of this write)",
			existing.Key, existing.ReceivedAt, rec.ReceivedAt)
	}
}

func mustGet(t *testing.T, s delivery.Store, key delivery.Key) *delivery.Record {
	t.Helper()
	rec, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return rec
}

// checkRecord compares field by field so that a failure names the field and never dumps a
// payload of megabytes.
func checkRecord(t *testing.T, what string, got, want *delivery.Record) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: no record", what)
	}
	strs := []struct{ field, got, want string }{
		{"HookID", got.HookID, want.HookID},
		{"DeliveryID", got.DeliveryID, want.DeliveryID},
		{"Event", got.Event, want.Event},
		{"Action", got.Action, want.Action},
		{"Repository", got.Repository, want.Repository},
		{"InstallationTargetType", got.InstallationTargetType, want.InstallationTargetType},
		{"InstallationTargetID", got.InstallationTargetID, want.InstallationTargetID},
		{"State", string(got.State), string(want.State)},
		{"Outcome", got.Outcome, want.Outcome},
	}
	for _, f := range strs {
		if f.got != f.want {
			t.Errorf("%s: %s = %q, want %q", what, f.field, f.got, f.want)
		}
	}
	if got.Redelivered != want.Redelivered {
		t.Errorf("%s: Redelivered = %v, want %v", what, got.Redelivered, want.Redelivered)
	}
	checkTime(t, what+": ReceivedAt", got.ReceivedAt, want.ReceivedAt)
	checkTime(t, what+": ProcessedAt", got.ProcessedAt, want.ProcessedAt)
	if !bytes.Equal(got.Payload, want.Payload) {
		t.Errorf("%s: Payload differs: %d bytes, want %d, first difference at byte %d",
			what, len(got.Payload), len(want.Payload), firstDifference(got.Payload, want.Payload))
	}
}

// checkExisting checks a record returned by Create for an existing key: everything but the
// payload, which Create does not return.
func checkExisting(t *testing.T, what string, got, want *delivery.Record) {
	t.Helper()
	withoutPayload := *want
	withoutPayload.Payload = nil
	checkRecord(t, what, got, &withoutPayload)
}

func checkTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	want = want.UTC().Truncate(time.Millisecond)
	if !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func firstDifference(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// newKey returns a key shaped like GitHub's, a numeric hook id and a UUID delivery id,
// unique to the test so that stores may be shared between tests.
func newKey() delivery.Key {
	var id [16]byte
	rand.Read(id[:]) // never fails since Go 1.24
	return delivery.Key{
		HookID:     strconv.FormatUint(uint64(binary.BigEndian.Uint32(id[:])), 10),
		DeliveryID: fmt.Sprintf("%x-%x-%x-%x-%x", id[0:4], id[4:6], id[6:8], id[8:10], id[10:16]),
	}
}

func newRecord(payload []byte) *delivery.Record {
	return &delivery.Record{
		Key:                    newKey(),
		Event:                  "workflow_job",
		Action:                 "queued",
		Repository:             "octo-org/octo-repo",
		InstallationTargetType: "repository",
		InstallationTargetID:   "123456789",
		ReceivedAt:             time.Now(),
		Payload:                payload,
		State:                  delivery.Received,
	}
}

// jsonPayload returns a JSON document of at least size bytes that compresses about as well
// as a real webhook payload.
func jsonPayload(size int) []byte {
	b := []byte(`{"action":"completed","steps":[`)
	for n := 1; len(b) < size; n++ {
		if n > 1 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `{"name":"Run step %d","status":"completed","conclusion":"success","number":%d}`, n, n)
	}
	return append(b, "]}"...)
}

// largePayload returns 2 MiB of JSON around random bytes: even compressed it is well over
// DynamoDB's 400 KB item limit, so the AWS store has to keep it elsewhere.
func largePayload() []byte {
	random := make([]byte, 3<<19) // 1.5 MiB, 2 MiB in base64
	rand.Read(random)             // never fails since Go 1.24
	return []byte(`{"blob":"` + base64.StdEncoding.EncodeToString(random) + `"}`)
}
