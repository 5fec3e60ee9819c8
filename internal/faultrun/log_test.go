package faultrun

import (
	"io"
	"log/slog"
)

// slogText logs at WARN and above: the run makes thousands of polls.
func slogText(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
