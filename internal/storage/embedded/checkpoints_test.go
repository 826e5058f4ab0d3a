package embedded_test

import (
	"testing"

	"github.com/runnerhub/webhooks/internal/checkpoint"
	"github.com/runnerhub/webhooks/internal/checkpoint/checkpointtest"
)

func TestCheckpointsConformance(t *testing.T) {
	checkpointtest.Suite(t, func(t *testing.T) checkpoint.Store { return open(t).Store() })
}
