package cloudlog

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// The bounds of a log line. Cloud Logging refuses an entry over 256 KB, and
// a line can quote anything from outside: a request path, an API's answer.
// Each string in a line is cut to MaxValue bytes as written, escapes
// counted (a control byte takes six, \u0001), saying the cut; a line keeps
// MaxAttrs attributes and counts the rest in "attrs_dropped". So a line
// holds at most (MaxAttrs+1)·MaxValue bytes of values and messages, 132 KiB,
// besides its keys (maxKey each) and a few fixed fields.
const (
	MaxValue = 4096
	MaxAttrs = 32
	maxKey   = 128
)

// boundHandler bounds every record before its handler writes it: the
// message, each attribute's key and string value, an error's text, and any
// other value whose JSON would be longer than MaxValue.
type boundHandler struct {
	h slog.Handler
	// used and dropped count the attributes added by WithAttrs: kept, and
	// beyond MaxAttrs.
	used, dropped int
}

func (h *boundHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.h.Enabled(ctx, l) }

func (h *boundHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, bound(r.Message, MaxValue), r.PC)
	attrs := make([]slog.Attr, 0, r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool {
		attrs = append(attrs, a)
		return true
	})
	left, dropped := MaxAttrs-h.used, h.dropped
	out.AddAttrs(boundAttrs(attrs, &left, &dropped)...)
	if dropped > 0 {
		out.AddAttrs(slog.Int("attrs_dropped", dropped))
	}
	return h.h.Handle(ctx, out)
}

func (h *boundHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	left, dropped := MaxAttrs-h.used, h.dropped
	kept := boundAttrs(attrs, &left, &dropped)
	return &boundHandler{h: h.h.WithAttrs(kept), used: MaxAttrs - left, dropped: dropped}
}

func (h *boundHandler) WithGroup(name string) slog.Handler {
	return &boundHandler{h: h.h.WithGroup(bound(name, maxKey)), used: h.used, dropped: h.dropped}
}

// boundAttrs bounds attrs, keeping at most *left of them (a group's members
// count one each) and counting in *dropped those it does not keep.
func boundAttrs(attrs []slog.Attr, left, dropped *int) []slog.Attr {
	out := make([]slog.Attr, 0, len(attrs))
	for _, a := range attrs {
		v := a.Value.Resolve()
		if v.Kind() == slog.KindGroup {
			if g := boundAttrs(v.Group(), left, dropped); len(g) > 0 {
				out = append(out, slog.Attr{Key: bound(a.Key, maxKey), Value: slog.GroupValue(g...)})
			}
			continue
		}
		if *left <= 0 {
			*dropped++
			continue
		}
		*left--
		out = append(out, slog.Attr{Key: bound(a.Key, maxKey), Value: boundValue(v)})
	}
	return out
}

// boundValue is v within MaxValue bytes. An error is logged as its text,
// as slog's handlers write it; a value of another kind is replaced by its
// JSON (or %+v), cut, only when that is longer than MaxValue.
func boundValue(v slog.Value) slog.Value {
	switch v.Kind() {
	case slog.KindString:
		return slog.StringValue(bound(v.String(), MaxValue))
	case slog.KindAny:
	default:
		return v // numbers, times, durations, booleans: short
	}
	if err, ok := v.Any().(error); ok {
		return slog.StringValue(bound(err.Error(), MaxValue))
	}
	text := fmt.Sprintf("%+v", v.Any())
	if b, err := json.Marshal(v.Any()); err == nil {
		text = string(b)
	}
	if weight(text, MaxValue+1) <= MaxValue {
		return v
	}
	return slog.StringValue(bound(text, MaxValue))
}

// bound is s if its written form fits max bytes; otherwise its longest
// prefix that fits with " … [cut: N bytes in all]", cut between runes.
func bound(s string, max int) string {
	if len(s)*maxRuneWeight <= max {
		return s
	}
	note := " … [cut: " + strconv.Itoa(len(s)) + " bytes in all]"
	room := max - len(note)
	w, end := 0, 0
	for i, r := range s {
		if w <= room {
			end = i
		}
		w += runeWeight(r, s[i:])
		if w > max {
			return s[:end] + note
		}
	}
	return s
}

// weight is how many bytes s takes written in a log line, counted up to
// limit.
func weight(s string, limit int) int {
	w := 0
	for i, r := range s {
		if w += runeWeight(r, s[i:]); w >= limit {
			return w
		}
	}
	return w
}

// maxRuneWeight is the most bytes one byte of a string can take written:
// a control byte is \u00XX in JSON.
const maxRuneWeight = 6

// runeWeight is the most bytes r, at the start of rest, takes in JSON or
// in slog's quoted text: six for a control character or a byte of invalid
// UTF-8 (\ufffd), two for a quote or a backslash, ten for another rune
// that is not printable (\U000e0001), else its UTF-8 length.
func runeWeight(r rune, rest string) int {
	switch {
	case r == utf8.RuneError:
		if _, size := utf8.DecodeRuneInString(rest); size == 1 {
			return 6
		}
		return utf8.RuneLen(r)
	case r < 0x20 || r == 0x7f || r == '\u2028' || r == '\u2029':
		return 6
	case r == '"' || r == '\\':
		return 2
	case !unicode.IsPrint(r) && r != ' ':
		return 10
	}
	return utf8.RuneLen(r)
}
