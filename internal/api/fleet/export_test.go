package fleet

// RunnerView is a runner as the API answers it, for the tests to decode answers into.
// TestRunnerLifecycle pins its JSON names and values.
type RunnerView = runnerView
