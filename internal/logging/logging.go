// Package logging builds the process logger: JSON lines in Lambda (CloudWatch Logs
// Insights parses them), human-readable text on a terminal.
package logging

import (
	"io"
	"log/slog"
)

// New returns a logger writing to w at level, as JSON when json is set.
func New(w io.Writer, json bool, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if json {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
