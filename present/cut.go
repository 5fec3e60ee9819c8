package present

import (
	"strings"
	"unicode/utf8"
)

// MaxDetail is the most of a text from outside dsexport (the Admin API's
// error message, the refusal of a start, a failed poll) that a report
// quotes, in characters. Longer text is cut and says so, alike in Slack, on
// the terminal, on the pages and in the CLI. Google's messages are a
// sentence or two; 1,500 characters keep the start of any of them whole and
// leave room, within the 4,000 characters Slack recommends for a message's
// text, for the command that follows.
const MaxDetail = 1500

// Detail is s as a report quotes it: whole up to MaxDetail characters, else
// cut (see Cut).
func Detail(s string) string { return Cut(s, MaxDetail) }

// Cut returns s whole when it has at most max characters (runes), else as
// much of its start as fits before CutNote, max characters in all.
func Cut(s string, max int) string { return CutWidth(s, max, nil) }

// CutWidth is Cut counting each rune r of s as width(r) characters (one
// each when width is nil), for text that grows when it is sent, as Slack's
// escaping of &, < and > makes it. The note counts one per rune (it has
// none that grow) and gives the length of s in runes, which is what a
// reader sees. A cut never splits a rune. With no room for the note, the
// result is "…", or "" for a max below 1.
func CutWidth(s string, max int, width func(rune) int) string {
	w := func(r rune) int {
		if width == nil {
			return 1
		}
		return width(r)
	}
	total, wide := 0, 0
	for _, r := range s {
		total++
		wide += w(r)
	}
	if wide <= max {
		return s
	}
	note := CutNote(total)
	keep := max - utf8.RuneCountInString(note)
	switch {
	case keep < 0 && max >= 1:
		return "…"
	case keep < 0:
		return ""
	}
	used := 0
	for i, r := range s {
		if used+w(r) > keep {
			return strings.TrimRight(s[:i], " \t\r\n") + note
		}
		used += w(r)
	}
	return s // Not reached: s is wider than keep.
}

// CutNote ends a text that was cut, saying how long it was: " … (cut,
// 10,000 characters in all)".
func CutNote(total int) string {
	return " … (cut, " + Count(int64(total)) + " characters in all)"
}

// The most of a list a report names. A longer list names its first values
// and counts the rest ("User, Order and 98 more"), so it stays a line or two
// in a Slack field (which takes 2,000 characters at most), on the pages and
// in the CLI alike.
const (
	ListMaxValues = 10
	ListMaxChars  = 200
)

// List joins an entity filter's values, each written by name when it is not
// nil; an empty filter exports everything. A list longer than ListMaxValues
// values or ListMaxChars characters is summarised: as many values as fit,
// then how many more there are.
func List(values []string, name func(string) string) string {
	if len(values) == 0 {
		return "all"
	}
	out := make([]string, len(values))
	for i, v := range values {
		if name != nil {
			v = name(v)
		}
		out[i] = v
	}
	all := strings.Join(out, ", ")
	if len(out) <= ListMaxValues && utf8.RuneCountInString(all) <= ListMaxChars {
		return all
	}
	if len(out) == 1 {
		return Cut(out[0], ListMaxChars)
	}
	shown := 0
	for shown < len(out) && shown < ListMaxValues {
		if utf8.RuneCountInString(strings.Join(out[:shown+1], ", ")+more(len(out)-shown-1)) > ListMaxChars {
			break
		}
		shown++
	}
	if shown == 0 {
		// The first value alone is too long: it is cut to leave room for the count.
		rest := more(len(out) - 1)
		return Cut(out[0], ListMaxChars-utf8.RuneCountInString(rest)) + rest
	}
	return strings.Join(out[:shown], ", ") + more(len(out)-shown)
}

// more is the end of a summarised list: " and 98 more".
func more(n int) string { return " and " + Count(int64(n)) + " more" }
