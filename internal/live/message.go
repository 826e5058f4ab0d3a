package live

import (
	"encoding/json"
	"fmt"
	"time"
)

// MaxMessageBytes keeps every message under API Gateway's WebSocket limit (128 KB per
// message, and PostToConnection's Data); the local hub applies the same limit.
const MaxMessageBytes = 128_000

// Message is one server message: the envelope every client receives.
type Message struct {
	Event string `json:"event"`
	// Room is "repo:<full_name>" for a repository's messages, empty for global ones.
	Room string `json:"room,omitempty"`
	Data any    `json:"data,omitempty"`
	// At is when the change was committed (or the reply made), UTC.
	At time.Time `json:"at"`
	// Brief replaces Data when the message would exceed MaxMessageBytes: the fields that
	// identify what changed, "trimmed": true and a link to the full record in the API.
	Brief any `json:"-"`
}

// Encode returns the message as sent, trimmed to its Brief when it would exceed
// MaxMessageBytes. It fails only when even the brief form is too large.
func Encode(m Message) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil || len(b) <= MaxMessageBytes {
		return b, err
	}
	full := len(b)
	if m.Brief != nil {
		m.Data = m.Brief
		if b, err = json.Marshal(m); err != nil || len(b) <= MaxMessageBytes {
			return b, err
		}
	}
	return nil, fmt.Errorf("%s message of %d bytes exceeds %d even trimmed", m.Event, full, MaxMessageBytes)
}

// Trimmed marks a brief: what a client receives instead of data that was too large.
type Trimmed struct {
	Trimmed bool `json:"trimmed"`
	// Href is where the API serves the full record.
	Href string `json:"href,omitempty"`
}

func trimmed(href string) Trimmed { return Trimmed{Trimmed: true, Href: href} }

// errorData is the data of an "error" event.
type errorData struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// subscriptionData is the data of "subscribed" and "unsubscribed" events: the
// connection's whole subscription after the change (and its id, so that a client can
// quote it when asking about its connection), and the role its credentials gave it
// ("read" or "admin").
type subscriptionData struct {
	ConnectionID string   `json:"connectionId"`
	Role         string   `json:"role"`
	All          bool     `json:"all"`
	Repositories []string `json:"repositories"`
}
