package live_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnerhub/webhooks/internal/live"
	"github.com/runnerhub/webhooks/internal/live/localhub"
)

// gatedSender holds every post until open is closed, and keeps what it was given.
type gatedSender struct {
	open  chan struct{}
	mu    sync.Mutex
	posts [][]byte
}

func (s *gatedSender) Send(_ context.Context, _ string, data []byte) error {
	<-s.open
	s.mu.Lock()
	defer s.mu.Unlock()
	s.posts = append(s.posts, data)
	return nil
}

func (s *gatedSender) messages(t *testing.T) []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []received
	for _, p := range s.posts {
		out = append(out, unbatch(t, p)...)
	}
	return out
}

func subscribedHub(t *testing.T, sender live.Sender) *live.Hub {
	t.Helper()
	hub := &live.Hub{Registry: localhub.NewRegistry(), Sender: sender}
	connect(t, hub, "dashboard")
	return hub
}

// announcement n carries one push-event whose data is n.
func announcement(t *testing.T, n int) live.Announcement {
	t.Helper()
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Millisecond)
	b, err := live.Encode(live.Message{Event: live.EventPush, Room: live.Room("octo-org/a"), At: at, Data: n})
	if err != nil {
		t.Fatal(err)
	}
	return live.Announcement{At: at, Frames: []live.Frame{{Room: live.Room("octo-org/a"), Data: b}}}
}

func runCoalescer(t *testing.T, c *live.Coalescer) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

// A fan-out that is stuck (a slow client, a slow API Gateway) never holds up a commit:
// Publish returns at once, and what the buffer cannot hold is dropped and counted.
func TestCoalescerNeverBlocksAndCountsDrops(t *testing.T) {
	sender := &gatedSender{open: make(chan struct{})}
	c := live.NewCoalescer(subscribedHub(t, sender), time.Millisecond, 4)
	stop := runCoalescer(t, c)
	if err := c.Publish(context.Background(), announcement(t, 0)); err != nil {
		t.Fatal(err)
	}
	// The first run takes announcement 0 and waits in its post; the buffer then fills.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if err := c.Publish(context.Background(), announcement(t, 1)); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond) // let the run take announcement 1 if it is not waiting yet
	var errs []error
	start := time.Now()
	for n := 2; n < 12; n++ {
		errs = append(errs, c.Publish(context.Background(), announcement(t, n)))
	}
	if elapsed := time.Since(start); elapsed > 100*time.Millisecond {
		t.Errorf("publishing to a stuck fan-out took %v", elapsed)
	}
	dropped := 0
	for _, err := range errs {
		if errors.Is(err, live.ErrDropped) {
			dropped++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if dropped < 6 || int64(dropped) != c.Dropped() {
		t.Errorf("%d publishes dropped, Dropped() %d; want the ones beyond the buffer of 4 (6 or 7)", dropped, c.Dropped())
	}
	close(sender.open)
	stop()
	got := sender.messages(t)
	if want := 12 - dropped; len(got) != want {
		t.Errorf("delivered %d messages, want the %d kept", len(got), want)
	}
}

// Announcements that gather while a run is not due go out together: one post per
// connection, their messages in commit order.
func TestCoalescerGathersAnnouncementsIntoOnePost(t *testing.T) {
	sender := &gatedSender{open: make(chan struct{})}
	close(sender.open)
	c := live.NewCoalescer(subscribedHub(t, sender), time.Hour, 64) // never due again after the first run
	stop := runCoalescer(t, c)
	for n := range 10 {
		// Published newest first: the fan-out orders them by commit time.
		if err := c.Publish(context.Background(), announcement(t, 9-n)); err != nil {
			t.Fatal(err)
		}
	}
	stop() // delivers what it holds
	var order []string
	for _, m := range sender.messages(t) {
		order = append(order, string(m.Data))
	}
	sender.mu.Lock()
	posts := len(sender.posts)
	sender.mu.Unlock()
	// The first announcement may go out alone, at once (the coalescer was quiet).
	if posts > 2 || len(order) != 10 {
		t.Fatalf("%d posts carrying %d messages, want the 10 in at most 2", posts, len(order))
	}
	if posts == 1 && strings.Join(order, ",") != "0,1,2,3,4,5,6,7,8,9" {
		t.Errorf("messages in the order %v, want commit order", order)
	}
}

// A post never exceeds MaxMessageBytes: messages that do not fit together are split into
// several posts, in order, and a message alone goes as its envelope.
func TestDeliverSplitsPostsAtTheLimit(t *testing.T) {
	sender := &gatedSender{open: make(chan struct{})}
	close(sender.open)
	hub := subscribedHub(t, sender)
	var msgs []live.Message
	for n := range 5 { // about 50 KB each: two fit a post
		msgs = append(msgs, live.Message{Event: live.EventPoolStatus, At: time.Now().UTC(), Data: fmt.Sprintf("%d%s", n, strings.Repeat("x", 50_000))})
	}
	if err := hub.Broadcast(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	var shapes []string
	for _, p := range sender.posts {
		if len(p) > live.MaxMessageBytes {
			t.Errorf("a post of %d bytes", len(p))
		}
		var batch []json.RawMessage
		if json.Unmarshal(p, &batch) == nil {
			shapes = append(shapes, fmt.Sprint(len(batch)))
		} else {
			shapes = append(shapes, "envelope")
		}
	}
	if strings.Join(shapes, " ") != "2 2 envelope" {
		t.Errorf("posts %v, want arrays of 2, 2 and the last message alone", shapes)
	}
	var order []string
	for _, m := range sender.messages(t) {
		order = append(order, string(m.Data[:2]))
	}
	if strings.Join(order, "") != `"0"1"2"3"4` {
		t.Errorf("messages in the order %v", order)
	}
}

// With nobody connected (Idle), a commit is not even encoded; once somebody is, its
// announcement goes to the outbox.
func TestAnnouncerIdle(t *testing.T) {
	idle := true
	var published []live.Announcement
	a := &live.Announcer{Idle: func() bool { return idle }, Outbox: outboxFunc(func(_ context.Context, ann live.Announcement) error {
		published = append(published, ann)
		return nil
	})}
	a.Committed(context.Background(), queuedCommit(1))
	if len(published) != 0 {
		t.Fatalf("published %d announcements with nobody connected", len(published))
	}
	idle = false
	a.Committed(context.Background(), queuedCommit(2))
	if len(published) != 1 || len(published[0].Frames) != 2 || !slices.Equal(published[0].Pools, []string{"default"}) {
		t.Fatalf("published %+v, want the commit's two messages and its pool", published)
	}
}

type outboxFunc func(ctx context.Context, a live.Announcement) error

func (f outboxFunc) Publish(ctx context.Context, a live.Announcement) error { return f(ctx, a) }
