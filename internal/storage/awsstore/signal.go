package awsstore

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/runnerhub/webhooks/internal/jobs"
)

// Signal is one message of the demand queue: exactly one field is set. Its JSON is the
// signal's with the type added ("type": SignalDemand, SignalPrewarm or SignalRetire).
type Signal struct {
	Demand  *jobs.Demand
	Prewarm *jobs.Prewarm
	Retire  *jobs.Retire
}

// Kind is the signal's type, as in its message's "type" field.
func (s Signal) Kind() string {
	switch {
	case s.Demand != nil:
		return SignalDemand
	case s.Prewarm != nil:
		return SignalPrewarm
	case s.Retire != nil:
		return SignalRetire
	}
	return ""
}

// MarshalJSON writes the message body: the signal's fields next to its type.
func (s Signal) MarshalJSON() ([]byte, error) {
	// Embedding promotes the signal's fields next to the type in the JSON object.
	switch {
	case s.Demand != nil:
		return json.Marshal(struct {
			Type string `json:"type"`
			jobs.Demand
		}{SignalDemand, *s.Demand})
	case s.Prewarm != nil:
		return json.Marshal(struct {
			Type string `json:"type"`
			jobs.Prewarm
		}{SignalPrewarm, *s.Prewarm})
	case s.Retire != nil:
		return json.Marshal(struct {
			Type string `json:"type"`
			jobs.Retire
		}{SignalRetire, *s.Retire})
	}
	return nil, errors.New("an empty signal")
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
	var (
		sig     Signal
		into    any
		missing func() bool
		needs   string
	)
	switch probe.Type {
	case SignalDemand:
		sig.Demand = new(jobs.Demand)
		into, needs = sig.Demand, "a pool and a job id"
		missing = func() bool { return sig.Demand.Pool == "" || sig.Demand.JobID <= 0 }
	case SignalPrewarm:
		sig.Prewarm = new(jobs.Prewarm)
		into, needs = sig.Prewarm, "pools"
		missing = func() bool { return len(sig.Prewarm.Pools) == 0 }
	case SignalRetire:
		sig.Retire = new(jobs.Retire)
		into, needs = sig.Retire, "a pool and a runner"
		missing = func() bool { return sig.Retire.Pool == "" || sig.Retire.Runner == "" }
	case "":
		return Signal{}, errors.New("not a signal: no type")
	default:
		return Signal{}, fmt.Errorf("unknown signal type %q (known: %s, %s, %s)", probe.Type, SignalDemand, SignalPrewarm, SignalRetire)
	}
	if err := json.Unmarshal(body, into); err != nil {
		return Signal{}, fmt.Errorf("%s signal: %w", probe.Type, err)
	}
	if missing() {
		return Signal{}, fmt.Errorf("%s signal without %s", probe.Type, needs)
	}
	return sig, nil
}
