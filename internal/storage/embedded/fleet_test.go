package embedded_test

import (
	"testing"

	"github.com/runnerhub/webhooks/internal/jobs/jobstest"
)

func TestFleetConformance(t *testing.T) { jobstest.FleetSuite(t, stores) }
