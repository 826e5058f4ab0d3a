package deliveries_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/testenv"
)

// TestReadCostDoesNotGrowWithEvents counts the DynamoDB requests of the read endpoints on
// a table with 10 deliveries and on one with 5,000 (over the same two days): statistics
// cost exactly the same, listings at most a bound set by the query (days walked, rows
// skipped), never by the number of deliveries.
func TestReadCostDoesNotGrowWithEvents(t *testing.T) {
	t.Parallel()
	// A moto of its own: its queries over thousands of items would hold up every other
	// test's requests to the shared one.
	a := testenv.StartAWS(t)
	small, large := newAWSOn(t, a), newAWSOn(t, a.Fresh(t))
	small.now = large.now
	bulkSeed(t, small, 10)
	bulkSeed(t, large, 5000)

	since := url.QueryEscape(large.now.Add(-2 * 24 * time.Hour).Format(time.RFC3339))
	days := func(from, to time.Time) int { return int(to.Sub(from.Truncate(24*time.Hour))/(24*time.Hour)) + 1 }
	statsDays := func(hours int) int {
		return days(large.now.Truncate(time.Hour).Add(time.Duration(1-hours)*time.Hour), large.now)
	}
	listDays := days(large.now.Add(-2*24*time.Hour), large.now.Add(time.Minute))

	cases := []struct {
		name, path string
		// same: both tables must cost exactly the same; otherwise each at most max.
		same bool
		max  int
	}{
		// One Query per counter partition of each UTC day for the delivery counters, and
		// as many for the job counters.
		{"statistics 24 hours", "/api/webhooks/statistics?hours=24", true, 2 * storeShards * statsDays(24)},
		{"statistics 720 hours", "/api/webhooks/statistics?hours=720", true, 2 * storeShards * statsDays(720)},
		{"health", "/api/webhooks/health", false, (2 + 2) * storeShards},
		{"events, first page", "/api/webhooks/events?since=" + since, false, listDays * storeShards},
		{"events, offset 2000", "/api/webhooks/events?offset=2000&since=" + since, false, (listDays + 3) * storeShards},
		{"events, filtered", "/api/webhooks/events?event=push&processed=false&since=" + since, false, delivery.DefaultMaxReads * storeShards},
		{"events, default range of 30 days", "/api/webhooks/events", false, 32 * storeShards},
	}
	for _, c := range cases {
		costs := map[string]int{}
		for name, e := range map[string]*env{"10": small, "5000": large} {
			ops := e.requests.During(func() { e.call(t, "GET", c.path, "").ok(t, http.StatusOK, nil) })
			n := 0
			for op, count := range ops {
				if op != "Query" {
					t.Errorf("%s on %s deliveries: %d %s requests; reads must be Queries", c.name, name, count, op)
				}
				n += count
			}
			costs[name] = n
		}
		t.Logf("%-34s 10 deliveries: %2d requests, 5000 deliveries: %2d requests", c.name, costs["10"], costs["5000"])
		if c.same && costs["10"] != costs["5000"] {
			t.Errorf("%s: %d requests for 10 deliveries, %d for 5000; want the same", c.name, costs["10"], costs["5000"])
		}
		for name, n := range costs {
			if n > c.max {
				t.Errorf("%s on %s deliveries: %d requests, want at most %d", c.name, name, n, c.max)
			}
		}
	}

	// Paging deep into the large table by cursor costs what the first page does.
	next := "/api/webhooks/events?since=" + since
	for page := 1; page <= 3; page++ {
		var got list
		ops := large.requests.During(func() { large.call(t, "GET", next, "").ok(t, http.StatusOK, &got) })
		if ops["Query"] > 2*storeShards || len(got.Events) != 100 { // a page that spans midnight reads two days
			t.Errorf("page %d by cursor: %v requests, %d events; want at most %d Queries and 100 events", page, ops, len(got.Events), 2*storeShards)
		}
		next = "/api/webhooks/events?since=" + since + "&cursor=" + got.NextCursor
	}
}

// bulkSeed writes n deliveries received over the two days before e.now, and the hourly
// counters that count them, with BatchWriteItem: creating 5,000 through the store would
// take minutes on moto. The items follow the layout of the README's DynamoDB item design
// (the store's own listing reading them back is what checks it); the payload is a real
// workflow_job payload, compressed as the store keeps it, so that reads cost what they
// cost in production.
func bulkSeed(t *testing.T, e *env, n int) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "testdata", "workflow_job.queued.json"))
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	s := attrS
	var items []map[string]types.AttributeValue
	counters := map[[2]string]*[2]int{} // (day, hh#event) → total, processed
	span := 2 * 24 * time.Hour
	newest := e.now.Add(-time.Minute)
	for i := range n {
		k := seedKinds[i%len(seedKinds)]
		at := newest.Add(-span * time.Duration(i) / time.Duration(n)).UTC().Truncate(time.Millisecond)
		id := fmt.Sprintf("bulk-%d-%d", n, i)
		received := at.Format(delivery.TimeKeyLayout)
		day := at.Format(time.DateOnly)
		state := "received"
		if i%3 == 0 {
			state = "processed"
		}
		item := map[string]types.AttributeValue{
			"pk": s("DELIVERY#1#" + id), "sk": s("DELIVERY"),
			"hookId": s("1"), "deliveryId": s(id),
			"event": s(k.event), "repository": s(k.repository), "state": s(state),
			"receivedAt":      s(received),
			"gsi1pk":          s(fmt.Sprintf("DELIVERIES#%s#%d", day, i%storeShards)),
			"gsi1sk":          s(received + "#1#" + id),
			"payloadEncoding": s("gzip"),
			"payload":         &types.AttributeValueMemberB{Value: gz.Bytes()},
		}
		if k.action != "" {
			item["action"] = s(k.action)
		}
		items = append(items, item)
		c := counters[[2]string{day, fmt.Sprintf("%02d#%s", at.Hour(), k.event)}]
		if c == nil {
			c = new([2]int)
			counters[[2]string{day, fmt.Sprintf("%02d#%s", at.Hour(), k.event)}] = c
		}
		c[0]++
		if state == "processed" {
			c[1]++
		}
	}
	for key, c := range counters {
		items = append(items, map[string]types.AttributeValue{
			"pk": s("COUNTERS#" + key[0] + "#0"), "sk": s(key[1]),
			"total": attrN(c[0]), "processed": attrN(c[1]),
		})
	}
	table := e.aws.EventsTable
	db := dynamodb.NewFromConfig(e.aws.Config) // not counted
	for start := 0; start < len(items); start += 25 {
		batch := items[start:min(start+25, len(items))]
		reqs := make([]types.WriteRequest, len(batch))
		for i, it := range batch {
			reqs[i] = types.WriteRequest{PutRequest: &types.PutRequest{Item: it}}
		}
		pending := map[string][]types.WriteRequest{table: reqs}
		for len(pending) > 0 {
			out, err := db.BatchWriteItem(context.Background(), &dynamodb.BatchWriteItemInput{RequestItems: pending})
			if err != nil {
				t.Fatal(err)
			}
			pending = out.UnprocessedItems
		}
	}
}

// storeShards is how many partitions the DynamoDB store spreads a day's deliveries in
// the byTime index, and a day's counters, over (README "DynamoDB item design"): every
// listing and statistics read queries each.
const storeShards = 8

func attrS(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func attrN(v int) types.AttributeValue { return &types.AttributeValueMemberN{Value: strconv.Itoa(v)} }
