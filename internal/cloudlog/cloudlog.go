// Package cloudlog sets up log/slog for where dsexport runs: JSON that Cloud
// Logging understands (severity, message, the request's trace) on App Engine
// and Cloud Run, readable text on a terminal.
package cloudlog

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
)

// traceKey is the context key of the request's trace.
type traceKey struct{}

type trace struct {
	id, span string
	sampled  bool
}

// New returns a JSON logger for Cloud Logging when cloud is set, a text
// logger otherwise. project is the Google Cloud project that owns the
// traces, needed to name them the way Cloud Logging links them. Either
// bounds every line (MaxValue, MaxAttrs), whatever is logged.
func New(w io.Writer, cloud bool, project string) *slog.Logger {
	if !cloud {
		return slog.New(&boundHandler{h: slog.NewTextHandler(w, nil)})
	}
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{ReplaceAttr: replace})
	return slog.New(&boundHandler{h: &traceHandler{Handler: h, project: project}})
}

// replace renames slog's level and message to Cloud Logging's severity and
// message, with its severity names.
func replace(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.LevelKey:
		a.Key = "severity"
		lv, _ := a.Value.Any().(slog.Level)
		switch {
		case lv >= slog.LevelError:
			a.Value = slog.StringValue("ERROR")
		case lv >= slog.LevelWarn:
			a.Value = slog.StringValue("WARNING")
		case lv >= slog.LevelInfo:
			a.Value = slog.StringValue("INFO")
		default:
			a.Value = slog.StringValue("DEBUG")
		}
	case slog.MessageKey:
		a.Key = "message"
	}
	return a
}

// traceHandler adds the trace of the request a record was logged under, so
// Cloud Logging groups a request's lines with it.
type traceHandler struct {
	slog.Handler
	project string
}

func (h *traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if t, ok := ctx.Value(traceKey{}).(trace); ok {
		r = r.Clone()
		r.AddAttrs(slog.String("logging.googleapis.com/trace", "projects/"+h.project+"/traces/"+t.id))
		if span, err := strconv.ParseUint(t.span, 10, 64); err == nil {
			// The header carries the span in decimal; Cloud Logging wants 16 hex digits.
			r.AddAttrs(slog.String("logging.googleapis.com/spanId", fmt.Sprintf("%016x", span)))
		}
		r.AddAttrs(slog.Bool("logging.googleapis.com/trace_sampled", t.sampled))
	}
	return h.Handler.Handle(ctx, r)
}

func (h *traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &traceHandler{Handler: h.Handler.WithAttrs(attrs), project: h.project}
}

func (h *traceHandler) WithGroup(name string) slog.Handler {
	return &traceHandler{Handler: h.Handler.WithGroup(name), project: h.project}
}

// traceRE parses X-Cloud-Trace-Context: TRACE_ID[/SPAN_ID][;o=OPTIONS].
var traceRE = regexp.MustCompile(`^([0-9a-fA-F]{32})(?:/([0-9]{1,20}))?(?:;o=([01]))?$`)

// WithTrace returns ctx carrying the trace named by an X-Cloud-Trace-Context
// header value; a malformed value is ignored.
func WithTrace(ctx context.Context, header string) context.Context {
	m := traceRE.FindStringSubmatch(header)
	if m == nil {
		return ctx
	}
	return context.WithValue(ctx, traceKey{}, trace{id: m[1], span: m[2], sampled: m[3] == "1"})
}

// Middleware puts each request's trace into its context.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := r.Header.Get("X-Cloud-Trace-Context"); h != "" {
			r = r.WithContext(WithTrace(r.Context(), h))
		}
		next.ServeHTTP(w, r)
	})
}
