package preflight

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/dsexport/dsexport/poller"
)

// CheckSlackWebhook is the note of a deployment that posts through an
// incoming webhook.
const CheckSlackWebhook = "slack webhook"

// TokenFix is the fix of a Slack token that does not work.
const TokenFix = "create a bot token with chat:write and set SLACK_TOKEN / DSEXPORT_SLACK_TOKEN_SECRET"

// scheduleAhead is how far ahead the channel check schedules its test
// message: far, so that a message whose deletion failed shows months
// later, if ever noticed, rather than at once, and under Slack's limit of
// 120 days (time_too_far beyond).
const scheduleAhead = 119 * 24 * time.Hour

// deleteTimeout bounds the deletion of the test message, which runs even
// when the check's own deadline has passed.
const deleteTimeout = 10 * time.Second

// Slack is where reports go.
type Slack struct {
	// Token is the bot token; Webhook tells that reports go through an
	// incoming webhook instead (its URL is not needed: it cannot be tested
	// without posting).
	Token   string
	Webhook bool
	// APIURL is the Web API base (SLACK_API_URL; "" for Slack's own).
	APIURL string
	// HTTPClient makes the calls (nil: http.DefaultClient).
	HTTPClient *http.Client
	// Channels are the channels reports go to: the default one and each
	// target's. Duplicates are checked once.
	Channels []string
}

// SlackChecks are the checks of s: with a token, that it works
// (auth.test) and that the bot can post to each channel; with a webhook,
// one note that it cannot be tested; nothing without either. The token
// never shows in what they return.
func SlackChecks(s Slack) []poller.CheckFunc {
	if s.Token == "" {
		if s.Webhook {
			return []poller.CheckFunc{{Name: CheckSlackWebhook, Run: func(context.Context) ([]poller.Check, error) {
				return []poller.Check{{Name: CheckSlackWebhook, OK: true, Warning: true,
					Detail: "reports go through an incoming webhook, which cannot be tested without posting a message; a bot token (SLACK_TOKEN) can be checked"}}, nil
			}}}
		}
		return nil
	}
	var opts []slack.Option
	if s.HTTPClient != nil {
		opts = append(opts, slack.OptionHTTPClient(s.HTTPClient))
	}
	if s.APIURL != "" {
		// slack-go appends method names to the base as is (as notifier
		// does, a missing slash is added).
		u := s.APIURL
		if !strings.HasSuffix(u, "/") {
			u += "/"
		}
		opts = append(opts, slack.OptionAPIURL(u))
	}
	p := &slackProbe{client: slack.New(s.Token, opts...), redact: strings.NewReplacer(s.Token, "[redacted]")}
	out := []poller.CheckFunc{{Name: CheckSlackAuth, Run: p.redacted(p.authCheck)}}
	seen := map[string]bool{}
	for _, ch := range s.Channels {
		if ch == "" || seen[ch] {
			continue
		}
		seen[ch] = true
		out = append(out, poller.CheckFunc{Name: CheckSlackChannel, Run: p.redacted(func(ctx context.Context) ([]poller.Check, error) {
			return p.channelCheck(ctx, ch)
		})})
	}
	return out
}

// slackProbe keeps the bot's name from auth.test for the channel checks.
type slackProbe struct {
	client *slack.Client
	redact *strings.Replacer

	mu  sync.Mutex
	bot *slack.AuthTestResponse
}

// redacted removes the token from whatever run returns.
func (p *slackProbe) redacted(run func(context.Context) ([]poller.Check, error)) func(context.Context) ([]poller.Check, error) {
	return func(ctx context.Context) ([]poller.Check, error) {
		checks, err := run(ctx)
		for i := range checks {
			checks[i].Detail = p.redact.Replace(checks[i].Detail)
			checks[i].Fix = p.redact.Replace(checks[i].Fix)
		}
		if err != nil {
			err = errors.New(p.redact.Replace(err.Error()))
		}
		return checks, err
	}
}

// label is s, a text of Slack's answer, redacted then bounded as a label.
// The order matters: a token cut by the bound would no longer be found, and
// its start would show.
func (p *slackProbe) label(s string) string {
	return poller.BoundText(p.redact.Replace(s), poller.MaxLabel)
}

// auth calls auth.test, once it succeeded.
func (p *slackProbe) auth(ctx context.Context) (*slack.AuthTestResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bot != nil {
		return p.bot, nil
	}
	r, err := p.client.AuthTestContext(ctx)
	if err != nil {
		return nil, err
	}
	p.bot = r
	return r, nil
}

// refused is Slack's error code when Slack answered and refused.
func refused(err error) (string, bool) {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err, true
	}
	return "", false
}

func (p *slackProbe) authCheck(ctx context.Context) ([]poller.Check, error) {
	r, err := p.auth(ctx)
	if code, ok := refused(err); ok {
		return []poller.Check{{Name: CheckSlackAuth, Detail: "Slack refused the token: " + p.label(code), Fix: TokenFix}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("auth.test: %w", err)
	}
	return []poller.Check{{Name: CheckSlackAuth, OK: true,
		Detail: fmt.Sprintf("the token works: bot @%s in team %s (%s)", p.label(r.User), p.label(r.Team), p.label(r.TeamID))}}, nil
}

// channelCheck tells whether the bot can post to channel without posting
// anything visible: it schedules a message scheduleAhead and deletes it at
// once. Of the documented calls, chat.scheduleMessage is the one that
// answers exactly the question (can this bot post here: channel_not_found,
// not_in_channel, is_archived, restricted_action) with the scope reports
// need already, chat:write. conversations.info takes only an ID, and it
// and conversations.list need channels:read (groups:read for a private
// channel) that the bot needs for nothing else; the list must also be
// paged through, in a large workspace thousands of channels.
func (p *slackProbe) channelCheck(ctx context.Context, channel string) ([]poller.Check, error) {
	name := channelLabel(channel)
	bot, err := p.auth(ctx)
	if err != nil {
		return []poller.Check{{Name: CheckSlackChannel, Detail: fmt.Sprintf("%s not checked: the Slack token does not work (see %s)", name, CheckSlackAuth)}}, nil
	}
	invite := fmt.Sprintf("/invite @%s in %s", p.label(bot.User), name)
	postAt := time.Now().Add(scheduleAhead)
	chID, scheduled, err := p.client.ScheduleMessageContext(ctx, channel, strconv.FormatInt(postAt.Unix(), 10),
		slack.MsgOptionText("dsexport doctor: checking that reports can be posted here (this scheduled message is deleted at once)", false))
	if code, ok := refused(err); ok {
		c := poller.Check{Name: CheckSlackChannel, Detail: fmt.Sprintf("@%s cannot post to %s: %s", bot.User, name, p.label(code))}
		switch code {
		case "channel_not_found":
			c.Detail += " (no such channel, or a private one the bot is not in)"
			c.Fix = invite
		case "not_in_channel":
			c.Fix = invite
		case "missing_scope", "invalid_auth", "not_authed", "account_inactive", "token_revoked":
			c.Fix = TokenFix
		}
		return []poller.Check{c}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("chat.scheduleMessage to %s: %w", name, err)
	}
	// The deletion runs even past the check's deadline: a message left
	// scheduled would be posted one day.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deleteTimeout)
	defer cancel()
	if _, err := p.client.DeleteScheduledMessageContext(dctx, &slack.DeleteScheduledMessageParameters{Channel: chID, ScheduledMessageID: scheduled}); err != nil {
		return []poller.Check{{Name: CheckSlackChannel, OK: true, Warning: true,
			Detail: fmt.Sprintf("@%s can post to %s, but its test message %s, scheduled for %s, could not be deleted (%v): delete it in Slack's scheduled messages",
				bot.User, name, p.label(scheduled), postAt.UTC().Format(time.DateOnly), err)}}, nil
	}
	return []poller.Check{{Name: CheckSlackChannel, OK: true, Detail: fmt.Sprintf("@%s can post to %s", bot.User, name)}}, nil
}

// channelLabel is channel as a person types it: an ID as it is, a name
// with its "#".
func channelLabel(channel string) string {
	channel = poller.BoundText(channel, poller.MaxLabel)
	if isChannelID(channel) || strings.HasPrefix(channel, "#") {
		return channel
	}
	return "#" + channel
}

// isChannelID tells a conversation ID (C…, G…, D… in capitals and digits)
// from a name, which Slack keeps in lower case.
func isChannelID(s string) bool {
	if len(s) < 2 || !strings.ContainsRune("CGD", rune(s[0])) {
		return false
	}
	for _, r := range s[1:] {
		if (r < 'A' || r > 'Z') && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}
