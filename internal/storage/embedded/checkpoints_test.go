package embedded_test

import (
	"testing"

	"github.com/runnerhub/webhooks/internal/reconcile"
	"github.com/runnerhub/webhooks/internal/reconcile/reconciletest"
)

func TestCheckpointsConformance(t *testing.T) {
	reconciletest.CheckpointsSuite(t, func(t *testing.T) reconcile.Checkpoints { return open(t).Store() })
}
