package slackfake_test

import (
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/dsexport/dsexport/notifier/slackfake"
)

// TestReceived checks that each message notes when it was accepted, and
// that an update keeps the time of the post.
func TestReceived(t *testing.T) {
	fake := slackfake.New(t, token)
	api := slack.New(token, slack.OptionAPIURL(fake.URL()), slack.OptionHTTPClient(fake.Client()))
	before := time.Now()
	ch, ts, err := api.PostMessageContext(t.Context(), "C123", slack.MsgOptionText("posted", false))
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	if _, _, _, err := api.UpdateMessageContext(t.Context(), ch, ts, slack.MsgOptionText("updated", false)); err != nil {
		t.Fatal(err)
	}
	if err := slack.PostWebhookContext(t.Context(), fake.WebhookURL(), &slack.WebhookMessage{Text: "hook"}); err != nil {
		t.Fatal(err)
	}
	msgs := fake.Messages()
	if len(msgs) != 2 {
		t.Fatalf("got %d messages; want 2", len(msgs))
	}
	if got := msgs[0].Received; got.Before(before) || got.After(after) {
		t.Errorf("post received at %v; want between %v and %v, its post", got, before, after)
	}
	if got := msgs[1].Received; got.Before(after) || got.After(time.Now()) {
		t.Errorf("webhook message received at %v; want after %v", got, after)
	}
}
