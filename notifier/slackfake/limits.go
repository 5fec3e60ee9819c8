package slackfake

import (
	"fmt"
	"unicode/utf8"

	"github.com/slack-go/slack"
)

// Slack's limits on a message, in characters (runes) of the text as it
// arrives, that is after the sender's escaping of &, < and > (&amp; is five
// characters). Where Slack cuts, the fake keeps what Slack would show; every
// part over a limit is a violation (Check), reported to the test.
const (
	// MaxText is where Slack cuts a message's text, posting the rest with
	// the warning message_truncated: "On August 12, 2018 we started
	// truncating messages containing more than 40,000 characters"
	// (https://api.slack.com/changelog/2018-04-truncating-really-long-messages).
	MaxText = 40000
	// RecommendedText is what chat.postMessage asks for: "For best results,
	// limit the number of characters in the text field to 4,000
	// characters" (https://api.slack.com/methods/chat.postMessage,
	// "Truncating content"); the changelog above adds that a long message
	// may be "automatically broken into multiple messages", which would be
	// a second report. The fake holds text to it.
	RecommendedText = 4000
	// MaxAttachmentText is where Slack was measured to cut a legacy
	// attachment's text (issue 10: of 10,137 characters it showed 8,000).
	// The attachment reference documents no maximum, only that text of
	// "700+ characters or 5+ linebreaks" collapses behind "Show more…"
	// (https://api.slack.com/reference/messaging/attachments).
	MaxAttachmentText = 8000
	// MaxFieldValue bounds an attachment field's value. The attachment
	// reference gives none; the nearest documented limit is Block Kit's
	// for a section's fields: "Maximum length for the text in each item is
	// 2000 characters" (https://api.slack.com/reference/block-kit/blocks#section).
	MaxFieldValue = 2000
	// MaxTitle bounds an attachment's title, which the reference does not
	// bound either; the nearest documented limit is a header block's: "Maximum
	// length for the text in this field is 150 characters"
	// (https://api.slack.com/reference/block-kit/blocks#header).
	MaxTitle = 150
)

// Check lists the parts of m over Slack's limits, each as "part: N
// characters; limit L". The fallback, a plain-text summary for
// notifications, is held to the message text's limit.
func Check(m Message) []string {
	var v []string
	over := func(part, s string, limit int) {
		if n := utf8.RuneCountInString(s); n > limit {
			v = append(v, fmt.Sprintf("%s: %d characters; limit %d", part, n, limit))
		}
	}
	over("text", m.Text, RecommendedText)
	for i, a := range m.Attachments {
		p := fmt.Sprintf("attachments[%d].", i)
		over(p+"title", a.Title, MaxTitle)
		over(p+"text", a.Text, MaxAttachmentText)
		over(p+"fallback", a.Fallback, RecommendedText)
		for j, f := range a.Fields {
			over(fmt.Sprintf("%sfields[%d].value", p, j), f.Value, MaxFieldValue)
		}
	}
	return v
}

// shown is m as Slack shows it: the text cut at MaxText and each
// attachment's text at MaxAttachmentText. truncated tells whether the text
// was cut, for the message_truncated warning.
func shown(m Message) (_ Message, truncated bool) {
	m.Text, truncated = cutRunes(m.Text, MaxText)
	if len(m.Attachments) > 0 {
		atts := make([]slack.Attachment, len(m.Attachments))
		for i, a := range m.Attachments {
			a.Text, _ = cutRunes(a.Text, MaxAttachmentText)
			atts[i] = a
		}
		m.Attachments = atts
	}
	return m, truncated
}

// cutRunes is the first n runes of s.
func cutRunes(s string, n int) (string, bool) {
	if utf8.RuneCountInString(s) <= n {
		return s, false
	}
	i := 0
	for j := range s {
		if i == n {
			return s[:j], true
		}
		i++
	}
	return s, false
}

// checkLimits records the violations of m, as received, and reports them
// to the test. The caller holds mu.
func (s *Server) checkLimits(m Message) {
	v := Check(m)
	if len(v) == 0 {
		return
	}
	s.violations = append(s.violations, v...)
	if s.tb != nil {
		s.tb.Helper()
		s.tb.Errorf("slackfake: %s message over Slack's limits: %v", m.Method, v)
	}
}

// Violations returns every part of a message received so far that was over
// Slack's limits (see Check). A fake made with a testing.TB also reports
// each to it as an error, so a test fails on a message Slack would cut,
// split or refuse.
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.violations...)
}
