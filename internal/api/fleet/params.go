package fleet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// defaultLimit is a listing's page size when the request names none.
const defaultLimit = 50

// query reads query parameters, collecting every problem so that one 400 names them all.
// Parameters it is not asked about are ignored.
type query struct {
	values   url.Values
	problems []string
}

func newQuery(r *http.Request) *query { return &query{values: r.URL.Query()} }

func (q *query) fail(format string, args ...any) {
	q.problems = append(q.problems, fmt.Sprintf(format, args...))
}

// get returns a parameter's value ("" when absent). A parameter given twice is a
// problem: which one was meant?
func (q *query) get(name string) string {
	vs := q.values[name]
	if len(vs) > 1 {
		q.fail("%s is given %d times; give it once", name, len(vs))
		return ""
	}
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// check returns a parameter's value if validate accepts it ("" when absent).
func (q *query) check(name string, validate func(string) error) string {
	v := q.get(name)
	if v == "" {
		return ""
	}
	if err := validate(v); err != nil {
		q.fail("%v", err) // the validators' messages name what they check
		return ""
	}
	return v
}

// limit returns the page size, defaultLimit when absent.
func (q *query) limit(max int) int {
	v := q.get("limit")
	if v == "" {
		return defaultLimit
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		q.fail("limit must be a whole number from 1 to %d, not %q", max, clip(v))
		return defaultLimit
	}
	return n
}

// err is the 400 naming every problem, or nil.
func (q *query) err() error {
	if len(q.problems) == 0 {
		return nil
	}
	return fail(http.StatusBadRequest, "invalid_parameter", strings.Join(q.problems, "; "))
}

// clip keeps echoed values short.
func clip(s string) string {
	if len(s) <= 64 {
		return s
	}
	return s[:64] + "…"
}

// maxBody bounds request bodies: a few small fields.
const maxBody = 64 << 10

// decodeBody reads a JSON object into v. Bodies must be application/json, one object,
// with no field v lacks; an empty body is allowed only if emptyOK.
func decodeBody(r *http.Request, v any, emptyOK bool) error {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return fail(http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("the body exceeds %d bytes", maxBody))
	case err != nil:
		return fail(http.StatusBadRequest, "invalid_body", "the body could not be read")
	case len(bytes.TrimSpace(body)) == 0 && emptyOK:
		return nil
	case len(bytes.TrimSpace(body)) == 0:
		return fail(http.StatusBadRequest, "invalid_body", "a JSON body is required")
	}
	if mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mediaType != "application/json" {
		return fail(http.StatusUnsupportedMediaType, "unsupported_content_type", "the body must be application/json")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fail(http.StatusBadRequest, "invalid_body", "the body must be a JSON object with the documented fields: "+jsonProblem(err))
	}
	if dec.More() {
		return fail(http.StatusBadRequest, "invalid_body", "the body must hold one JSON object and nothing after it")
	}
	return nil
}

// jsonProblem says what is wrong with a body without Go type names.
func jsonProblem(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return typeErr.Field + " has the wrong type (" + typeErr.Value + ")"
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
