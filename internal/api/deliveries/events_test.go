package deliveries_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/api/deliveries"
	"github.com/runnerhub/webhooks/internal/delivery"
)

// item and list are the listing's answer as the tests decode it (cost_test.go too).
type (
	item = deliveries.EventItem
	list = deliveries.EventList
)

func TestListEvents(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		// 130 deliveries over three days, 31 minutes apart.
		all := seed(t, e.store, 130, e.now.Add(-time.Minute), 31*time.Minute)
		// Filtered listings start four days back rather than the retention's 30: an empty
		// day costs a read, and these tests are about filters.
		recent := "since=" + url.QueryEscape(e.now.Add(-4*24*time.Hour).Format(time.RFC3339))

		t.Run("Defaults", func(t *testing.T) {
			var got list
			e.call(t, "GET", "/api/webhooks/events", "").ok(t, http.StatusOK, &got)
			if got.Limit != 100 || got.Offset != 0 || got.Total != 100 || !got.HasMore || got.NextCursor == "" {
				t.Errorf("limit %d offset %d total %d hasMore %v cursor %q; want 100, 0, 100, true and a cursor",
					got.Limit, got.Offset, got.Total, got.HasMore, got.NextCursor)
			}
			checkItems(t, got.Events, all[:100])
		})

		t.Run("FutureUntil", func(t *testing.T) {
			var got list
			e.call(t, "GET", "/api/webhooks/events?limit=5&until=2999-01-01T00:00:00Z", "").ok(t, http.StatusOK, &got)
			checkItems(t, got.Events, all[:5]) // not 973 years of empty days first
		})

		t.Run("EveryField", func(t *testing.T) {
			// The description's fields (id, repository, event, action, timestamp,
			// processed) and the others, by their JSON names.
			var got struct{ Events []map[string]any }
			e.call(t, "GET", "/api/webhooks/events?limit=1", "").ok(t, http.StatusOK, &got)
			rec := all[0] // processed: every third is, the first included
			want := map[string]any{
				"id": "109948940:" + rec.DeliveryID, "hookId": "109948940", "deliveryId": rec.DeliveryID,
				"repository": rec.Repository, "event": rec.Event, "action": rec.Action, "timestamp": rec.ReceivedAt,
				"processed": true, "state": "processed", "outcome": rec.Outcome, "processedAt": rec.ProcessedAt,
				"redelivered": false,
			}
			if len(got.Events) != 1 || !sameFields(got.Events[0], want) {
				t.Errorf("item %v, want %v", got.Events, want)
			}
		})

		t.Run("CursorPaging", func(t *testing.T) {
			pages := pageThrough(t, e, "/api/webhooks/events?limit=60", true)
			checkPages(t, pages, all, 60)
		})

		t.Run("OffsetPaging", func(t *testing.T) {
			pages := pageThrough(t, e, "/api/webhooks/events?limit=60", false)
			checkPages(t, pages, all, 60)
		})

		yes := func(r *delivery.Record) bool { return r.State.Done() }
		filters := []struct {
			name  string
			query string
			want  func(r *delivery.Record) bool
		}{
			{"Repository", recent + "&repository=octo-org/alpha", func(r *delivery.Record) bool { return r.Repository == "octo-org/alpha" }},
			{"RepositoryAnyCase", recent + "&repository=OCTO-ORG/Alpha", func(r *delivery.Record) bool { return r.Repository == "octo-org/alpha" }},
			{"Event", recent + "&event=workflow_job", func(r *delivery.Record) bool { return r.Event == "workflow_job" }},
			{"Action", recent + "&action=queued", func(r *delivery.Record) bool { return r.Action == "queued" }},
			{"Processed", recent + "&processed=true", yes},
			{"NotProcessed", recent + "&processed=false", func(r *delivery.Record) bool { return !yes(r) }},
			{"Combined", recent + "&repository=octo-org/beta&event=workflow_job&processed=false",
				func(r *delivery.Record) bool {
					return r.Repository == "octo-org/beta" && r.Event == "workflow_job" && !yes(r)
				}},
			{"TimeRange", "since=" + url.QueryEscape(all[100].ReceivedAt.Format(time.RFC3339Nano)) +
				"&until=" + url.QueryEscape(all[20].ReceivedAt.Format(time.RFC3339Nano)),
				func(r *delivery.Record) bool {
					return !r.ReceivedAt.Before(all[100].ReceivedAt) && r.ReceivedAt.Before(all[20].ReceivedAt)
				}},
			{"SinceOnly", "since=" + url.QueryEscape(all[9].ReceivedAt.Format(time.RFC3339Nano)),
				func(r *delivery.Record) bool { return !r.ReceivedAt.Before(all[9].ReceivedAt) }},
			{"NoMatch", recent + "&event=deployment", func(*delivery.Record) bool { return false }},
		}
		for _, f := range filters {
			t.Run("Filter"+f.name, func(t *testing.T) {
				want := slices.DeleteFunc(slices.Clone(all), func(r *delivery.Record) bool { return !f.want(r) })
				pages := pageThrough(t, e, "/api/webhooks/events?limit=40&"+f.query, true)
				checkPages(t, pages, want, 40)
				if f.name == "Combined" { // offsets count filtered events too
					checkPages(t, pageThrough(t, e, "/api/webhooks/events?limit=5&"+f.query, false), want, 5)
				}
			})
		}

		t.Run("CursorOfOtherFilters", func(t *testing.T) {
			var first list
			e.call(t, "GET", "/api/webhooks/events?limit=5&event=workflow_job", "").ok(t, http.StatusOK, &first)
			e.call(t, "GET", "/api/webhooks/events?limit=5&event=push&cursor="+first.NextCursor, "").
				failed(t, http.StatusBadRequest, "invalid_cursor", "other filters")
			// The same filters in another order, and another limit, are the same listing.
			var next list
			e.call(t, "GET", "/api/webhooks/events?cursor="+first.NextCursor+"&limit=7&event=workflow_job", "").ok(t, http.StatusOK, &next)
			if len(next.Events) != 7 || next.Offset != 5 {
				t.Errorf("continued with %d events at offset %d, want 7 at 5", len(next.Events), next.Offset)
			}
		})
	})
}

func TestListValidation(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		cases := []struct {
			query, code string
			words       []string
		}{
			{"limit=0", "invalid_parameter", []string{"limit", "1 to 1000"}},
			{"limit=1001", "invalid_parameter", []string{"limit", "1 to 1000"}},
			{"limit=ten", "invalid_parameter", []string{"limit", `"ten"`}},
			{"limit=1.5", "invalid_parameter", []string{"limit"}},
			{"limit=5&limit=6", "invalid_parameter", []string{"limit is given 2 times"}},
			{"offset=-1", "invalid_parameter", []string{"offset", "0 to 10000"}},
			{"offset=10001", "invalid_parameter", []string{"offset", "0 to 10000"}},
			{"processed=yes", "invalid_parameter", []string{"processed", "true or false"}},
			{"processed=1", "invalid_parameter", []string{"processed", "true or false"}},
			{"since=yesterday", "invalid_parameter", []string{"since", "RFC 3339"}},
			{"until=2024-13-01T00:00:00Z", "invalid_parameter", []string{"until", "RFC 3339"}},
			{"since=2024-05-02T00:00:00Z&until=2024-05-01T00:00:00Z", "invalid_parameter", []string{"since must be before until"}},
			{"since=2024-05-01T00:00:00Z&until=2024-05-01T00:00:00Z", "invalid_parameter", []string{"since must be before until"}},
			{"repository=no-slash", "invalid_parameter", []string{"repository", "owner/name"}},
			{"repository=a/b/c", "invalid_parameter", []string{"repository", "owner/name"}},
			{"repository=" + strings.Repeat("o", 40) + "/r", "invalid_parameter", []string{"repository"}},
			{"event=Workflow_Job", "invalid_parameter", []string{"event"}},
			{"event=" + strings.Repeat("e", 65), "invalid_parameter", []string{"event", "…"}},
			{"action=in-progress", "invalid_parameter", []string{"action"}},
			{"cursor=not-a-cursor", "invalid_cursor", []string{"cursor"}},
			{"cursor=" + strings.Repeat("A", 600), "invalid_cursor", []string{"cursor"}},
			{"cursor=eyJ2IjoxfQ&offset=10", "invalid_parameter", []string{"offset and cursor"}},
			// Every problem is named at once.
			{"limit=0&offset=-5&processed=maybe", "invalid_parameter", []string{"limit", "offset", "processed"}},
		}
		for _, c := range cases {
			t.Run(c.query, func(t *testing.T) {
				e.call(t, "GET", "/api/webhooks/events?"+c.query, "").failed(t, http.StatusBadRequest, c.code, c.words...)
			})
		}
		t.Run("UnknownParametersIgnored", func(t *testing.T) {
			e.call(t, "GET", "/api/webhooks/events?colour=blue&limit=3", "").ok(t, http.StatusOK, nil)
		})
		t.Run("Unauthenticated", func(t *testing.T) {
			e.send(t, "GET", "/api/webhooks/events", "", false).failed(t, http.StatusUnauthorized, "unauthorized")
		})
	})
}

func TestGetEvent(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		payload := []byte(`{"action":"queued","workflow_job":{"id":1,"labels":["linux"]},"repository":{"full_name":"octo-org/alpha"}}`)
		rec := &delivery.Record{
			Key: delivery.Key{HookID: "42", DeliveryID: "get-" + newID(0)}, Event: "workflow_job", Action: "queued",
			Repository: "octo-org/alpha", InstallationTargetType: "repository", InstallationTargetID: "7",
			ReceivedAt: e.now.Add(-time.Hour).Truncate(time.Millisecond), Payload: payload, State: delivery.Received,
		}
		if _, err := e.store.Create(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
		var got deliveries.EventDetail
		e.call(t, "GET", "/api/webhooks/events/42:"+rec.DeliveryID, "").ok(t, http.StatusOK, &got)
		if got.ID != "42:"+rec.DeliveryID || got.Event != "workflow_job" || got.State != "received" || got.Processed ||
			got.InstallationTargetType != "repository" || got.InstallationTargetID != "7" {
			t.Errorf("delivery %+v", got)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, got.Payload); err != nil || !bytes.Equal(compact.Bytes(), payload) {
			t.Errorf("payload %s, want %s", got.Payload, payload)
		}
		if got.Redelivered {
			t.Error("redelivered before the reconciler marked it")
		}
		if err := e.store.MarkRedelivered(t.Context(), rec.Key); err != nil {
			t.Fatal(err)
		}
		e.call(t, "GET", "/api/webhooks/events/42:"+rec.DeliveryID, "").ok(t, http.StatusOK, &got)
		if !got.Redelivered {
			t.Error("redelivered = false after MarkRedelivered")
		}

		e.call(t, "GET", "/api/webhooks/events/42:unknown-delivery", "").failed(t, http.StatusNotFound, "not_found", "42:unknown-delivery")
		for _, id := range []string{"no-colon", "42:", ":abc", "abc:def", "42:a%20b", "42:" + strings.Repeat("d", 129), "-1:abc"} {
			e.call(t, "GET", "/api/webhooks/events/"+id, "").failed(t, http.StatusBadRequest, "invalid_parameter", "<hookId>:<deliveryId>")
		}
		e.send(t, "GET", "/api/webhooks/events/42:"+rec.DeliveryID, "", false).failed(t, http.StatusUnauthorized, "unauthorized")
	})
}

func TestReplay(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		recs := seed(t, e.store, 2, e.now.Add(-time.Hour), time.Minute) // recs[0] processed, recs[1] received
		e.drain(t)
		cases := []struct {
			rec     *delivery.Record
			state   string
			message string
		}{
			{recs[1], "received", "queued for processing again"},
			{recs[0], "processed", "nothing changes"},
		}
		for _, c := range cases {
			var got struct {
				ID, State, Message string
				Queued             bool
			}
			e.call(t, "POST", "/api/webhooks/events/109948940:"+c.rec.DeliveryID+"/replay", "").ok(t, http.StatusAccepted, &got)
			if got.ID != "109948940:"+c.rec.DeliveryID || got.State != c.state || !got.Queued || !strings.Contains(got.Message, c.message) {
				t.Errorf("replay of a %s delivery: %+v", c.state, got)
			}
			queued := e.drain(t)
			if want := (delivery.Message{Key: c.rec.Key, Event: c.rec.Event}); len(queued) != 1 || queued[0] != want {
				t.Errorf("queued %+v, want %+v", queued, want)
			}
		}
		// A processed delivery stays as it was.
		if rec, err := e.store.Get(t.Context(), recs[0].Key); err != nil || rec.State != delivery.Processed || rec.Outcome != recs[0].Outcome {
			t.Errorf("after replay: %+v %v", rec, err)
		}

		path := "/api/webhooks/events/109948940:" + recs[1].DeliveryID + "/replay"
		e.call(t, "POST", path, "{}").ok(t, http.StatusAccepted, nil)
		e.call(t, "POST", path, `{"force":true}`).failed(t, http.StatusBadRequest, "invalid_body", `unknown field "force"`)
		e.call(t, "POST", path, `[1]`).failed(t, http.StatusBadRequest, "invalid_body", "expected a JSON object", "got a JSON array")
		e.call(t, "POST", path, `{} {}`).failed(t, http.StatusBadRequest, "invalid_body", "one JSON object")
		e.call(t, "POST", "/api/webhooks/events/109948940:missing/replay", "").failed(t, http.StatusNotFound, "not_found")
		e.call(t, "POST", "/api/webhooks/events/bad/replay", "").failed(t, http.StatusBadRequest, "invalid_parameter")
		e.call(t, "GET", path, "").failed(t, http.StatusMethodNotAllowed, "method_not_allowed")
		e.send(t, "POST", path, "", false).failed(t, http.StatusUnauthorized, "unauthorized")
		e.drain(t)
	})
}

func TestRedrive(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		var dead []delivery.Message
		for _, rec := range seed(t, e.store, 3, e.now.Add(-time.Hour), time.Minute) {
			msg := delivery.Message{Key: rec.Key, Event: rec.Event}
			e.deadLetter(t, msg)
			dead = append(dead, msg)
		}
		e.drain(t)
		var got struct {
			Replayed  int    `json:"replayed"`
			Remaining *int64 `json:"remaining"`
		}
		e.call(t, "POST", "/api/webhooks/dlq/replay", "").ok(t, http.StatusOK, &got)
		if got.Replayed != 3 || got.Remaining == nil || *got.Remaining != 0 {
			t.Errorf("replayed %d, remaining %v; want 3 and 0", got.Replayed, got.Remaining)
		}
		queued := e.drain(t)
		slices.SortFunc(queued, func(a, b delivery.Message) int { return strings.Compare(a.DeliveryID, b.DeliveryID) })
		slices.SortFunc(dead, func(a, b delivery.Message) int { return strings.Compare(a.DeliveryID, b.DeliveryID) })
		if !slices.Equal(queued, dead) {
			t.Errorf("queued %+v, want the dead letters %+v", queued, dead)
		}
		e.call(t, "POST", "/api/webhooks/dlq/replay", "").ok(t, http.StatusOK, &got)
		if got.Replayed != 0 {
			t.Errorf("second replay moved %d", got.Replayed)
		}
		e.call(t, "POST", "/api/webhooks/dlq/replay", `{"all":true}`).failed(t, http.StatusBadRequest, "invalid_body", "all")
		e.call(t, "POST", "/api/webhooks/dlq/replay", "{}").ok(t, http.StatusOK, nil)
		e.send(t, "POST", "/api/webhooks/dlq/replay", "", false).failed(t, http.StatusUnauthorized, "unauthorized")
	})
}

// pageThrough lists from path to the end, following nextCursor or raising offset.
func pageThrough(t *testing.T, e *env, path string, useCursor bool) []list {
	t.Helper()
	var pages []list
	next := path
	for len(pages) < 100 {
		var page list
		e.call(t, "GET", next, "").ok(t, http.StatusOK, &page)
		pages = append(pages, page)
		if !page.HasMore {
			if page.NextCursor != "" {
				t.Errorf("last page has a cursor")
			}
			return pages
		}
		if useCursor {
			next = path + "&cursor=" + page.NextCursor
		} else {
			next = path + "&offset=" + strconv.Itoa(page.Offset+len(page.Events))
		}
	}
	t.Fatal("paging does not end")
	return nil
}

// checkPages checks that pages list want in order, in full pages of limit but the last,
// with offsets and totals counting up.
func checkPages(t *testing.T, pages []list, want []*delivery.Record, limit int) {
	t.Helper()
	var got []item
	for i, p := range pages {
		if p.Offset != len(got) || p.Total != len(got)+len(p.Events) || p.Limit != limit {
			t.Errorf("page %d: offset %d total %d limit %d; want %d, %d, %d", i, p.Offset, p.Total, p.Limit, len(got), len(got)+len(p.Events), limit)
		}
		if i < len(pages)-1 && len(p.Events) != limit {
			t.Errorf("page %d of %d has %d events, want a full page", i, len(pages), len(p.Events))
		}
		got = append(got, p.Events...)
	}
	if wantPages := max(1, (len(want)+limit-1)/limit); len(pages) != wantPages {
		t.Errorf("%d pages, want %d", len(pages), wantPages)
	}
	checkItems(t, got, want)
}

// checkItems compares listed items with records by id and state, in order.
func checkItems(t *testing.T, got []item, want []*delivery.Record) {
	t.Helper()
	ids := func(n int, id func(int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = id(i)
		}
		return out
	}
	g := ids(len(got), func(i int) string { return got[i].DeliveryID + "/" + got[i].State })
	w := ids(len(want), func(i int) string { return want[i].DeliveryID + "/" + string(want[i].State) })
	if !slices.Equal(g, w) {
		t.Errorf("listed %d events, want %d:\n got %v\nwant %v", len(g), len(w), g, w)
	}
}

// sameFields compares a decoded JSON object with want, whose times (at its top level)
// stand for the RFC 3339 strings that denote them.
func sameFields(got, want map[string]any) bool {
	if len(got) != len(want) {
		return false
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			return false
		}
		if wt, isTime := w.(time.Time); isTime {
			s, _ := g.(string)
			gt, err := time.Parse(time.RFC3339Nano, s)
			if err != nil || !gt.Equal(wt) {
				return false
			}
		} else if !reflect.DeepEqual(g, w) {
			return false
		}
	}
	return true
}
