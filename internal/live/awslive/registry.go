package awslive

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/runnerhub/webhooks/internal/auth"
	"github.com/runnerhub/webhooks/internal/live"
)

// One connection is one item in the events table, plus one item per repository it is
// subscribed to, all in its partition:
//
//	pk            WSCONN#<connectionId>
//	sk            WSCONN, or ROOM#<repository> for a subscription to one repository
//	gsi1pk        WSCONNS (the connection: the sparse byTime partition of every connection),
//	              or WSROOM#<repository> (a subscription: its room's partition)
//	gsi1sk        <expiresAt, fixed-width UTC>#<connectionId>
//	gsi2pk        WSALL on the connection item while it is subscribed to everything (byAttr)
//	gsi2sk        gsi1sk again
//	connectionId  the id again, so that index queries need not parse pk
//	connectedAt   RFC 3339, UTC, milliseconds
//	expiresAt     epoch seconds: the table's TTL attribute
//	role          S, the credentials' role: "read" or "admin" (connection item)
//	all           BOOL, subscribed to everything (connection item)
//	repos         SS, lower-cased repository full names (connection item; absent when none)
//	room          the subscription's repository (subscription items)
//
// The connection item is the subscription's truth: repos is changed with ADD and DELETE
// on a string set, atomically, and its size bounded by the update's condition. The
// subscription items follow it: they index it by room, so that the fan-out of a
// repository's message queries WSROOM#<repository> and WSALL, never every connection.
// Every key condition puts the expiry first (gsi1sk > now), so expired records are left
// out before DynamoDB's TTL (which may take days) deletes them.
const (
	connPKPrefix  = "WSCONN#"
	connSK        = "WSCONN"
	roomSKPrefix  = "ROOM#"
	connsGSI1PK   = "WSCONNS"
	roomPKPrefix  = "WSROOM#"
	allGSI2PK     = "WSALL"
	byTimeIndex   = "byTime"
	byAttrIndex   = "byAttr"
	attrPK        = "pk"
	attrSK        = "sk"
	attrGSI1PK    = "gsi1pk"
	attrGSI1SK    = "gsi1sk"
	attrGSI2PK    = "gsi2pk"
	attrGSI2SK    = "gsi2sk"
	attrID        = "connectionId"
	attrConnected = "connectedAt"
	attrExpires   = "expiresAt"
	attrRole      = "role"
	attrAll       = "all"
	attrRepos     = "repos"
	attrRoom      = "room"
	// timeLayout has a fixed width so that gsi1sk sorts by time as a string.
	timeLayout = "2006-01-02T15:04:05.000Z07:00"
	// batchWriteMax is BatchWriteItem's limit of requests per call.
	batchWriteMax = 25
)

// Registry is the DynamoDB live.Registry.
type Registry struct {
	db    *dynamodb.Client
	table string
}

var _ live.Registry = (*Registry)(nil)

// NewRegistry returns a registry in table (the events table).
func NewRegistry(db *dynamodb.Client, table string) *Registry { return &Registry{db: db, table: table} }

func key(id, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPK: &types.AttributeValueMemberS{Value: connPKPrefix + id},
		attrSK: &types.AttributeValueMemberS{Value: sk},
	}
}

func str(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func epoch(t time.Time) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(t.Unix(), 10)}
}

// expiring returns the attributes every item of connection c has: its key, the byTime
// sort key and the times.
func expiring(c live.Connection, sk, gsi1pk string) map[string]types.AttributeValue {
	expires := c.ExpiresAt.UTC().Truncate(time.Second) // as the TTL attribute holds it
	item := key(c.ID, sk)
	item[attrGSI1PK] = str(gsi1pk)
	item[attrGSI1SK] = str(expires.Format(timeLayout) + "#" + c.ID)
	item[attrID] = str(c.ID)
	item[attrConnected] = str(c.ConnectedAt.UTC().Format(timeLayout))
	item[attrExpires] = epoch(expires)
	return item
}

// roomItem is connection c's subscription to repo.
func roomItem(c live.Connection, repo string) map[string]types.AttributeValue {
	item := expiring(c, roomSKPrefix+repo, roomPKPrefix+repo)
	item[attrRoom] = str(repo)
	return item
}

// Put implements live.Registry: the connection item and its subscription items,
// replacing what the partition held.
func (r *Registry) Put(ctx context.Context, c live.Connection) error {
	item := expiring(c, connSK, connsGSI1PK)
	item[attrRole] = str(c.Role.String())
	item[attrAll] = &types.AttributeValueMemberBOOL{Value: c.All}
	if c.All {
		item[attrGSI2PK], item[attrGSI2SK] = str(allGSI2PK), item[attrGSI1SK]
	}
	if len(c.Repositories) > 0 {
		item[attrRepos] = &types.AttributeValueMemberSS{Value: c.Repositories}
	}
	stale, err := r.partition(ctx, c.ID)
	if err != nil {
		return err
	}
	writes := []types.WriteRequest{{PutRequest: &types.PutRequest{Item: item}}}
	for _, repo := range c.Repositories {
		writes = append(writes, types.WriteRequest{PutRequest: &types.PutRequest{Item: roomItem(c, repo)}})
		delete(stale, roomSKPrefix+repo)
	}
	delete(stale, connSK)
	for sk := range stale {
		writes = append(writes, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: key(c.ID, sk)}})
	}
	if err := r.batchWrite(ctx, writes); err != nil {
		return fmt.Errorf("record WebSocket connection %s: %w", c.ID, err)
	}
	return nil
}

// partition returns the sort keys of connection id's items.
func (r *Registry) partition(ctx context.Context, id string) (map[string]bool, error) {
	p := dynamodb.NewQueryPaginator(r.db, &dynamodb.QueryInput{
		TableName: &r.table, ConsistentRead: aws.Bool(true),
		KeyConditionExpression:    aws.String("#pk = :pk"),
		ProjectionExpression:      aws.String("#sk"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrPK, "#sk": attrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(connPKPrefix + id)},
	})
	sks := map[string]bool{}
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("read WebSocket connection %s: %w", id, err)
		}
		for _, item := range page.Items {
			if sk, ok := item[attrSK].(*types.AttributeValueMemberS); ok {
				sks[sk.Value] = true
			}
		}
	}
	return sks, nil
}

// batchWriteAttempts bounds the sending of one chunk: DynamoDB may leave part of it
// unprocessed for as long as it throttles.
const batchWriteAttempts = 5

// batchWrite writes requests 25 at a time, sending again what DynamoDB left unprocessed,
// up to batchWriteAttempts times a chunk.
func (r *Registry) batchWrite(ctx context.Context, writes []types.WriteRequest) error {
	for chunk := range slices.Chunk(writes, batchWriteMax) {
		pending := map[string][]types.WriteRequest{r.table: chunk}
		for attempt := 0; len(pending[r.table]) > 0; attempt++ {
			if attempt == batchWriteAttempts {
				return fmt.Errorf("%d writes still unprocessed after %d attempts", len(pending[r.table]), attempt)
			}
			if attempt > 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(time.Duration(attempt*attempt) * 20 * time.Millisecond):
				}
			}
			out, err := r.db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
			if err != nil {
				return err
			}
			pending = out.UnprocessedItems
		}
	}
	return nil
}

// Update implements live.Registry with one conditional UpdateItem of the connection
// item: ADD and DELETE on a string set are atomic, so concurrent requests of one
// connection (separate Lambda invocations) cannot lose each other's repositories. The
// subscription items of the repositories the change names are then written as the
// update left them (put if subscribed, deleted if not), so that a retry repairs them.
func (r *Registry) Update(ctx context.Context, id string, change live.SubscriptionChange, now time.Time) (live.Connection, error) {
	names := map[string]string{"#pk": attrPK, "#exp": attrExpires}
	values := map[string]types.AttributeValue{":now": epoch(now)}
	cond := "attribute_exists(#pk) AND #exp > :now"
	var update string
	switch {
	case change.Subscribe && change.Repositories == nil:
		update = "SET #all = :all, #g2pk = :wsall, #g2sk = #g1sk"
		names["#all"], names["#g2pk"], names["#g2sk"], names["#g1sk"] = attrAll, attrGSI2PK, attrGSI2SK, attrGSI1SK
		values[":all"], values[":wsall"] = &types.AttributeValueMemberBOOL{Value: true}, str(allGSI2PK)
	case change.Subscribe:
		update, names["#repos"], values[":repos"] = "ADD #repos :repos", attrRepos, &types.AttributeValueMemberSS{Value: change.Repositories}
		// live.SubscriptionChange.Fits: the stored size plus the request's must stay within the limit.
		cond += " AND (attribute_not_exists(#repos) OR size(#repos) <= :room)"
		values[":room"] = &types.AttributeValueMemberN{Value: strconv.Itoa(live.MaxRepositories - len(change.Repositories))}
	case change.Repositories == nil:
		update = "SET #all = :all REMOVE #repos, #g2pk, #g2sk"
		names["#all"], names["#repos"], names["#g2pk"], names["#g2sk"] = attrAll, attrRepos, attrGSI2PK, attrGSI2SK
		values[":all"] = &types.AttributeValueMemberBOOL{Value: false}
	default:
		update, names["#repos"], values[":repos"] = "DELETE #repos :repos", attrRepos, &types.AttributeValueMemberSS{Value: change.Repositories}
	}
	out, err := r.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &r.table, Key: key(id, connSK),
		UpdateExpression: &update, ConditionExpression: &cond,
		ExpressionAttributeNames: names, ExpressionAttributeValues: values,
		// The state before this very update: Apply gives the state it made, which a
		// later update cannot have changed yet.
		ReturnValues: types.ReturnValueAllOld,
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		return live.Connection{}, r.whyRefused(ctx, id, now)
	}
	if err != nil {
		return live.Connection{}, fmt.Errorf("update WebSocket connection %s: %w", id, err)
	}
	old, err := decode(out.Attributes)
	if err != nil {
		return live.Connection{}, err
	}
	c := old
	c.Subscription = change.Apply(old.Subscription)
	touched := change.Repositories
	if touched == nil && !change.Subscribe {
		touched = old.Repositories
	}
	var writes []types.WriteRequest
	for _, repo := range touched {
		if _, subscribed := slices.BinarySearch(c.Repositories, repo); subscribed {
			writes = append(writes, types.WriteRequest{PutRequest: &types.PutRequest{Item: roomItem(c, repo)}})
		} else {
			writes = append(writes, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: key(id, roomSKPrefix+repo)}})
		}
	}
	if err := r.batchWrite(ctx, writes); err != nil {
		return live.Connection{}, fmt.Errorf("index the subscriptions of WebSocket connection %s: %w", id, err)
	}
	return c, nil
}

// whyRefused tells a missing or expired connection from a full subscription.
func (r *Registry) whyRefused(ctx context.Context, id string, now time.Time) error {
	out, err := r.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &r.table, Key: key(id, connSK), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return fmt.Errorf("read WebSocket connection %s: %w", id, err)
	}
	if len(out.Item) == 0 {
		return live.ErrUnknownConnection
	}
	c, err := decode(out.Item)
	if err != nil {
		return err
	}
	if c.Expired(now) {
		return live.ErrUnknownConnection
	}
	return live.ErrTooManyRepositories
}

// Delete implements live.Registry: the connection item and its subscription items.
func (r *Registry) Delete(ctx context.Context, id string) error {
	sks, err := r.partition(ctx, id)
	if err != nil {
		return err
	}
	writes := make([]types.WriteRequest, 0, len(sks))
	for sk := range sks {
		writes = append(writes, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: key(id, sk)}})
	}
	if err := r.batchWrite(ctx, writes); err != nil {
		return fmt.Errorf("delete WebSocket connection %s: %w", id, err)
	}
	return nil
}

// List implements live.Registry: one Query (paginated) of the WSCONNS partition.
func (r *Registry) List(ctx context.Context, now time.Time) ([]live.Connection, error) {
	return r.query(ctx, byTimeIndex, attrGSI1PK, attrGSI1SK, connsGSI1PK, now)
}

// Audience implements live.Registry. A message without a room may be for any connection:
// one Query of WSCONNS. Otherwise one Query of WSALL (byAttr) and one of each room's
// WSROOM#<repository> partition (byTime); the connections found in a room carry that
// repository in their (partial) subscription.
func (r *Registry) Audience(ctx context.Context, rooms []string, now time.Time) ([]live.Connection, error) {
	if slices.Contains(rooms, "") {
		return r.List(ctx, now)
	}
	found, err := r.query(ctx, byAttrIndex, attrGSI2PK, attrGSI2SK, allGSI2PK, now)
	if err != nil {
		return nil, err
	}
	byID := map[string]live.Connection{}
	for _, c := range found {
		byID[c.ID] = c
	}
	for _, room := range rooms {
		repo, _ := strings.CutPrefix(room, live.RoomPrefix)
		members, err := r.query(ctx, byTimeIndex, attrGSI1PK, attrGSI1SK, roomPKPrefix+strings.ToLower(repo), now)
		if err != nil {
			return nil, err
		}
		for _, m := range members {
			if c, ok := byID[m.ID]; ok {
				m.Subscription = live.Subscription{All: c.All, Repositories: merge(c.Repositories, m.Repositories)}
			}
			byID[m.ID] = m
		}
	}
	out := slices.Collect(maps.Values(byID))
	slices.SortFunc(out, func(a, b live.Connection) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func merge(a, b []string) []string {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

// query returns the unexpired records of one index partition.
func (r *Registry) query(ctx context.Context, index, pk, sk, partition string, now time.Time) ([]live.Connection, error) {
	p := dynamodb.NewQueryPaginator(r.db, &dynamodb.QueryInput{
		TableName:                &r.table,
		IndexName:                aws.String(index),
		KeyConditionExpression:   aws.String("#pk = :pk AND #sk > :now"),
		ExpressionAttributeNames: map[string]string{"#pk": pk, "#sk": sk},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":  str(partition),
			":now": str(now.UTC().Format(timeLayout)),
		},
	})
	var conns []live.Connection
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list WebSocket connections of %s: %w", partition, err)
		}
		for _, item := range page.Items {
			c, err := decode(item)
			if err != nil {
				return nil, err
			}
			if !c.Expired(now) { // the key condition keeps the second that is expiring
				conns = append(conns, c)
			}
		}
	}
	return conns, nil
}

// decode reads a connection item, or a subscription item as a connection subscribed to
// its repository.
func decode(item map[string]types.AttributeValue) (live.Connection, error) {
	var c live.Connection
	id, _ := item[attrID].(*types.AttributeValueMemberS)
	connected, _ := item[attrConnected].(*types.AttributeValueMemberS)
	expires, _ := item[attrExpires].(*types.AttributeValueMemberN)
	if id == nil || connected == nil || expires == nil {
		return c, fmt.Errorf("WebSocket connection item %v lacks connectionId, connectedAt or expiresAt", item[attrPK])
	}
	c.ID = id.Value
	var err error
	if c.ConnectedAt, err = time.Parse(timeLayout, connected.Value); err != nil {
		return c, fmt.Errorf("WebSocket connection %s: connectedAt: %w", c.ID, err)
	}
	sec, err := strconv.ParseInt(expires.Value, 10, 64)
	if err != nil {
		return c, fmt.Errorf("WebSocket connection %s: expiresAt: %w", c.ID, err)
	}
	c.ExpiresAt = time.Unix(sec, 0).UTC()
	if role, ok := item[attrRole].(*types.AttributeValueMemberS); ok {
		c.Role = auth.ParseRole(role.Value)
	}
	if all, ok := item[attrAll].(*types.AttributeValueMemberBOOL); ok {
		c.All = all.Value
	}
	if repos, ok := item[attrRepos].(*types.AttributeValueMemberSS); ok && len(repos.Value) > 0 {
		c.Repositories = slices.Sorted(slices.Values(repos.Value)) // a set has no order
	}
	if room, ok := item[attrRoom].(*types.AttributeValueMemberS); ok {
		c.Repositories = []string{room.Value}
	}
	return c, nil
}
