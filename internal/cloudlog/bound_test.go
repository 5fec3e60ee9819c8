package cloudlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"unicode/utf8"
)

// cloudLimit is Cloud Logging's limit on an entry.
const cloudLimit = 256 << 10

// lineBound is what a line may take at most: its values and message, plus
// room for keys and fixed fields.
const lineBound = (MaxAttrs+1)*MaxValue + (MaxAttrs+1)*maxKey + 1024

func TestLineBound(t *testing.T) {
	if lineBound >= cloudLimit*3/4 {
		t.Fatalf("a line may take %d bytes; want well under Cloud Logging's %d", lineBound, cloudLimit)
	}
}

func TestHugeValuesAreBounded(t *testing.T) {
	path := "/exports/" + strings.Repeat("a", 300<<10)
	ctrl := strings.Repeat("\x01", 300<<10)
	many := make([]any, 0, 200)
	for i := range 100 {
		many = append(many, fmt.Sprintf("k%d", i), ctrl)
	}
	tests := []struct {
		name string
		log  func(l *slog.Logger)
	}{
		{"path", func(l *slog.Logger) { l.Warn("request failed", "path", path, "err", errors.New("export id "+path)) }},
		{"message", func(l *slog.Logger) { l.Info(path) }},
		{"control characters", func(l *slog.Logger) { l.Info("x", "v", ctrl) }},
		{"invalid UTF-8", func(l *slog.Logger) { l.Info("x", "v", strings.Repeat("\xff", 300<<10)) }},
		{"a slice", func(l *slog.Logger) { l.Info("x", "kinds", strings.Split(strings.Repeat("Kind,", 100<<10), ",")) }},
		{"many attributes", func(l *slog.Logger) { l.Info("x", many...) }},
		{"many attributes by With", func(l *slog.Logger) { l.With(many...).Info("x", "v", ctrl) }},
		{"a group", func(l *slog.Logger) { l.WithGroup(path).Info("x", "g", map[string]string{"a": path}) }},
	}
	for _, cloud := range []bool{true, false} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/cloud=%v", tt.name, cloud), func(t *testing.T) {
				var buf bytes.Buffer
				tt.log(New(&buf, cloud, "example-proj"))
				line := buf.String()
				if n := len(line); n > lineBound {
					t.Fatalf("line has %d bytes; want at most %d", n, lineBound)
				}
				if strings.Count(line, "\n") != 1 {
					t.Fatalf("want one line, got %q…", line[:200])
				}
				if !strings.Contains(line, "[cut: ") && !strings.Contains(line, "attrs_dropped") {
					t.Errorf("line %.200q… does not say what was cut", line)
				}
				if cloud {
					var m map[string]any
					if err := json.Unmarshal([]byte(line), &m); err != nil {
						t.Fatalf("line is not JSON: %v", err)
					}
				}
			})
		}
	}
}

func TestBoundedLineKeepsWhatFits(t *testing.T) {
	var buf bytes.Buffer
	short := strings.Repeat("é", 100)
	New(&buf, true, "p").Info("polled", "operation", "projects/p/operations/x", "poll", 3, "err", errors.New(short))
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]any{"message": "polled", "operation": "projects/p/operations/x", "poll": 3.0, "err": short} {
		if got := m[key]; got != want {
			t.Errorf("%s = %v; want %v", key, got, want)
		}
	}
	if _, ok := m["attrs_dropped"]; ok {
		t.Errorf("attrs_dropped in a line of three attributes")
	}
}

func TestBound(t *testing.T) {
	s := strings.Repeat("a€\x01", 10000)
	got := bound(s, 1000)
	if w := weight(got, 1<<30); w > 1000 {
		t.Errorf("bound(…, 1000) weighs %d", w)
	}
	if !utf8.ValidString(got) || !strings.HasSuffix(got, " … [cut: 50000 bytes in all]") {
		t.Errorf("bound(…, 1000) = %q; want valid UTF-8 saying the cut", got)
	}
	if got := bound("short", 1000); got != "short" {
		t.Errorf("bound(short) = %q", got)
	}
}
