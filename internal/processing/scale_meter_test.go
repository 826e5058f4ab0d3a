package processing_test

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
)

// capacityMeter is an SDK middleware that prices every DynamoDB request the way
// DynamoDB on-demand bills it, and charges each write to the partition keys it lands on:
// the table's, and that of every GSI the item enters, stays in or leaves.
//
// DynamoDB's rules, as documented ("Item sizes and formats", "Capacity unit consumption
// for writes", "GSI write activity"):
//   - a write costs ceil(size / 1 KB) write units, where size is the larger of the item
//     before and after it; a transactional write costs twice that;
//   - a GSI write costs ceil(index entry / 1 KB) in that GSI, standard (not doubled): one
//     put when the item enters the index, one put when it stays under the same keys, a
//     delete of the old entry plus a put of the new one when its index keys change, one
//     delete when it leaves;
//   - a strongly consistent read costs ceil(size / 4 KB) read units, an eventually
//     consistent one half that; a Query rounds the sum of the items it reads.
//
// To know an item's size and index keys before and after each write, the meter keeps a
// shadow of every item: after a successful write it reads the items written through a
// client of its own (not metered). The simulation is sequential, so the shadow is exact.
type capacityMeter struct {
	raw   *dynamodb.Client
	table string
	gsis  []gsiShape

	mu     sync.Mutex
	label  string                 // the event type the requests are charged to
	shadow map[string]shadowEntry // by itemID
	keys   map[partition]*keyLoad
	events map[string]*eventUsage
}

// gsiShape is what the meter needs of a GSI: its key attributes and projection.
type gsiShape struct {
	name, hash, rng string
	projection      types.ProjectionType
	include         []string
}

// partition is a partition key of the table (index "") or of a GSI.
type partition struct{ index, key string }

type keyLoad struct {
	writes int
	wcu    float64
}

// eventUsage is what the deliveries of one event type cost, summed.
type eventUsage struct {
	deliveries int
	requests   map[string]int // by operation
	wcu        float64        // table writes, transactional doubled
	gsiWCU     float64
	rcu        float64
	cancelled  int // transactions cancelled (conflict or condition)
}

type shadowEntry struct {
	item map[string]types.AttributeValue
	size int
}

func newCapacityMeter(ctx context.Context, t testing.TB, raw *dynamodb.Client, table string) *capacityMeter {
	t.Helper()
	out, err := raw.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &table})
	if err != nil {
		t.Fatal(err)
	}
	m := &capacityMeter{raw: raw, table: table, shadow: map[string]shadowEntry{},
		keys: map[partition]*keyLoad{}, events: map[string]*eventUsage{}}
	for _, g := range out.Table.GlobalSecondaryIndexes {
		s := gsiShape{name: aws.ToString(g.IndexName), projection: g.Projection.ProjectionType, include: g.Projection.NonKeyAttributes}
		for _, k := range g.KeySchema {
			if k.KeyType == types.KeyTypeHash {
				s.hash = aws.ToString(k.AttributeName)
			} else {
				s.rng = aws.ToString(k.AttributeName)
			}
		}
		m.gsis = append(m.gsis, s)
	}
	// Seed the shadow with what the test set up before metering.
	p := dynamodb.NewScanPaginator(raw, &dynamodb.ScanInput{TableName: &table})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range page.Items {
			m.shadow[itemID(item)] = shadowEntry{item: item, size: itemSize(item)}
		}
	}
	return m
}

// option installs the meter on a client (initialize step: once per operation, around
// the SDK's retries, with the typed input and output at hand).
func (m *capacityMeter) option(o *dynamodb.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("capacityMeter",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleInitialize(ctx, in)
				m.observe(ctx, in.Parameters, out.Result, err)
				return out, md, err
			}), middleware.After)
	})
}

// charge sets the event type later requests are charged to, and counts a delivery of it.
func (m *capacityMeter) charge(event string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.label = event
	m.usage().deliveries++
}

func (m *capacityMeter) usage() *eventUsage {
	u := m.events[m.label]
	if u == nil {
		u = &eventUsage{requests: map[string]int{}}
		m.events[m.label] = u
	}
	return u
}

// written is one item a write request touched: by a Put (item is the new item) or
// Delete (deleted), whose result the meter knows, or by an Update, which it reads back.
type written struct {
	key           map[string]types.AttributeValue
	item          map[string]types.AttributeValue
	deleted       bool
	transactional bool
}

func (m *capacityMeter) observe(ctx context.Context, params, result any, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.usage()
	var writes []written
	switch in := params.(type) {
	case *dynamodb.GetItemInput:
		u.requests["GetItem"]++
		if out, ok := result.(*dynamodb.GetItemOutput); ok && err == nil {
			u.rcu += readUnits(m.fullSize(out.Item), aws.ToBool(in.ConsistentRead))
		}
	case *dynamodb.QueryInput:
		u.requests["Query"]++
		if out, ok := result.(*dynamodb.QueryOutput); ok && err == nil {
			size := 0
			for _, item := range out.Items {
				size += m.fullSize(item)
			}
			u.rcu += readUnits(size, aws.ToBool(in.ConsistentRead))
		}
	case *dynamodb.BatchGetItemInput:
		u.requests["BatchGetItem"]++
		if out, ok := result.(*dynamodb.BatchGetItemOutput); ok && err == nil {
			// Each key read is charged on its own, rounded up; a key with no item still
			// costs the minimum, and only the unprocessed keys cost nothing.
			for table, asked := range in.RequestItems {
				consistent := aws.ToBool(asked.ConsistentRead)
				for _, item := range out.Responses[table] {
					u.rcu += readUnits(m.fullSize(item), consistent)
				}
				missing := len(asked.Keys) - len(out.Responses[table]) - len(out.UnprocessedKeys[table].Keys)
				u.rcu += float64(missing) * readUnits(0, consistent)
			}
		}
	case *dynamodb.PutItemInput:
		u.requests["PutItem"]++
		writes = append(writes, written{key: keyOf(in.Item), item: in.Item})
	case *dynamodb.UpdateItemInput:
		u.requests["UpdateItem"]++
		writes = append(writes, written{key: in.Key})
	case *dynamodb.DeleteItemInput:
		u.requests["DeleteItem"]++
		writes = append(writes, written{key: in.Key, deleted: true})
	case *dynamodb.TransactWriteItemsInput:
		u.requests["TransactWriteItems"]++
		for _, it := range in.TransactItems {
			switch {
			case it.Put != nil:
				writes = append(writes, written{key: keyOf(it.Put.Item), item: it.Put.Item, transactional: true})
			case it.Update != nil:
				writes = append(writes, written{key: it.Update.Key, transactional: true})
			case it.Delete != nil:
				writes = append(writes, written{key: it.Delete.Key, deleted: true, transactional: true})
			case it.ConditionCheck != nil:
				// Charged as a transactional write of the item, to be safe: it is an
				// action on the item's partition, as a gate side's check is.
				writes = append(writes, written{key: it.ConditionCheck.Key, transactional: true})
			}
		}
		if err != nil {
			u.cancelled++
		}
	case *dynamodb.BatchWriteItemInput:
		u.requests["BatchWriteItem"]++
		for _, reqs := range in.RequestItems {
			for _, r := range reqs {
				if r.PutRequest != nil {
					writes = append(writes, written{key: keyOf(r.PutRequest.Item), item: r.PutRequest.Item})
				} else if r.DeleteRequest != nil {
					writes = append(writes, written{key: r.DeleteRequest.Key, deleted: true})
				}
			}
		}
	default:
		u.requests[fmt.Sprintf("%T", params)]++
	}
	if err != nil {
		return // a cancelled or failed write changed nothing
	}
	for _, w := range writes {
		m.chargeWrite(ctx, u, w)
	}
}

// chargeWrite charges one item write to the table's partition and the GSIs' partitions.
func (m *capacityMeter) chargeWrite(ctx context.Context, u *eventUsage, w written) {
	id := itemID(w.key)
	before, existed := m.shadow[id]
	item := w.item
	if item == nil && !w.deleted {
		out, err := m.raw.GetItem(ctx, &dynamodb.GetItemInput{TableName: &m.table, Key: w.key, ConsistentRead: aws.Bool(true)})
		if err != nil {
			panic(fmt.Sprintf("capacity meter: reading back %s: %v", id, err)) // a test helper: moto is gone
		}
		item = out.Item
	}
	after := shadowEntry{item: item, size: itemSize(item)}
	if len(item) == 0 {
		delete(m.shadow, id)
	} else {
		m.shadow[id] = after
	}
	units := writeUnits(max(before.size, after.size))
	if w.transactional {
		units *= 2
	}
	u.wcu += units
	m.add(partition{key: stringOf(w.key["pk"])}, units)
	for _, g := range m.gsis {
		oldPK, oldSK := "", ""
		if existed {
			oldPK, oldSK = stringOf(before.item[g.hash]), stringOf(before.item[g.rng])
		}
		newPK, newSK := stringOf(after.item[g.hash]), stringOf(after.item[g.rng])
		if oldPK != "" && (oldPK != newPK || oldSK != newSK) {
			units := writeUnits(g.entrySize(before.item))
			u.gsiWCU += units
			m.add(partition{g.name, oldPK}, units)
		}
		if newPK != "" {
			units := writeUnits(g.entrySize(after.item))
			u.gsiWCU += units
			m.add(partition{g.name, newPK}, units)
		}
	}
}

func (m *capacityMeter) add(p partition, units float64) {
	l := m.keys[p]
	if l == nil {
		l = &keyLoad{}
		m.keys[p] = l
	}
	l.writes++
	l.wcu += units
}

// fullSize is the size DynamoDB reads for an item returned (perhaps projected): that of
// the whole stored item.
func (m *capacityMeter) fullSize(item map[string]types.AttributeValue) int {
	if len(item) == 0 {
		return 0
	}
	if s, ok := m.shadow[itemID(item)]; ok {
		return s.size
	}
	return itemSize(item)
}

// entrySize is the size of an item's entry in the index.
func (g gsiShape) entrySize(item map[string]types.AttributeValue) int {
	if g.projection == types.ProjectionTypeAll {
		return itemSize(item)
	}
	entry := map[string]types.AttributeValue{}
	for _, a := range append([]string{"pk", "sk", g.hash, g.rng}, g.include...) {
		if v, ok := item[a]; ok {
			entry[a] = v
		}
	}
	return itemSize(entry)
}

// shardedKeys are the partition keys awsstore spreads over shards by hashing deliveries
// or jobs, or at random (shards.go, poolcounts.go there; not the runners', sharded by pool), and how many: such a key's load is its shards' mean, which hashing makes each shard's over
// a real day's millions of deliveries, whatever a short simulation's sample gives one.
var shardedKeys = []struct {
	pattern *regexp.Regexp
	shards  int
}{
	{regexp.MustCompile(`^(COUNTERS#\d{4}-\d\d-\d\d)#\d+$`), 8},
	{regexp.MustCompile(`^(JOBCOUNTS#\d{4}-\d\d-\d\d)#\d+$`), 8},
	{regexp.MustCompile(`^(DELIVERIES#\d{4}-\d\d-\d\d)#\d+$`), 8},
	// A pool's counts, a shard chosen at random per commit.
	{regexp.MustCompile(`^(POOLCOUNTS#[^#]+)#\d+$`), 8},
}

// load is the write load of one partition key, or the mean of a sharded key's shards.
type load struct {
	index, key string
	writes     float64
	wcu        float64
}

// loads returns the write load of every partition key, highest first.
func (m *capacityMeter) loads() []load {
	m.mu.Lock()
	defer m.mu.Unlock()
	byKey := map[partition]*load{}
	for p, l := range m.keys {
		key, shards := p.key, 1
		for _, s := range shardedKeys {
			if sub := s.pattern.FindStringSubmatch(p.key); sub != nil {
				key, shards = fmt.Sprintf("%s#<%d shards>", sub[1], s.shards), s.shards
			}
		}
		k := partition{p.index, key}
		if byKey[k] == nil {
			byKey[k] = &load{index: p.index, key: key}
		}
		byKey[k].writes += float64(l.writes) / float64(shards)
		byKey[k].wcu += l.wcu / float64(shards)
	}
	out := make([]load, 0, len(byKey))
	for _, l := range byKey {
		out = append(out, *l)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].wcu != out[j].wcu {
			return out[i].wcu > out[j].wcu
		}
		return out[i].index+out[i].key < out[j].index+out[j].key
	})
	return out
}

func writeUnits(size int) float64 { return math.Max(1, math.Ceil(float64(size)/1024)) }

func readUnits(size int, consistent bool) float64 {
	units := math.Max(1, math.Ceil(float64(size)/4096))
	if !consistent {
		units /= 2
	}
	return units
}

func keyOf(item map[string]types.AttributeValue) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": item["pk"], "sk": item["sk"]}
}

func itemID(item map[string]types.AttributeValue) string {
	return stringOf(item["pk"]) + "\x00" + stringOf(item["sk"])
}

func stringOf(v types.AttributeValue) string {
	if s, ok := v.(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

// itemSize is DynamoDB's size of an item: each attribute's name plus its value.
func itemSize(item map[string]types.AttributeValue) int {
	n := 0
	for name, v := range item {
		n += len(name) + valueSize(v)
	}
	return n
}

func valueSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		return numberSize(v.Value)
	case *types.AttributeValueMemberB:
		return len(v.Value)
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	case *types.AttributeValueMemberSS:
		n := 0
		for _, s := range v.Value {
			n += len(s)
		}
		return n
	case *types.AttributeValueMemberNS:
		n := 0
		for _, s := range v.Value {
			n += numberSize(s)
		}
		return n
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range v.Value {
			n += 1 + valueSize(e)
		}
		return n
	case *types.AttributeValueMemberM:
		n := 3
		for k, e := range v.Value {
			n += 1 + len(k) + valueSize(e)
		}
		return n
	}
	return 0
}

// numberSize: one byte per two significant digits, plus one.
func numberSize(s string) int {
	digits := len(strings.TrimLeft(strings.Trim(strings.NewReplacer("-", "", ".", "").Replace(s), "0"), "0"))
	return (digits+1)/2 + 1
}
