// Package jsonerr says what is wrong with JSON that encoding/json refused, in the terms
// of whoever wrote it: no Go type names, and no "invalid character 'o' in literal null"
// for a body that is simply not JSON. The API's bodies, the WebSocket messages and the
// pools configuration all describe their decoding errors with it.
package jsonerr

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Describe describes a decoding error of encoding/json.
func Describe(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return fmt.Sprintf("%s must be a %s, not a JSON %s", typeErr.Field, Kind(typeErr.Type.Kind().String()), typeErr.Value)
	case errors.As(err, &typeErr):
		return fmt.Sprintf("got a JSON %s", typeErr.Value)
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("not JSON (malformed at byte %d)", syntaxErr.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends early"
	}
	// encoding/json reports unknown fields as `json: unknown field "name"`.
	return strings.TrimPrefix(err.Error(), "json: ")
}

// Kind names a Go kind as the JSON kind a writer would use.
func Kind(goKind string) string {
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
