package awsstore

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/runnerhub/webhooks/internal/checkpoint"
)

// Reconciler checkpoints are one item each in the events table:
//
//	pk    CHECKPOINT#<name>
//	sk    CHECKPOINT
//	data  the document (B)
const (
	checkpointPKPrefix = "CHECKPOINT#"
	checkpointSK       = "CHECKPOINT"
	attrCheckpointData = "data"
)

var _ checkpoint.Store = (*Store)(nil)

func checkpointKey(name string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPK: &types.AttributeValueMemberS{Value: checkpointPKPrefix + name},
		attrSK: &types.AttributeValueMemberS{Value: checkpointSK},
	}
}

// Checkpoint implements checkpoint.Store (one strongly consistent GetItem).
func (s *Store) Checkpoint(ctx context.Context, name string) ([]byte, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: checkpointKey(name), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("read checkpoint %s: %w", name, err)
	}
	data, ok := out.Item[attrCheckpointData].(*types.AttributeValueMemberB)
	if !ok {
		return nil, nil
	}
	return data.Value, nil
}

// PutCheckpoint implements checkpoint.Store (one PutItem).
func (s *Store) PutCheckpoint(ctx context.Context, name string, data []byte) error {
	item := checkpointKey(name)
	item[attrCheckpointData] = &types.AttributeValueMemberB{Value: data}
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: item}); err != nil {
		return fmt.Errorf("store checkpoint %s: %w", name, err)
	}
	return nil
}
