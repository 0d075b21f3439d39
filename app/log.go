package app

import (
	"io"
	"log/slog"

	"github.com/mcp-guard/mcp-guard/config"
	"github.com/mcp-guard/mcp-guard/masking"
)

// newLogger returns the process logger: text or JSON on stderr, with every
// server-held secret scrubbed from messages and attributes.
func newLogger(c config.Log, w io.Writer, m *masking.Masker) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if c.Format == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(masking.NewLogHandler(h, m))
}
