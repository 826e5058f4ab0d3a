package awslive

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/runnerhub/webhooks/internal/auth"
	"github.com/runnerhub/webhooks/internal/live"
)

// One connection is one item in the events table:
//
//	pk            WSCONN#<connectionId>
//	sk            WSCONN
//	gsi1pk        WSCONNS (every connection: the sparse byTime partition broadcasts query)
//	gsi1sk        <expiresAt, fixed-width UTC>#<connectionId>
//	connectionId  the id again, so the index query need not parse pk
//	connectedAt   RFC 3339, UTC, milliseconds
//	expiresAt     epoch seconds: the table's TTL attribute
//	role          S, the credentials' role: "read" or "admin"
//	all           BOOL, subscribed to everything
//	repos         SS, lower-cased repository full names (absent when none)
//
// List is one Query of the WSCONNS partition with gsi1sk after now: expired records are
// left out by the key condition itself, before DynamoDB's TTL (which may take days)
// deletes them. One partition holds every connection; dashboards number in the
// hundreds, far below a partition's limits.
const (
	connPKPrefix  = "WSCONN#"
	connSK        = "WSCONN"
	connsGSI1PK   = "WSCONNS"
	indexName     = "byTime"
	attrPK        = "pk"
	attrSK        = "sk"
	attrGSI1PK    = "gsi1pk"
	attrGSI1SK    = "gsi1sk"
	attrID        = "connectionId"
	attrConnected = "connectedAt"
	attrExpires   = "expiresAt"
	attrRole      = "role"
	attrAll       = "all"
	attrRepos     = "repos"
	// timeLayout has a fixed width so that gsi1sk sorts by time as a string.
	timeLayout = "2006-01-02T15:04:05.000Z07:00"
)

// Registry is the DynamoDB live.Registry.
type Registry struct {
	db    *dynamodb.Client
	table string
}

var _ live.Registry = (*Registry)(nil)

// NewRegistry returns a registry in table (the events table).
func NewRegistry(db *dynamodb.Client, table string) *Registry { return &Registry{db: db, table: table} }

func key(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPK: &types.AttributeValueMemberS{Value: connPKPrefix + id},
		attrSK: &types.AttributeValueMemberS{Value: connSK},
	}
}

func str(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func epoch(t time.Time) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(t.Unix(), 10)}
}

// Put implements live.Registry.
func (r *Registry) Put(ctx context.Context, c live.Connection) error {
	expires := c.ExpiresAt.UTC().Truncate(time.Second) // as the TTL attribute holds it
	item := key(c.ID)
	item[attrGSI1PK] = str(connsGSI1PK)
	item[attrGSI1SK] = str(expires.Format(timeLayout) + "#" + c.ID)
	item[attrID] = str(c.ID)
	item[attrConnected] = str(c.ConnectedAt.UTC().Format(timeLayout))
	item[attrExpires] = epoch(expires)
	item[attrRole] = str(c.Role.String())
	item[attrAll] = &types.AttributeValueMemberBOOL{Value: c.All}
	if len(c.Repositories) > 0 {
		item[attrRepos] = &types.AttributeValueMemberSS{Value: c.Repositories}
	}
	if _, err := r.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &r.table, Item: item}); err != nil {
		return fmt.Errorf("record WebSocket connection %s: %w", c.ID, err)
	}
	return nil
}

// Update implements live.Registry with one conditional UpdateItem: ADD and DELETE on a
// string set are atomic, so concurrent requests of one connection (separate Lambda
// invocations) cannot lose each other's repositories.
func (r *Registry) Update(ctx context.Context, id string, change live.SubscriptionChange, now time.Time) (live.Connection, error) {
	names := map[string]string{"#pk": attrPK, "#exp": attrExpires}
	values := map[string]types.AttributeValue{":now": epoch(now)}
	cond := "attribute_exists(#pk) AND #exp > :now"
	var update string
	switch {
	case change.Subscribe && change.Repositories == nil:
		update, names["#all"], values[":all"] = "SET #all = :all", attrAll, &types.AttributeValueMemberBOOL{Value: true}
	case change.Subscribe:
		update, names["#repos"], values[":repos"] = "ADD #repos :repos", attrRepos, &types.AttributeValueMemberSS{Value: change.Repositories}
		// live.SubscriptionChange.Fits: the stored size plus the request's must stay within the limit.
		cond += " AND (attribute_not_exists(#repos) OR size(#repos) <= :room)"
		values[":room"] = &types.AttributeValueMemberN{Value: strconv.Itoa(live.MaxRepositories - len(change.Repositories))}
	case change.Repositories == nil:
		update, names["#all"], names["#repos"] = "SET #all = :all REMOVE #repos", attrAll, attrRepos
		values[":all"] = &types.AttributeValueMemberBOOL{Value: false}
	default:
		update, names["#repos"], values[":repos"] = "DELETE #repos :repos", attrRepos, &types.AttributeValueMemberSS{Value: change.Repositories}
	}
	out, err := r.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &r.table, Key: key(id),
		UpdateExpression: &update, ConditionExpression: &cond,
		ExpressionAttributeNames: names, ExpressionAttributeValues: values,
		ReturnValues: types.ReturnValueAllNew,
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		return live.Connection{}, r.whyRefused(ctx, id, now)
	}
	if err != nil {
		return live.Connection{}, fmt.Errorf("update WebSocket connection %s: %w", id, err)
	}
	return decode(out.Attributes)
}

// whyRefused tells a missing or expired connection from a full subscription.
func (r *Registry) whyRefused(ctx context.Context, id string, now time.Time) error {
	out, err := r.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &r.table, Key: key(id), ConsistentRead: aws.Bool(true)})
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

// Delete implements live.Registry.
func (r *Registry) Delete(ctx context.Context, id string) error {
	if _, err := r.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &r.table, Key: key(id)}); err != nil {
		return fmt.Errorf("delete WebSocket connection %s: %w", id, err)
	}
	return nil
}

// List implements live.Registry: one Query (paginated) of the WSCONNS partition.
func (r *Registry) List(ctx context.Context, now time.Time) ([]live.Connection, error) {
	p := dynamodb.NewQueryPaginator(r.db, &dynamodb.QueryInput{
		TableName:                &r.table,
		IndexName:                aws.String(indexName),
		KeyConditionExpression:   aws.String("#pk = :pk AND #sk > :now"),
		ExpressionAttributeNames: map[string]string{"#pk": attrGSI1PK, "#sk": attrGSI1SK},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":  str(connsGSI1PK),
			":now": str(now.UTC().Format(timeLayout)),
		},
	})
	var conns []live.Connection
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list WebSocket connections: %w", err)
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
	return c, nil
}
