package deliveries

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/runnerhub/webhooks/internal/delivery"
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
		return delivery.Key{}, badRequest("invalid_parameter",
			`id must be "<hookId>:<deliveryId>" as listed by GET /api/webhooks/events (hookId a number or "-", deliveryId 1-128 letters, digits, '.', '_' or '-')`)
	}
	return delivery.Key{HookID: m[1], DeliveryID: m[2]}, nil
}

// params reads query parameters and collects every problem, so that one 400 names all
// of them. Parameters it is not asked about are ignored.
type params struct {
	values   url.Values
	problems []string
}

func newParams(r *http.Request) *params { return &params{values: r.URL.Query()} }

func (p *params) fail(format string, args ...any) {
	p.problems = append(p.problems, fmt.Sprintf(format, args...))
}

// get returns the parameter's value and whether it was given; a parameter given twice is
// a problem (which one was meant?).
func (p *params) get(name string) (string, bool) {
	vs, ok := p.values[name]
	switch {
	case !ok:
		return "", false
	case len(vs) > 1:
		p.fail("%s is given %d times; give it once", name, len(vs))
		return "", false
	}
	return vs[0], true
}

// has reports whether the parameter was given at all.
func (p *params) has(name string) bool { _, ok := p.values[name]; return ok }

// integer returns the parameter as an integer in [lo, hi], def when absent.
func (p *params) integer(name string, def, lo, hi int) int {
	v, ok := p.get(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		p.fail("%s must be an integer from %d to %d, not %q", name, lo, hi, clip(v))
		return def
	}
	return n
}

// boolean returns the parameter as true or false, nil when absent.
func (p *params) boolean(name string) *bool {
	v, ok := p.get(name)
	if !ok {
		return nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil || (v != "true" && v != "false") {
		p.fail("%s must be true or false, not %q", name, clip(v))
		return nil
	}
	return &b
}

// matching returns the parameter when it matches pattern ("" when absent); what says
// what it must be.
func (p *params) matching(name string, pattern *regexp.Regexp, what string) string {
	v, ok := p.get(name)
	if !ok {
		return ""
	}
	if !pattern.MatchString(v) {
		p.fail("%s must be %s, not %q", name, what, clip(v))
		return ""
	}
	return v
}

// timestamp returns the parameter as an RFC 3339 time, zero when absent.
func (p *params) timestamp(name string) time.Time {
	v, ok := p.get(name)
	if !ok {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		p.fail("%s must be an RFC 3339 time such as 2024-05-01T12:00:00Z, not %q", name, clip(v))
		return time.Time{}
	}
	return t
}

// err returns the 400 naming every problem, or nil.
func (p *params) err() error {
	if len(p.problems) == 0 {
		return nil
	}
	return badRequest("invalid_parameter", strings.Join(p.problems, "; "))
}

// clip keeps echoed values short: the message is for a person, not a mirror.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}

// maxBody bounds request bodies: they are a few small fields.
const maxBody = 16 << 10

// decodeBody reads an optional JSON object into v: an empty body leaves v as it is;
// anything else must be application/json, one object, with no field v does not have.
func decodeBody(r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return &apiError{status: http.StatusRequestEntityTooLarge, code: "body_too_large", message: fmt.Sprintf("the body exceeds %d bytes", maxBody)}
	case err != nil:
		return badRequest("invalid_body", "the body could not be read")
	case len(bytes.TrimSpace(body)) == 0:
		return nil
	}
	if mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mediaType != "application/json" {
		return &apiError{status: http.StatusUnsupportedMediaType, code: "unsupported_content_type", message: "the body must be application/json"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("invalid_body", "the body must be a JSON object with the documented fields: "+jsonProblem(err))
	}
	if dec.More() {
		return badRequest("invalid_body", "the body must hold one JSON object and nothing after it")
	}
	return nil
}

// jsonProblem describes a decoding error without Go type names.
func jsonProblem(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return fmt.Sprintf("%s must be a %s", typeErr.Field, jsonKind(typeErr.Type.Kind().String()))
	case errors.As(err, &typeErr):
		return "the body is not a JSON object"
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("malformed JSON at byte %d", syntaxErr.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends early"
	}
	// encoding/json reports unknown fields as `json: unknown field "name"`.
	return strings.TrimPrefix(err.Error(), "json: ")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "struct", "map":
		return "object"
	case "slice", "array":
		return "array"
	}
	return "number"
}
