package notifier

import (
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/slack-go/slack/slackutilsx"

	"github.com/dsexport/dsexport/present"
)

// What dsexport posts to Slack is held to these limits, in characters
// (runes) of the text as sent, after the escaping of &, < and > (& is sent
// as &amp;, five characters), since that is what Slack receives and counts.
// The message is a text and one legacy attachment (no Block Kit blocks), so
// the limits are those of chat.postMessage's text and of attachments; where
// the attachment reference documents none, the nearest Block Kit limit is
// used. slackfake checks the same limits on what it receives.
const (
	// maxText bounds a message's own text (the summary, the thread reply).
	// chat.postMessage: "For best results, limit the number of characters
	// in the text field to 4,000 characters. ... Slack will truncate
	// messages containing more than 40,000 characters"
	// (https://api.slack.com/methods/chat.postMessage, "Truncating
	// content"). A long message may also be "automatically broken into
	// multiple messages"
	// (https://api.slack.com/changelog/2018-04-truncating-really-long-messages),
	// which would be a second report, so the recommendation is the limit.
	maxText = 4000
	// maxAttachmentText bounds the attachment's text and its fallback. The
	// attachment reference (https://api.slack.com/reference/messaging/attachments)
	// documents no maximum, only that text of "700+ characters or 5+
	// linebreaks" collapses behind "Show more..."; Slack was measured to
	// show 8,000 characters of a longer one (issue 10). The message text's
	// 4,000 is well within both.
	maxAttachmentText = 4000
	// maxFieldValue bounds each field's value: the attachment reference
	// gives none; Block Kit's section fields take "2000 characters" each
	// (https://api.slack.com/reference/block-kit/blocks#section). Block
	// Kit's other limit there, 10 fields a section, is not the
	// attachment's: a report has 12 fields.
	maxFieldValue = 2000
	// maxTitle bounds the attachment's title, which the reference does not
	// bound; a header block, the nearest thing, takes 150 characters
	// (https://api.slack.com/reference/block-kit/blocks#header).
	maxTitle = 150
)

// sentWidth is how many characters r is once escaped for Slack.
func sentWidth(r rune) int {
	switch r {
	case '&':
		return len("&amp;")
	case '<', '>':
		return len("&lt;")
	}
	return 1
}

// escape is s as Slack is sent it: &, < and > escaped, as Slack requires;
// Slack shows them unescaped.
func escape(s string) string { return slackutilsx.EscapeMessage(s) }

// fitText is the raw text s escaped within limit characters, cut (saying
// so, as present.Cut does) if it would not fit.
func fitText(s string, limit int) string {
	return escape(present.CutWidth(s, limit, sentWidth))
}

// width is the length of raw text s once escaped.
func width(s string) int {
	n := 0
	for _, r := range s {
		n += sentWidth(r)
	}
	return n
}

// line is one line of a text laid out within a limit: head is sent whole
// and as is (a label, a command: already escaped), then text, raw, which is
// escaped and cut if the whole would not fit.
type line struct {
	head, text string
}

// fit joins lines with newlines in at most limit characters as sent. Every
// head is whole; the texts share what is left, the shortest whole first so
// one long error does not crowd out a short note, and a text cut says how
// long it was. Only if the heads alone do not fit, which no command made
// of a valid operation name or Cloud Storage URL does, is the whole clipped.
func fit(lines []line, limit int) string {
	left := limit - (len(lines) - 1)
	var texts []int
	for i, l := range lines {
		left -= utf8.RuneCountInString(l.head)
		if l.text != "" {
			texts = append(texts, i)
		}
	}
	slices.SortStableFunc(texts, func(a, b int) int { return width(lines[a].text) - width(lines[b].text) })
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.head
	}
	for k, i := range texts {
		share := max(left, 0) / (len(texts) - k)
		text := fitText(lines[i].text, share)
		left -= utf8.RuneCountInString(text)
		out[i] += text
	}
	return clip(strings.Join(out, "\n"), limit)
}

// clip cuts the escaped text s to limit characters as a last resort, ending
// in "…", never inside a rune or an escape such as &amp;.
func clip(s string, limit int) string {
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	if limit < 1 {
		return ""
	}
	n, end := 0, 0
	for i, r := range s {
		if n == limit-1 {
			break
		}
		n++
		end = i + utf8.RuneLen(r)
	}
	// In escaped text every & begins an escape, which ends at its ;.
	if amp := strings.LastIndexByte(s[:end], '&'); amp >= 0 && !strings.Contains(s[amp:end], ";") {
		end = amp
	}
	return s[:end] + "…"
}
