package fleet

import (
	"encoding/json"
	"net/http"

	"github.com/runnerhub/webhooks/internal/httpjson"
)

// defaultLimit is a listing's page size when the request names none.
const defaultLimit = 50

// maxBody bounds request bodies: a few small fields.
const maxBody = 64 << 10

// decodeBody reads a JSON object into v; an empty body is allowed only if emptyOK.
func decodeBody(r *http.Request, v any, emptyOK bool) error {
	return httpjson.DecodeBody(r, v, httpjson.BodyRules{MaxBytes: maxBody, Optional: emptyOK, WrongType: wrongType})
}

// wrongType names the field and the JSON value it got.
func wrongType(err *json.UnmarshalTypeError) string {
	return err.Field + " has the wrong type (" + err.Value + ")"
}
