package awsstore

import (
	"testing"

	"github.com/runnerhub/webhooks/internal/reconcile"
	"github.com/runnerhub/webhooks/internal/reconcile/reconciletest"
	"github.com/runnerhub/webhooks/internal/testenv"
)

func TestCheckpointsConformance(t *testing.T) {
	t.Parallel()
	env := testenv.SharedAWS(t)
	store := newStore(env, newDynamoDB(env))
	reconciletest.CheckpointsSuite(t, func(*testing.T) reconcile.Checkpoints { return store })
}
