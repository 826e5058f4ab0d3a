// Package httpjson writes the JSON envelopes every RunnerHub endpoint answers with:
// {"success": true, ...} on success and
// {"success": false, "error": {"code": ..., "message": ...}} on failure.
//
// It also holds the plumbing the management APIs share, so that they answer alike:
// Problem (a failure fit to show the caller), Endpoint (handlers that return their data
// or an error), Query (query parameters, every problem in one 400) and DecodeBody.
package httpjson

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
)

// Write sends v as JSON with the given status.
func Write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	// Answers are JSON, never HTML, and nosniff keeps browsers from guessing otherwise:
	// messages read "<token>", not "\u003ctoken\u003e".
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	// The status line is already out, so an encoding failure (a client gone) has no one
	// left to tell.
	_ = enc.Encode(v)
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

// Success is the success envelope of the management APIs: {"success": true, "data": ...}.
type Success struct {
	Success bool `json:"success"`
	Data    any  `json:"data"`
}

// Problem is an answer other than success: its status, a stable code and a message that
// says what was wrong. The message is shown to the caller as is, so it must never carry
// a store's error (those may name tables, queues or accounts).
type Problem struct {
	Status  int
	Code    string
	Message string
}

// NewProblem returns the Problem answered with status.
func NewProblem(status int, code, message string) *Problem {
	return &Problem{Status: status, Code: code, Message: message}
}

// BadRequest returns a 400 Problem, the answer to most mistakes of the caller.
func BadRequest(code, message string) *Problem {
	return NewProblem(http.StatusBadRequest, code, message)
}

func (p *Problem) Error() string { return p.Code + ": " + p.Message }

// Endpoint adapts f, which returns its status and data or an error, to the envelopes:
// the data goes out in a Success, a *Problem (anywhere in the error's chain) as its
// failure. Any other error is unknown(r, err)'s to answer: what it means (a store down, a
// bug) depends on the API, and so does how it is logged, since it must not be shown.
func Endpoint(unknown func(r *http.Request, err error) *Problem, f func(r *http.Request) (int, any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, data, err := f(r)
		if err != nil {
			var p *Problem
			if !errors.As(err, &p) {
				p = unknown(r, err)
			}
			Error(w, p.Status, p.Code, p.Message)
			return
		}
		Write(w, status, Success{Success: true, Data: data})
	})
}

// Internal is an unknown-error answer for Endpoint: it logs the error to log and answers
// 500 "internal", for APIs where an unexpected error is a fault of the server.
func Internal(log *slog.Logger) func(r *http.Request, err error) *Problem {
	return func(r *http.Request, err error) *Problem {
		log.ErrorContext(r.Context(), "request failed", "path", r.URL.Path, "error", err)
		return NewProblem(http.StatusInternalServerError, "internal", "internal error")
	}
}
