package awsstore

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/runnerhub/webhooks/internal/jobs"
)

// Signal is one message of the demand queue, decoded: exactly one field is set.
type Signal struct {
	Demand  *jobs.Demand
	Prewarm *jobs.Prewarm
}

// Kind is the signal's type, as in its message's "type" field.
func (s Signal) Kind() string {
	switch {
	case s.Demand != nil:
		return SignalDemand
	case s.Prewarm != nil:
		return SignalPrewarm
	}
	return ""
}

// ReadSignal decodes a demand queue message body as Signals writes it. A body that is not
// such a message (not a JSON object, an unknown type, a required field missing) is an
// error that no retry can mend. Fields it does not know are ignored, so that a newer
// sender's messages still read.
func ReadSignal(body []byte) (Signal, error) {
	var probe struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(body, &probe); err != nil {
		return Signal{}, fmt.Errorf("not a signal: %w", err)
	}
	switch probe.Type {
	case SignalDemand:
		var d jobs.Demand
		if err := json.Unmarshal(body, &d); err != nil {
			return Signal{}, fmt.Errorf("demand signal: %w", err)
		}
		if d.Pool == "" || d.JobID <= 0 {
			return Signal{}, errors.New("demand signal without a pool or a job id")
		}
		return Signal{Demand: &d}, nil
	case SignalPrewarm:
		var p jobs.Prewarm
		if err := json.Unmarshal(body, &p); err != nil {
			return Signal{}, fmt.Errorf("prewarm signal: %w", err)
		}
		if len(p.Pools) == 0 {
			return Signal{}, errors.New("prewarm signal without pools")
		}
		return Signal{Prewarm: &p}, nil
	case "":
		return Signal{}, errors.New("not a signal: no type")
	}
	return Signal{}, fmt.Errorf("unknown signal type %q (known: %s, %s)", probe.Type, SignalDemand, SignalPrewarm)
}
