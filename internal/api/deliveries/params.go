package deliveries

import (
	"net/http"
	"regexp"

	"github.com/runnerhub/webhooks/internal/delivery"
	"github.com/runnerhub/webhooks/internal/httpjson"
)

// Shapes of the values parameters carry.
var (
	// owner/name as GitHub allows them: owners of letters, digits and hyphens (at most
	// 39), names of letters, digits, '.', '_' and '-' (at most 100).
	repositoryPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$`)
	// Event and action names are lower-case words with underscores (workflow_job,
	// in_progress), as ingest accepts them.
	namePattern = regexp.MustCompile(`^[a-z_]{1,64}$`)
	// An event id is <hookId>:<deliveryId>: the hook id is a number or "-" for deliveries
	// without one, the delivery id what ingest accepts in X-GitHub-Delivery.
	idPattern = regexp.MustCompile(`^(-|[0-9]{1,20}):([A-Za-z0-9._-]{1,128})$`)
)

// eventID is the API's id of a delivery: its key in one path segment.
func eventID(k delivery.Key) string { return k.HookID + ":" + k.DeliveryID }

// parseEventID reads the {id} path parameter.
func parseEventID(r *http.Request) (delivery.Key, error) {
	m := idPattern.FindStringSubmatch(r.PathValue("id"))
	if m == nil {
		return delivery.Key{}, httpjson.BadRequest("invalid_parameter",
			`id must be "<hookId>:<deliveryId>" as listed by GET /api/webhooks/events (hookId a number or "-", deliveryId 1-128 letters, digits, '.', '_' or '-')`)
	}
	return delivery.Key{HookID: m[1], DeliveryID: m[2]}, nil
}

// maxBody bounds request bodies: they are a few small fields.
const maxBody = 16 << 10

// decodeBody reads an optional JSON object into v: an empty body leaves v as it is.
func decodeBody(r *http.Request, v any) error {
	return httpjson.DecodeBody(r, v, httpjson.BodyRules{MaxBytes: maxBody, Optional: true})
}
