package live

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/runnerhub/webhooks/internal/jsonerr"
)

// MaxRequestBytes bounds a client message (API Gateway's frame size, 32 KB).
const MaxRequestBytes = 32 << 10

// Client actions.
const (
	actionSubscribe   = "subscribe"
	actionUnsubscribe = "unsubscribe"
	actionPing        = "ping"
)

// Error codes of "error" events.
const (
	codeBadMessage        = "bad_message"
	codeUnknownConnection = "unknown_connection"
	codeUnavailable       = "unavailable"
)

// request is a parsed client message.
type request struct {
	action string
	// repositories is normalised; nil means everything.
	repositories []string
}

// fullName is GitHub's owner/name: letters, digits, '-', '_' and '.'.
var fullName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$`)

// badRequest is a client mistake, answered with an error event.
type badRequest string

func (e badRequest) Error() string { return string(e) }

// parseRequest reads one client message. Unknown fields are refused, so a typo such as
// "repository" is reported instead of silently meaning "everything".
func parseRequest(data []byte) (request, error) {
	if len(data) > MaxRequestBytes {
		return request{}, badRequest(fmt.Sprintf("message of %d bytes exceeds %d", len(data), MaxRequestBytes))
	}
	var raw struct {
		Action       string    `json:"action"`
		Repositories *[]string `json:"repositories"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return request{}, badRequest(`expected a JSON object {"action": "subscribe" | "unsubscribe" | "ping", "repositories": [...]}: ` + jsonerr.Describe(err))
	}
	if dec.More() {
		return request{}, badRequest("one JSON object per message")
	}
	r := request{action: raw.Action}
	switch raw.Action {
	case actionSubscribe, actionUnsubscribe:
	case actionPing:
		if raw.Repositories != nil {
			return request{}, badRequest("ping takes no repositories")
		}
		return r, nil
	case "":
		return request{}, badRequest(`"action" is missing`)
	default:
		return request{}, badRequest(fmt.Sprintf("unknown action %q: want subscribe, unsubscribe or ping", raw.Action))
	}
	if raw.Repositories == nil {
		return r, nil // everything
	}
	var err error
	r.repositories, err = normalise(*raw.Repositories)
	return r, err
}

// normalise validates repository full names and returns them lower-cased (GitHub
// compares them case-insensitively), sorted and unique; nil stays nil (everything).
func normalise(repositories []string) ([]string, error) {
	switch {
	case repositories == nil:
		return nil, nil
	case len(repositories) == 0:
		// An empty list is most likely a client's bug; leaving it out means everything.
		return nil, badRequest(`"repositories" is empty: leave it out to mean every repository`)
	case len(repositories) > MaxRepositories:
		return nil, badRequest(fmt.Sprintf("at most %d repositories", MaxRepositories))
	}
	out := make([]string, 0, len(repositories))
	for _, name := range repositories {
		if !fullName.MatchString(name) {
			return nil, badRequest(fmt.Sprintf("%q is not a repository full name (owner/name)", name))
		}
		out = append(out, strings.ToLower(name))
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
