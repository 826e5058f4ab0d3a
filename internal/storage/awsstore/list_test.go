package awsstore

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/testenv"
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

func TestDeadLetters(t *testing.T) {
	t.Parallel()
	env := testenv.SharedAWS(t)
	ctx := context.Background()
	c := sqs.NewFromConfig(env.Config)
	dl := NewQueue(c, env.EventsQueueURL).DeadLetters(env.EventsDLQURL)
	if d, err := dl.Depths(ctx); err != nil || d != (delivery.Depths{}) {
		t.Fatalf("depths of new queues %+v %v", d, err)
	}
	for _, id := range []string{"dead-1", "dead-2"} {
		// What the events queue's redrive policy would have moved there.
		if err := NewQueue(c, env.EventsDLQURL).Enqueue(ctx, delivery.Message{Key: delivery.Key{HookID: "1", DeliveryID: id}, Event: "push"}); err != nil {
			t.Fatal(err)
		}
	}
	if d, err := dl.Depths(ctx); err != nil || d != (delivery.Depths{Dead: 2}) {
		t.Fatalf("depths %+v %v, want 2 dead", d, err)
	}
	if n, err := dl.Redrive(ctx); err != nil || n != 2 {
		t.Fatalf("redrive moved %d, %v", n, err)
	}
	if d, err := dl.Depths(ctx); err != nil || d != (delivery.Depths{Queued: 2}) {
		t.Fatalf("depths after redrive %+v %v, want 2 queued", d, err)
	}
}
