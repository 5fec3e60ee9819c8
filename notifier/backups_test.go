package notifier_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack/slackutilsx"

	"github.com/dsexport/dsexport/internal/testrig"
	"github.com/dsexport/dsexport/notifier"
	"github.com/dsexport/dsexport/notifier/slackfake"
	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/present"
)

const backupName = "projects/shop-prod/locations/nam5/backups/cf9f748a-7980-4703-b1a1-d1ffff591db0"

func readyBackup() poller.Backup {
	return poller.Backup{
		Name: backupName, Database: "projects/shop-prod/databases/analytics", DatabaseUID: "5c3a1f0e",
		State: poller.BackupReady, SnapshotTime: ts("2026-12-01T02:13:00Z"), ExpireTime: ts("2027-03-09T02:13:00Z"),
		Documents: 1204331, Bytes: 5368709120,
	}
}

// notices are one backup notice of each kind, as the watch raises them.
func notices() map[poller.NoticeKind]poller.BackupNotice {
	base := poller.BackupNotice{Target: "shop-analytics", Project: "shop-prod", Database: "analytics", Backup: readyBackup()}
	out := make(map[poller.NoticeKind]poller.BackupNotice)
	for _, k := range []poller.NoticeKind{poller.NoticeReady, poller.NoticeNoSchedule, poller.NoticeMissing,
		poller.NoticeNotAvailable, poller.NoticeStuck, poller.NoticeShortRetention, poller.NoticeShrank, poller.NoticeWatchFailing} {
		n := base
		n.Kind = k
		switch k {
		case poller.NoticeNoSchedule:
			n.Backup, n.Since = poller.Backup{}, ts("2026-11-20T00:00:00Z")
		case poller.NoticeMissing:
			n.Expected, n.Since = 48*time.Hour, ts("2026-12-03T02:13:00Z")
		case poller.NoticeNotAvailable:
			n.Backup.State = poller.BackupNotAvailable
		case poller.NoticeStuck:
			n.Backup.State, n.Backup.Documents, n.Backup.Bytes, n.Expected = poller.BackupCreating, 0, 0, 6*time.Hour
		case poller.NoticeShortRetention:
			n.Backup = poller.Backup{}
			n.Schedule = poller.BackupSchedule{Name: "projects/shop-prod/databases/analytics/backupSchedules/091a49a0",
				Recurrence: poller.Daily, Retention: 3 * 24 * time.Hour}
			n.Expected = 7 * 24 * time.Hour
		case poller.NoticeShrank:
			n.Previous = readyBackup()
			n.Previous.Name = "projects/shop-prod/locations/nam5/backups/0a1b2c3d"
			n.Backup.Documents, n.Shrink = 722599, 0.4
		case poller.NoticeWatchFailing:
			n.Backup, n.Expected, n.Since = poller.Backup{}, 48*time.Hour, ts("2026-12-02T02:00:00Z")
			n.Error = "get database: googleapi: Error 403: The caller does not have permission, forbidden"
		}
		out[k] = n
	}
	return out
}

// wantCommand is the command each kind of notice must show whole: the one
// it is about.
var wantCommand = map[poller.NoticeKind]string{
	poller.NoticeReady:          "gcloud firestore databases restore --source-backup=" + backupName + " --destination-database=analytics-restore-20261201 --project=shop-prod",
	poller.NoticeNoSchedule:     "gcloud firestore backups schedules create --database=analytics --recurrence=daily --retention=7d --project=shop-prod",
	poller.NoticeMissing:        `gcloud firestore backups list --project=shop-prod --filter='database="projects/shop-prod/databases/analytics"' --format="table(name, state, snapshotTime, expireTime, stats.documentCount, stats.sizeBytes)"`,
	poller.NoticeNotAvailable:   `gcloud firestore backups list --project=shop-prod --filter='database="projects/shop-prod/databases/analytics"' --format="table(name, state, snapshotTime, expireTime, stats.documentCount, stats.sizeBytes)"`,
	poller.NoticeStuck:          `gcloud firestore backups list --project=shop-prod --filter='database="projects/shop-prod/databases/analytics"' --format="table(name, state, snapshotTime, expireTime, stats.documentCount, stats.sizeBytes)"`,
	poller.NoticeShortRetention: "gcloud firestore backups schedules update --backup-schedule=091a49a0 --database=analytics --retention=7d --project=shop-prod",
	poller.NoticeShrank:         "gcloud firestore databases restore --source-backup=projects/shop-prod/locations/nam5/backups/0a1b2c3d --destination-database=analytics-restore-20261201 --project=shop-prod",
	poller.NoticeWatchFailing:   "gcloud firestore backups list --project=shop-prod",
}

// TestSlackBackupNotices posts each kind of notice as a bot and through a
// webhook: within Slack's limits (the fake fails the test otherwise), with
// its title, its database in the message text, and its command whole in
// the attachment and its fallback.
func TestSlackBackupNotices(t *testing.T) {
	for kind, n := range notices() {
		for _, webhook := range []bool{false, true} {
			name := string(kind) + "/bot"
			if webhook {
				name = string(kind) + "/webhook"
			}
			t.Run(name, func(t *testing.T) {
				fake := slackfake.New(t, token)
				r := poller.Report{Backup: &n}
				if err := newNotifier(t, fake, webhook).Notify(t.Context(), r); err != nil {
					t.Fatalf("Notify: %v", err)
				}
				m := fake.Only(t)
				checkMessage(t, m, slackutilsx.EscapeMessage(wantCommand[kind]))
				a := m.Attachments[0]
				if got, want := a.Title, present.Title(r); got != want || !strings.HasPrefix(got, "shop-analytics: ") {
					t.Errorf("title = %q; want %q, after the target", got, want)
				}
				if want := "(shop-prod/databases/analytics)"; !strings.HasSuffix(m.Text, want) {
					t.Errorf("text = %q; want it to end with %q", m.Text, want)
				}
				if got, want := a.Color, present.BackupColor(kind); got != want {
					t.Errorf("color = %q; want %q", got, want)
				}
				if v := fake.Violations(); len(v) > 0 {
					t.Errorf("over Slack's limits: %v", v)
				}
			})
		}
	}
}

// TestSlackBackupHostile posts notices whose backup name, database and
// target are 10 KB of text Slack's escaping lengthens: every part within
// Slack's limits, each long value said to be cut, and no command made of
// them.
func TestSlackBackupHostile(t *testing.T) {
	huge := hugeError(10000)
	for kind, n := range notices() {
		t.Run(string(kind), func(t *testing.T) {
			n.Backup.Name = "projects/shop-prod/locations/nam5/backups/" + huge
			n.Previous.Name = n.Backup.Name
			n.Schedule.Name = "projects/shop-prod/databases/" + huge + "/backupSchedules/x"
			n.Database, n.Target = huge, huge
			fake := slackfake.New(t, token)
			fake.SetChannels(channel)
			r := poller.Report{Backup: &n}
			if err := newNotifier(t, fake, false).Notify(t.Context(), r); err != nil {
				t.Fatalf("Notify: %v", err)
			}
			m := fake.Only(t)
			if v := fake.Violations(); len(v) > 0 {
				t.Fatalf("over Slack's limits: %v", v)
			}
			a := m.Attachments[0]
			if !strings.Contains(a.Title, "…") {
				t.Errorf("title %q does not show the target was cut", a.Title)
			}
			unescape := strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">")
			for _, f := range a.Fields {
				if !strings.Contains(f.Value, "permission denied") {
					continue
				}
				if !strings.Contains(f.Value, "characters in all)") {
					t.Errorf("field %q = %.80q…; not said to be cut", f.Title, f.Value)
				}
				// A name is cut where every report cuts it, not only where
				// Slack's limit would.
				if n := len([]rune(unescape.Replace(f.Value))); n > present.MaxName {
					t.Errorf("field %q shows %d characters of a name; want at most %d", f.Title, n, present.MaxName)
				}
			}
			if strings.Contains(a.Text, "`gcloud firestore databases restore") && strings.Contains(a.Text, "friends") {
				t.Errorf("a restore command made of the hostile name: %.200q", a.Text)
			}
			if !strings.Contains(a.Text, "no command: ") {
				t.Errorf("attachment text does not say why there is no command: %.300q", a.Text)
			}
		})
	}
}

// TestSlackTargetChannels sends two targets' reports to their two channels
// and a third target's, and an untargeted one's, to the default channel:
// exports (start message, progress, report in place and its thread reply),
// a staleness alarm and backup notices.
func TestSlackTargetChannels(t *testing.T) {
	const shop, analytics = "#shop-backups", "#analytics-backups"
	fake := slackfake.New(t, token)
	fake.SetChannels(channel, shop, analytics)
	now := running().StartTime.Add(time.Minute)
	n, err := notifier.NewSlackBot(token, channel, time.UTC,
		notifier.WithAPIURL(fake.URL()), notifier.WithHTTPClient(fake.Client()),
		notifier.WithClock(func() time.Time { return now }), fastRetry(&testrig.Sleeps{}),
		notifier.WithTargetChannels(map[string]string{"shop-default": shop, "shop-analytics": analytics}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	// shop-default's export: started, updated, reported in place.
	op := starting()
	op.Target = "shop-default"
	ref, err := n.Started(ctx, poller.Report{Operation: op})
	if err != nil {
		t.Fatalf("Started: %v", err)
	}
	if got, want := ref.Channel, slackfake.ChannelID(shop); got != want {
		t.Errorf("start message in %s; want %s (%s)", got, want, shop)
	}
	run := running()
	run.Target = op.Target
	if err := n.Progress(ctx, ref, poller.Report{Operation: run, Polls: 2}); err != nil {
		t.Fatalf("Progress: %v", err)
	}
	done := successful()
	done.Target = op.Target
	if err := n.Notify(ctx, poller.Report{Outcome: poller.OutcomeSuccess, Operation: done, Message: ref}); err != nil {
		t.Fatalf("Notify in place: %v", err)
	}

	// shop-analytics' notice; a third target's alarm; an untargeted report.
	ready := notices()[poller.NoticeReady]
	if err := n.Notify(ctx, poller.Report{Backup: &ready}); err != nil {
		t.Fatalf("Notify backup: %v", err)
	}
	stale := poller.Stale{Project: "other-proj", Target: "other", LastSuccess: poller.Success{Name: "x"}, After: 36 * time.Hour}
	if err := n.Notify(ctx, poller.Report{Stale: &stale}); err != nil {
		t.Fatalf("Notify stale: %v", err)
	}
	if err := n.Notify(ctx, poller.Report{Outcome: poller.OutcomeFailure, Operation: failed()}); err != nil {
		t.Fatalf("Notify untargeted: %v", err)
	}

	byChannel := make(map[string][]string)
	for _, m := range fake.Messages() {
		kind := "message"
		if m.ThreadTS != "" {
			kind = "reply"
		}
		byChannel[m.ChannelID] = append(byChannel[m.ChannelID], kind+": "+titleOf(m))
	}
	want := map[string][]string{
		slackfake.ChannelID(shop):      {"message: shop-default: Datastore export succeeded", "reply: "},
		slackfake.ChannelID(analytics): {"message: shop-analytics: Managed backup ready"},
		slackfake.ChannelID(channel): {
			"message: No Datastore export of other (other-proj) has succeeded for over 36h",
			"message: Datastore export failed",
		},
	}
	if len(byChannel) != len(want) {
		t.Errorf("messages in %d channels; want %d: %v", len(byChannel), len(want), byChannel)
	}
	for c, w := range want {
		if got := strings.Join(byChannel[c], " | "); got != strings.Join(w, " | ") {
			t.Errorf("channel %s got %q; want %q", c, got, strings.Join(w, " | "))
		}
	}
	top, _ := split(fake.Messages())
	if top[0].Updates != 2 {
		t.Errorf("shop-default's message was updated %d times; want 2 (progress, report)", top[0].Updates)
	}
}

// TestSlackTargetChannelMissing says which channel refused a report.
func TestSlackTargetChannelMissing(t *testing.T) {
	fake := slackfake.New(t, token)
	fake.SetChannels(channel)
	n := newNotifier(t, fake, false, fastRetry(&testrig.Sleeps{}),
		notifier.WithTargetChannels(map[string]string{"shop-analytics": "#gone"}))
	ready := notices()[poller.NoticeReady]
	err := n.Notify(t.Context(), poller.Report{Backup: &ready})
	if err == nil || !strings.Contains(err.Error(), "#gone") || !strings.Contains(err.Error(), "channel_not_found") {
		t.Fatalf("Notify to a missing channel: %v; want channel_not_found naming #gone", err)
	}
}

// TestTargetChannelsNeedABot refuses per-target channels with a webhook,
// and empty names or channels with a bot.
func TestTargetChannelsNeedABot(t *testing.T) {
	fake := slackfake.New(t, token)
	_, err := notifier.NewSlackWebhook(fake.WebhookURL(), nil, notifier.WithTargetChannels(map[string]string{"a": "#a"}))
	if !errors.Is(err, notifier.ErrWebhookChannels) {
		t.Errorf("webhook with target channels: %v; want ErrWebhookChannels", err)
	}
	if _, err := notifier.NewSlackWebhook(fake.WebhookURL(), nil, notifier.WithTargetChannels(nil)); err != nil {
		t.Errorf("webhook with no target channels: %v", err)
	}
	for _, channels := range []map[string]string{{"": "#a"}, {"shop": ""}} {
		if _, err := notifier.NewSlackBot(token, channel, nil, notifier.WithTargetChannels(channels)); err == nil {
			t.Errorf("bot with target channels %v: no error", channels)
		}
		if err := notifier.CheckTargetChannels(channels); err == nil {
			t.Errorf("CheckTargetChannels(%v) = nil", channels)
		}
	}
}

// TestTextBackupNotice writes a missing backup's alarm as plain text: its
// title, its facts aligned, the age by the clock, and each command on its
// own line, whole.
func TestTextBackupNotice(t *testing.T) {
	n := notices()[poller.NoticeMissing]
	n.Backup.SnapshotTime = time.Now().Add(-75 * time.Hour)
	var b strings.Builder
	if err := notifier.NewText(&b, time.UTC).Notify(t.Context(), poller.Report{Backup: &n}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"shop-analytics: No new managed backup for over 2 days\n",
		"  Target:               shop-analytics\n",
		"  Database:             analytics\n",
		"  Newest READY backup:  " + backupName + "\n",
		"  Age:                  3 days 3h\n",
		"  Allowed age:          2 days\n",
		"Backups: " + wantCommand[poller.NoticeMissing] + "\n",
		"Schedules: gcloud firestore backups schedules list --database=analytics --project=shop-prod\n",
		"Restore the newest: gcloud firestore databases restore --source-backup=" + backupName,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
}

// titleOf is the title of m's attachment, "" without one.
func titleOf(m slackfake.Message) string {
	if len(m.Attachments) == 0 {
		return ""
	}
	return m.Attachments[0].Title
}
