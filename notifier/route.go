package notifier

import (
	"errors"
	"fmt"
	"sort"

	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/present"
)

// ErrWebhookChannels is returned by NewSlackWebhook given
// WithTargetChannels: an incoming webhook posts to the one channel it was
// made for, so reports can only go to each target's own channel as a bot
// (SLACK_TOKEN).
var ErrWebhookChannels = errors.New("slack webhook: per-target channels (slackChannel) need a bot token (SLACK_TOKEN): a webhook posts only to the channel it was made for")

// WithTargetChannels sends the reports of each target named in channels to
// its channel (a name such as "#shop-backups" or an ID) instead of the
// notifier's default one: the export started, its progress and its report,
// staleness alarms and backup notices alike. A report about a target not
// in channels, or about none, goes to the default channel. Only a bot
// routes reports: NewSlackWebhook refuses this option (ErrWebhookChannels).
func WithTargetChannels(channels map[string]string) Option {
	return func(o *options) {
		o.channels = make(map[string]string, len(channels))
		for target, channel := range channels {
			o.channels[target] = channel
		}
		o.channelsSet = true
	}
}

// CheckTargetChannels checks a target-to-channel map as
// WithTargetChannels takes it: no empty target name or channel. Its error
// names the target. The constructors call it; the configuration may too,
// to say which line is at fault.
func CheckTargetChannels(channels map[string]string) error {
	targets := make([]string, 0, len(channels))
	for t := range channels {
		targets = append(targets, t)
	}
	sort.Strings(targets)
	for _, t := range targets {
		switch {
		case t == "":
			return errors.New("slack channels: a channel is given for a target with no name")
		case channels[t] == "":
			return fmt.Errorf("slack channels: target %s has an empty channel", present.Cut(t, 80))
		}
	}
	return nil
}

// channelFor is the channel r's report goes to: its target's, or the
// default one.
func (s *Slack) channelFor(r poller.Report) string {
	if c, ok := s.channels[present.TargetOf(r)]; ok {
		return c
	}
	return s.channel
}
