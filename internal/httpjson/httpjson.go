// Package httpjson writes the JSON envelopes every RunnerHub endpoint answers with:
// {"success": true, ...} on success and
// {"success": false, "error": {"code": ..., "message": ...}} on failure.
package httpjson

import (
	"encoding/json"
	"net/http"
)

// Write sends v as JSON with the given status.
func Write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	// The status line is already out, so an encoding failure (a client gone) has no one
	// left to tell.
	_ = json.NewEncoder(w).Encode(v)
}

// ErrorBody is the "error" member of a failure envelope.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Failure is the failure envelope.
type Failure struct {
	Success bool      `json:"success"`
	Error   ErrorBody `json:"error"`
}

// Error sends a failure envelope.
func Error(w http.ResponseWriter, status int, code, message string) {
	Write(w, status, Failure{Error: ErrorBody{Code: code, Message: message}})
}
