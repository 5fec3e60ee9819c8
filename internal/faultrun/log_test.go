package faultrun

import (
	"fmt"
	"io"
	"log/slog"
)

// slogText logs at INFO and above: the lines that say why a poller stopped
// ("another poller holds the lease", "report sent or being sent by another
// poller") are INFO.
func slogText(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(clipLines{w}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// maxLogLine bounds each line the run keeps: a 20 MB answer logged as it is
// would otherwise hold gigabytes in the run's memory.
const maxLogLine = 16 << 10

// clipLines writes each line (slog writes one per call) cut to maxLogLine.
type clipLines struct{ w io.Writer }

func (c clipLines) Write(p []byte) (int, error) {
	if len(p) <= maxLogLine {
		return c.w.Write(p)
	}
	cut := append(p[:maxLogLine:maxLogLine], fmt.Sprintf("… (line of %d bytes cut by the run)\n", len(p))...)
	if _, err := c.w.Write(cut); err != nil {
		return 0, err
	}
	return len(p), nil
}
