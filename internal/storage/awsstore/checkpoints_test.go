package awsstore

import (
	"testing"

	"github.com/runnerhub/webhooks/internal/checkpoint"
	"github.com/runnerhub/webhooks/internal/checkpoint/checkpointtest"
	"github.com/runnerhub/webhooks/internal/testenv"
)

func TestCheckpointsConformance(t *testing.T) {
	t.Parallel()
	env := testenv.SharedAWS(t)
	store := newStore(env, newDynamoDB(env))
	checkpointtest.Suite(t, func(*testing.T) checkpoint.Store { return store })
}
