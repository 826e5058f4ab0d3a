package embedded_test

import (
	"testing"

	"github.com/runnerhub/webhooks/internal/checkpoint"
	"github.com/runnerhub/webhooks/internal/checkpoint/checkpointtest"
	"github.com/runnerhub/webhooks/internal/testenv"
)

func TestCheckpointsConformance(t *testing.T) {
	checkpointtest.Suite(t, func(t *testing.T) checkpoint.Store { return testenv.Embedded(t).Store() })
}
