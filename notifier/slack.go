package notifier

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/dsexport/dsexport/internal/retry"
	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/present"
)

// Slack posts reports to Slack, as a bot (chat.postMessage with a token) or
// through an incoming webhook. It implements poller.ProgressNotifier.
//
// As a bot it can follow an export in one message: Started posts it,
// Progress updates it (chat.update), and Notify, given the message in
// Report.Message, turns it into the report and replies in its thread so the
// channel is notified. A webhook cannot edit what it posted, so in webhook
// mode Started posts nothing and returns a zero poller.MessageRef, Progress
// does nothing, and Notify posts the report as a message of its own.
type Slack struct {
	loc *time.Location
	// now is the clock progress messages tell the elapsed time by.
	now func() time.Time

	// Bot: client holds the token and posts to channel, or to the
	// channel of the report's target in channels (WithTargetChannels).
	client   *slack.Client
	channel  string
	channels map[string]string

	// Webhook: the URL is itself the secret.
	webhookURL string
	hc         *http.Client

	// redactor removes the secrets from every error Notify returns, because
	// errors end up in logs and in the store.
	redactor *strings.Replacer

	retry retry.Policy
}

var _ poller.ProgressNotifier = (*Slack)(nil)

// Option configures a Slack notifier.
type Option func(*options)

type options struct {
	apiURL string
	hc     *http.Client
	retry  retry.Policy
	now    func() time.Time
	// channels routes reports by target (WithTargetChannels).
	channels    map[string]string
	channelsSet bool
}

// WithAPIURL sends Web API calls to apiURL instead of https://slack.com/api/
// (SLACK_API_URL; a fake in tests). A missing trailing slash is added, since
// slack-go appends method names to the base as is.
func WithAPIURL(apiURL string) Option {
	return func(o *options) { o.apiURL = apiURL }
}

// WithHTTPClient makes the notifier use hc, so the caller decides timeouts
// and transport.
func WithHTTPClient(hc *http.Client) Option {
	return func(o *options) { o.hc = hc }
}

// WithRetry replaces the retry policy of every call to Slack (see
// DefaultRetry); retry.Policy{Attempts: 1} turns retries off.
func WithRetry(p retry.Policy) Option {
	return func(o *options) { o.retry = p }
}

// WithClock makes progress messages tell the time since the export started
// by now instead of time.Now; tests pin it.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// DefaultRetry is the policy of a new notifier: three tries with backoffs of
// 200ms and 400ms, or longer when Slack's Retry-After says so, all within the
// caller's deadline (a few seconds per report in the poller).
func DefaultRetry() retry.Policy {
	return retry.Policy{Attempts: 3, Initial: 200 * time.Millisecond, Max: 2 * time.Second, Multiplier: 2}
}

// defaultTimeout bounds a post when the caller gives no HTTP client: a report
// must not hang the poll loop behind a stuck connection.
const defaultTimeout = 30 * time.Second

func buildOptions(opts []Option) options {
	o := options{retry: DefaultRetry()}
	for _, opt := range opts {
		opt(&o)
	}
	if o.hc == nil {
		o.hc = &http.Client{Timeout: defaultTimeout}
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.apiURL != "" && !strings.HasSuffix(o.apiURL, "/") {
		o.apiURL += "/"
	}
	return o
}

// NewSlackBot returns a notifier that posts with chat.postMessage to channel
// (a name such as "#backups" or an ID) using a bot token. Times are shown in
// loc (UTC when nil).
func NewSlackBot(token, channel string, loc *time.Location, opts ...Option) (*Slack, error) {
	if token == "" {
		return nil, errors.New("slack bot: token is empty")
	}
	if channel == "" {
		return nil, errors.New("slack bot: channel is empty")
	}
	o := buildOptions(opts)
	if err := CheckTargetChannels(o.channels); err != nil {
		return nil, err
	}
	copts := []slack.Option{slack.OptionHTTPClient(o.hc)}
	if o.apiURL != "" {
		if err := checkURL(o.apiURL); err != nil {
			return nil, fmt.Errorf("slack API URL: %w", err)
		}
		copts = append(copts, slack.OptionAPIURL(o.apiURL))
	}
	return &Slack{
		loc:      orUTC(loc),
		now:      o.now,
		client:   slack.New(token, copts...),
		channel:  channel,
		channels: o.channels,
		// The token is never in slack-go's errors today (it travels in the
		// form body); redacting it anyway keeps that true if that changes.
		redactor: strings.NewReplacer(token, "[redacted]"),
		retry:    o.retry,
	}, nil
}

// NewSlackWebhook returns a notifier that posts to an incoming webhook. Times
// are shown in loc (UTC when nil). Only WithHTTPClient applies to webhooks;
// WithTargetChannels with any channel is refused (ErrWebhookChannels).
func NewSlackWebhook(webhookURL string, loc *time.Location, opts ...Option) (*Slack, error) {
	if webhookURL == "" {
		return nil, errors.New("slack webhook: URL is empty")
	}
	if err := checkURL(webhookURL); err != nil {
		// The URL is a secret, so the error says what is wrong without it.
		return nil, fmt.Errorf("slack webhook URL: %w", err)
	}
	o := buildOptions(opts)
	if len(o.channels) > 0 {
		return nil, ErrWebhookChannels
	}
	// The scheme and host stay readable, as they help to diagnose a network
	// error; the path (/services/T…/B…/secret) and query are the secret, and
	// the path is redacted on its own too in case it shows up without the host.
	u, _ := url.Parse(webhookURL) // checkURL parsed it already.
	pairs := []string{webhookURL, u.Scheme + "://" + u.Host + "/[redacted]"}
	if len(u.Path) > 1 {
		pairs = append(pairs, u.EscapedPath(), "/[redacted]", u.Path, "/[redacted]")
	}
	return &Slack{
		loc: orUTC(loc), now: o.now, webhookURL: webhookURL, hc: o.hc,
		redactor: strings.NewReplacer(pairs...), retry: o.retry,
	}, nil
}

// checkURL accepts only absolute http(s) URLs. Its errors never quote the URL.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a valid URL")
	}
	if u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
		return errors.New("not an absolute http(s) URL")
	}
	return nil
}

func orUTC(loc *time.Location) *time.Location {
	if loc == nil {
		return time.UTC
	}
	return loc
}

// Notify posts r as one message with one attachment. It retries what Slack
// may accept a moment later (see retryable) within ctx's deadline; a report
// still not delivered stays unreported for the caller to try again, and the
// last 429's wait is in the returned *slack.RateLimitedError.
//
// As a bot, when r.Message names the export's progress message, Notify
// turns that message into the report and replies in its thread with the
// headline and the command to run next, so the channel hears of it; it
// succeeds only when both went through. Called again after a failure it
// updates the same message again, so the channel never gets a second
// report. A progress message that is gone (deleted, or no longer
// editable) is replaced by a new message, which is then the report and
// needs no reply. A webhook ignores r.Message.
//
// As a bot, a report goes to the channel of its target
// (WithTargetChannels), else to the default channel; one that replaces a
// progress message stays in that message's channel.
func (s *Slack) Notify(ctx context.Context, r poller.Report) error {
	m := present.FormatAt(r, s.loc, s.now())
	if s.client != nil {
		if !r.Message.IsZero() {
			return s.finish(ctx, r.Message, m, r)
		}
		channel := s.channelFor(r)
		if _, err := s.post(ctx, channel, m, r, retryable); err != nil {
			return fmt.Errorf("post report to slack channel %s: %w", channel, err)
		}
		return nil
	}
	msg := &slack.WebhookMessage{Text: summary(m, r), Attachments: []slack.Attachment{attachment(m)}}
	err := retry.Do(ctx, s.retry, func(ctx context.Context) error {
		return slack.PostWebhookCustomHTTPContext(ctx, s.webhookURL, s.hc, msg)
	}, retryable)
	if err != nil {
		return fmt.Errorf("post report to slack webhook: %w", redact(err, s.redactor))
	}
	return nil
}

// Started posts the message that follows the export r started, and returns
// the channel ID and timestamp Slack gave it, which Progress and Notify
// need to edit it. In webhook mode it posts nothing and returns a zero
// MessageRef: the report will come as a message of its own.
//
// Unlike a report, the start message is retried only when Slack said it
// was rate limited, which means it posted nothing: after a 5xx or a network
// error the message may have been posted, and a second one would stay
// "started" forever beside the one that follows the export. Without a
// start message the report is simply posted on its own.
func (s *Slack) Started(ctx context.Context, r poller.Report) (poller.MessageRef, error) {
	if s.client == nil {
		return poller.MessageRef{}, nil
	}
	channel := s.channelFor(r)
	ref, err := s.post(ctx, channel, present.FormatStarted(r, s.loc), r, rateLimited)
	if err != nil {
		return poller.MessageRef{}, fmt.Errorf("post start message to slack channel %s: %w", channel, err)
	}
	return ref, nil
}

// Progress updates the message ref with r's latest snapshot. It does
// nothing in webhook mode or for a zero ref. How often to call it is the
// caller's business: every call is one chat.update.
func (s *Slack) Progress(ctx context.Context, ref poller.MessageRef, r poller.Report) error {
	if s.client == nil || ref.IsZero() {
		return nil
	}
	if err := s.update(ctx, ref, present.FormatProgress(r, s.loc, s.now()), r); err != nil {
		return fmt.Errorf("update progress message %s in slack channel %s: %w", ref.TS, s.channelOf(ref, r), err)
	}
	return nil
}

// finish turns the progress message ref into the report m and replies in
// its thread.
func (s *Slack) finish(ctx context.Context, ref poller.MessageRef, m present.Message, r poller.Report) error {
	err := s.update(ctx, ref, m, r)
	if gone(err) {
		channel := s.channelFor(r)
		if _, perr := s.post(ctx, channel, m, r, retryable); perr != nil {
			return fmt.Errorf("post report to slack channel %s (its progress message %s could not be updated: %v): %w",
				channel, ref.TS, err, perr)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("update message %s in slack channel %s into the report: %w", ref.TS, s.channelOf(ref, r), err)
	}
	err = retry.Do(ctx, s.retry, func(ctx context.Context) error {
		_, _, err := s.client.PostMessageContext(ctx, s.channelOf(ref, r),
			slack.MsgOptionText(replyText(m, r, s.loc), false),
			slack.MsgOptionTS(ref.TS),
			// A reply only in the thread would notify no one but the
			// thread's followers, that is the bot; broadcast, it shows in
			// the channel as a one-line reply to the report.
			slack.MsgOptionBroadcast(),
		)
		return err
	}, retryable)
	if err != nil {
		return fmt.Errorf("reply in the thread of message %s in slack channel %s: %w", ref.TS, s.channelOf(ref, r), redact(err, s.redactor))
	}
	return nil
}

// post sends m as a new message to channel, retrying the failures
// classify accepts, and says where Slack put it. Its error is redacted.
func (s *Slack) post(ctx context.Context, channel string, m present.Message, r poller.Report, classify retry.Classify) (poller.MessageRef, error) {
	text, att := summary(m, r), attachment(m)
	var ref poller.MessageRef
	err := retry.Do(ctx, s.retry, func(ctx context.Context) error {
		id, ts, err := s.client.PostMessageContext(ctx, channel,
			slack.MsgOptionText(text, false),
			slack.MsgOptionAttachments(att),
		)
		if err != nil {
			return err
		}
		if id == "" {
			id = channel
		}
		ref = poller.MessageRef{Channel: id, TS: ts}
		return nil
	}, classify)
	if err != nil {
		return poller.MessageRef{}, redact(err, s.redactor)
	}
	return ref, nil
}

// update replaces the text and attachment of the message ref with m, with
// retries; an update is idempotent, so a retry after a lost answer is
// harmless. Its error is redacted.
func (s *Slack) update(ctx context.Context, ref poller.MessageRef, m present.Message, r poller.Report) error {
	text, att := summary(m, r), attachment(m)
	err := retry.Do(ctx, s.retry, func(ctx context.Context) error {
		_, _, _, err := s.client.UpdateMessageContext(ctx, s.channelOf(ref, r), ref.TS,
			slack.MsgOptionText(text, false),
			slack.MsgOptionAttachments(att),
		)
		return err
	}, retryable)
	if err != nil {
		return redact(err, s.redactor)
	}
	return nil
}

// channelOf is the channel of ref: the ID Slack answered when it was
// posted, which chat.update requires (it does not take "#name"), or for a
// ref recorded without one the channel r's report goes to.
func (s *Slack) channelOf(ref poller.MessageRef, r poller.Report) string {
	if ref.Channel != "" {
		return ref.Channel
	}
	return s.channelFor(r)
}

// gone tells whether a failed update means the message cannot be edited
// any more, so the report must be posted anew: it was deleted
// (message_not_found), is not the bot's or not editable
// (cant_update_message, edit_window_closed), or its channel is gone
// (channel_not_found, is_archived). Anything else is left to the caller to
// try again, so a passing failure does not make a second report.
func gone(err error) bool {
	var slackErr slack.SlackErrorResponse
	if !errors.As(err, &slackErr) {
		return false
	}
	switch slackErr.Err {
	case "message_not_found", "cant_update_message", "edit_window_closed", "channel_not_found", "is_archived":
		return true
	}
	return false
}

// replyText is the thread reply that announces the report: its headline,
// and the command to run next, in code so it copies cleanly. It is escaped
// and within maxText: the headline is cut, if need be, never the command.
func replyText(m present.Message, r poller.Report, loc *time.Location) string {
	lines := []line{{text: present.Headline(r, loc)}}
	for _, n := range m.Notes {
		if n.Command {
			lines = append(lines, line{head: "`" + escape(n.Text) + "`"})
			break
		}
	}
	return fit(lines, maxText)
}

// retryable tells which failed posts to try again: a 429 (after its
// Retry-After, or the backoff when it has none), a 5xx, and network errors.
// Slack's own refusals (invalid_auth, channel_not_found, a webhook's 404 or
// 403) will not change by themselves, so they are returned at once.
//
// A network error after the request was sent, or a 5xx, may come after Slack
// posted the message, so a retry can show the report twice. That is the
// same risk as the caller trying again later, which it must do anyway
// not to lose the report; a second message beats none.
func retryable(err error) (bool, time.Duration) {
	var rate *slack.RateLimitedError
	if errors.As(err, &rate) {
		return true, rate.RetryAfter
	}
	var status slack.StatusCodeError
	if errors.As(err, &status) {
		return status.Code == http.StatusTooManyRequests || status.Code >= 500, 0
	}
	var slackErr slack.SlackErrorResponse
	if errors.As(err, &slackErr) || errors.Is(err, context.Canceled) {
		return false, 0
	}
	var nerr net.Error
	var uerr *url.Error
	return errors.As(err, &nerr) || errors.As(err, &uerr), 0
}

// rateLimited retries only a 429, after its Retry-After: the one failure
// after which Slack certainly posted nothing.
func rateLimited(err error) (bool, time.Duration) {
	var rate *slack.RateLimitedError
	if errors.As(err, &rate) {
		return true, rate.RetryAfter
	}
	var status slack.StatusCodeError
	if errors.As(err, &status) && status.Code == http.StatusTooManyRequests {
		return true, 0
	}
	return false, 0
}

// summary is the message's own text: what a push notification shows, and what
// clients that cannot draw attachments show: the title and the database
// (the project, for its (default) database). It is escaped and within
// maxText.
func summary(m present.Message, r poller.Report) string {
	text := m.Title
	// The staleness alarm's title names its database already.
	if scope := present.ScopeOf(r); scope != "" && r.Stale == nil {
		text += " (" + present.Name(scope) + ")"
	}
	return fitText(text, maxText)
}

// attachment lays a Message out as a Slack attachment: fields for the facts,
// and the notes as text with commands in code so they copy cleanly. Text is
// escaped as Slack requires (&, <, >; Slack shows it unescaped), and each
// part is within its limit (see limits.go): a value too long is cut, saying
// so, and the notes share the text's limit, the commands whole.
func attachment(m present.Message) slack.Attachment {
	att := slack.Attachment{
		Color:      m.Color,
		Title:      fitText(m.Title, maxTitle),
		Fallback:   fallback(m),
		MarkdownIn: []string{"text"},
	}
	for _, f := range m.Fields {
		att.Fields = append(att.Fields, slack.AttachmentField{
			Title: f.Title,
			Value: fitText(f.Value, maxFieldValue),
			Short: f.Short,
		})
	}
	lines := make([]line, 0, len(m.Notes))
	for _, n := range m.Notes {
		l := line{head: "*" + n.Label + ":* ", text: n.Text}
		if n.Command {
			l = line{head: l.head + "`" + escape(n.Text) + "`"}
		}
		lines = append(lines, l)
	}
	att.Text = fit(lines, maxAttachmentText)
	return att
}

// fallback is the attachment in plain text, for notifications and clients
// that show no attachments, escaped and within maxAttachmentText, the
// commands whole.
func fallback(m present.Message) string {
	lines := []line{{text: m.Title}}
	for _, n := range m.Notes {
		l := line{head: escape(n.Label + ": "), text: n.Text}
		if n.Command {
			l = line{head: escape(n.Label + ": " + n.Text)}
		}
		lines = append(lines, l)
	}
	return fit(lines, maxAttachmentText)
}

// redact returns err with the secrets replaced in its message. net/http
// errors quote the request URL (`Post "https://hooks.slack.com/services/…"`),
// which for a webhook is the credential. The result unwraps only to the
// causes that carry no text of their own from the request — Slack's error
// code, the rate limit, the HTTP status, the context's end — so callers can
// still tell them apart but cannot reach the unredacted message.
func redact(err error, secrets *strings.Replacer) error {
	r := &redactedError{msg: secrets.Replace(err.Error())}
	var slackErr slack.SlackErrorResponse
	if errors.As(err, &slackErr) {
		r.causes = append(r.causes, slackErr)
	}
	var rateErr *slack.RateLimitedError
	if errors.As(err, &rateErr) {
		r.causes = append(r.causes, rateErr)
	}
	var statusErr slack.StatusCodeError
	if errors.As(err, &statusErr) {
		r.causes = append(r.causes, statusErr)
	}
	for _, c := range []error{context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, c) {
			r.causes = append(r.causes, c)
		}
	}
	return r
}

type redactedError struct {
	msg    string
	causes []error
}

func (e *redactedError) Error() string   { return e.msg }
func (e *redactedError) Unwrap() []error { return e.causes }
