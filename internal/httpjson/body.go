package httpjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/runnerhub/webhooks/internal/jsonerr"
)

// DefaultMaxBody bounds a body when BodyRules.MaxBytes is zero: request bodies of the
// APIs are a few small fields.
const DefaultMaxBody = 16 << 10

// BodyRules says what DecodeBody accepts.
type BodyRules struct {
	// MaxBytes bounds the body (DefaultMaxBody when zero); a longer one is a 413.
	MaxBytes int64
	// Optional allows an empty (or blank) body, which leaves the value as it is.
	Optional bool
	// WrongType describes a field of the wrong type for the message; nil says
	// "<field> must be a <JSON kind>".
	WrongType func(err *json.UnmarshalTypeError) string
}

// DecodeBody reads a JSON object into v. A body must be application/json, one object
// and nothing after it, with no field v lacks: a misspelt field silently ignored would
// do something other than the caller asked. Every failure is a *Problem whose message
// says what is wrong without Go type names.
func DecodeBody(r *http.Request, v any, rules BodyRules) error {
	max := rules.MaxBytes
	if max <= 0 {
		max = DefaultMaxBody
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, max))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return NewProblem(http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("the body exceeds %d bytes", max))
	case err != nil:
		return BadRequest("invalid_body", "the body could not be read")
	case len(bytes.TrimSpace(body)) == 0 && rules.Optional:
		return nil
	case len(bytes.TrimSpace(body)) == 0:
		return BadRequest("invalid_body", "a JSON body is required")
	}
	if mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mediaType != "application/json" {
		return NewProblem(http.StatusUnsupportedMediaType, "unsupported_content_type", "the body must be application/json")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return BadRequest("invalid_body", "expected a JSON object with the documented fields: "+rules.problem(err))
	}
	if dec.More() {
		return BadRequest("invalid_body", "the body must hold one JSON object and nothing after it")
	}
	return nil
}

// problem describes a decoding error without Go type names.
func (rules BodyRules) problem(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" && rules.WrongType != nil {
		return rules.WrongType(typeErr)
	}
	return jsonerr.Describe(err)
}
