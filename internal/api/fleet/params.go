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

// nameParam reads the {name} path parameter and checks it with validate (a pool's or a
// runner's rules): a bad name is a 400 that says why.
func nameParam(r *http.Request, validate func(string) error) (string, error) {
	name := r.PathValue("name")
	if err := validate(name); err != nil {
		return "", httpjson.BadRequest("invalid_parameter", err.Error())
	}
	return name, nil
}
