package delivery

import "context"

// Depths is how many deliveries wait on the processing queue and how many were
// dead-lettered after failing repeatedly. Remote queues report approximate numbers.
type Depths struct {
	Queued int64 // not yet finished: waiting for the processor or being processed
	Dead   int64 // in the dead-letter queue
}

// DeadLetters is the operator's side of the processing queue: how deep it and its
// dead-letter queue are, and moving dead-lettered deliveries back (a redrive) once
// whatever made them fail is fixed.
type DeadLetters interface {
	Depths(ctx context.Context) (Depths, error)
	// Redrive moves every dead-lettered delivery back onto the processing queue and
	// returns how many it moved. Moving one twice is harmless: the processor skips
	// deliveries it has finished.
	Redrive(ctx context.Context) (int, error)
}

// DepthGauges samples d for the webhook_queue_depth gauges ("events": Queued, "dlq":
// Dead), so that /metrics reports the same depths as the health endpoint.
func DepthGauges(d DeadLetters) func(context.Context) (map[string]int, error) {
	return func(ctx context.Context) (map[string]int, error) {
		depths, err := d.Depths(ctx)
		if err != nil {
			return nil, err
		}
		return map[string]int{"events": int(depths.Queued), "dlq": int(depths.Dead)}, nil
	}
}
