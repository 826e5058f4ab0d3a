package awsstore

import (
	"context"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
)

// The listing reads gsi1sk values that Create writes: both must use one time layout.
func TestTimeIndexKeysMatchListing(t *testing.T) {
	if timeLayout != delivery.TimeKeyLayout {
		t.Fatalf("items are indexed with %q, listings look them up with %q", timeLayout, delivery.TimeKeyLayout)
	}
	rec := &delivery.Record{Key: delivery.Key{HookID: "1", DeliveryID: "d"}, ReceivedAt: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), Payload: []byte(`{}`)}
	item, err := (&Store{}).newItem(context.Background(), rec) // a small payload stays in the item: no S3
	if err != nil {
		t.Fatal(err)
	}
	pos := delivery.Position{At: rec.ReceivedAt, Key: rec.Key}
	if got := stringAttr(item, attrGSI1SK); got != pos.SortKey() {
		t.Errorf("gsi1sk %q, listing position %q", got, pos.SortKey())
	}
	if got, want := stringAttr(item, attrGSI1PK), deliveriesPartition(pos.Day(), shardOf(rec.Key)%deliveryShards); got != want {
		t.Errorf("gsi1pk %q, listing partition %q", got, want)
	}
}
