package main

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/dsexport/dsexport/poller"
)

// cronSchedule is an export schedule in the two forms Google's schedulers
// take: App Engine cron's words for cron.yaml, unix cron for Cloud
// Scheduler.
type cronSchedule struct {
	appEngine string // "every day 03:00"
	unix      string // "0 3 * * *"
	// every is the longest wait between two starts, which the status page
	// ages the last export against.
	every time.Duration
}

// weekdays are App Engine cron's day names, by unix cron's numbers.
var weekdays = []string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}

const scheduleForms = `App Engine cron ("every day 03:00", "every monday,thursday 03:00", "every 6 hours", "every 30 minutes") ` +
	`or unix cron of the same forms ("0 3 * * *", "0 3 * * 1,4", "0 */6 * * *", "*/30 * * * *")`

// parseSchedule reads an export schedule written either way and gives
// both. Only schedules that mean the same to both schedulers are taken:
// a daily or weekly time, or an interval that divides the day or the hour
// evenly. An App Engine interval ("every 6 hours") counts from the last
// run and Cloud Scheduler's ("0 */6 * * *") from midnight; the gap is the
// same, so both are taken as one.
func parseSchedule(s string) (cronSchedule, error) {
	f := strings.Fields(s)
	var cs cronSchedule
	var err error
	switch {
	case len(f) == 3 && f[0] == "every":
		cs, err = parseAppEngine(f[1], f[2])
	case len(f) == 5:
		cs, err = parseUnix(f)
	default:
		err = fmt.Errorf("not %s", scheduleForms)
	}
	if err != nil {
		return cs, fmt.Errorf("schedule %s: %w", strconv.Quote(poller.BoundText(s, 128)), err)
	}
	return cs, nil
}

// parseAppEngine reads "every A B": a count and a unit, or days and a time.
func parseAppEngine(a, b string) (cronSchedule, error) {
	if n, err := strconv.Atoi(a); err == nil {
		switch b {
		case "minutes", "mins":
			return minutes(n)
		case "hours":
			return hours(n)
		}
		return cronSchedule{}, fmt.Errorf("%q is not minutes, mins or hours", b)
	}
	h, m, err := clock(b)
	if err != nil {
		return cronSchedule{}, err
	}
	if a == "day" {
		return daily(h, m), nil
	}
	var days []int
	for _, name := range strings.Split(a, ",") {
		d := slices.IndexFunc(weekdays, func(w string) bool { return name == w || name == w[:3] })
		if d < 0 {
			return cronSchedule{}, fmt.Errorf("%q is not day nor a list of week days such as monday,thursday; not %s", a, scheduleForms)
		}
		days = append(days, d)
	}
	return weekly(days, h, m), nil
}

// parseUnix reads the five fields of a unix cron.
func parseUnix(f []string) (cronSchedule, error) {
	minute, hour, dom, month, dow := f[0], f[1], f[2], f[3], f[4]
	if dom != "*" || month != "*" {
		return cronSchedule{}, fmt.Errorf("a day of the month or a month cannot be written in App Engine cron this converts to; use %s", scheduleForms)
	}
	m, mErr := strconv.Atoi(minute)
	h, hErr := strconv.Atoi(hour)
	switch {
	case mErr == nil && hErr == nil:
		if m < 0 || m > 59 || h < 0 || h > 23 {
			return cronSchedule{}, fmt.Errorf("%s %s is not a time of day", minute, hour)
		}
		if dow == "*" {
			return daily(h, m), nil
		}
		var days []int
		for _, d := range strings.Split(dow, ",") {
			n, err := strconv.Atoi(d)
			if err != nil {
				n = slices.IndexFunc(weekdays, func(w string) bool { return strings.EqualFold(d, w[:3]) })
			}
			if n < 0 || n > 7 {
				return cronSchedule{}, fmt.Errorf("%q is not a list of week days 0-7 or sun-sat", dow)
			}
			days = append(days, n%7)
		}
		return weekly(days, h, m), nil
	case dow != "*":
	case hour == "*" && (minute == "*" || strings.HasPrefix(minute, "*/")):
		n := 1
		if minute != "*" {
			var err error
			if n, err = strconv.Atoi(minute[2:]); err != nil {
				return cronSchedule{}, fmt.Errorf("%q is not */N", minute)
			}
		}
		return minutes(n)
	case minute == "0" && (hour == "*" || strings.HasPrefix(hour, "*/")):
		n := 1
		if hour != "*" {
			var err error
			if n, err = strconv.Atoi(hour[2:]); err != nil {
				return cronSchedule{}, fmt.Errorf("%q is not */N", hour)
			}
		}
		return hours(n)
	}
	return cronSchedule{}, fmt.Errorf("not %s", scheduleForms)
}

// clock reads HH:MM.
func clock(s string) (h, m int, err error) {
	hs, ms, ok := strings.Cut(s, ":")
	h, herr := strconv.Atoi(hs)
	m, merr := strconv.Atoi(ms)
	if !ok || herr != nil || merr != nil || len(ms) != 2 || len(hs) > 2 || h < 0 || h > 23 || m < 0 || m > 59 {
		return 0, 0, fmt.Errorf("%q is not a time of day HH:MM", s)
	}
	return h, m, nil
}

func daily(h, m int) cronSchedule {
	return cronSchedule{appEngine: fmt.Sprintf("every day %02d:%02d", h, m), unix: fmt.Sprintf("%d %d * * *", m, h), every: 24 * time.Hour}
}

// weekly is a time on some days of the week; every is the longest gap
// between two of those days.
func weekly(days []int, h, m int) cronSchedule {
	slices.Sort(days)
	days = slices.Compact(days)
	if len(days) == 7 {
		return daily(h, m)
	}
	names, nums := make([]string, len(days)), make([]string, len(days))
	gap := 0
	for i, d := range days {
		names[i], nums[i] = weekdays[d], strconv.Itoa(d)
		next := days[(i+1)%len(days)]
		gap = max(gap, (next-d+6)%7+1)
	}
	return cronSchedule{
		appEngine: fmt.Sprintf("every %s %02d:%02d", strings.Join(names, ","), h, m),
		unix:      fmt.Sprintf("%d %d * * %s", m, h, strings.Join(nums, ",")),
		every:     time.Duration(gap) * 24 * time.Hour,
	}
}

// minutes is every n minutes, n dividing the hour so that unix cron's
// */n has even gaps.
func minutes(n int) (cronSchedule, error) {
	switch {
	case n == 60:
		return hours(1)
	case n < 1 || n > 60 || 60%n != 0:
		return cronSchedule{}, fmt.Errorf("every %d minutes: want a number of minutes that divides the hour (1, 2, 5, 10, 15, 20, 30, 60…)", n)
	}
	unix := fmt.Sprintf("*/%d * * * *", n)
	if n == 1 {
		unix = "* * * * *"
	}
	return cronSchedule{appEngine: fmt.Sprintf("every %d minutes", n), unix: unix, every: time.Duration(n) * time.Minute}, nil
}

// hours is every n hours, n dividing the day.
func hours(n int) (cronSchedule, error) {
	if n < 1 || n > 24 || 24%n != 0 {
		return cronSchedule{}, fmt.Errorf("every %d hours: want a number of hours that divides the day (1, 2, 3, 4, 6, 8, 12, 24)", n)
	}
	unix := fmt.Sprintf("0 */%d * * *", n)
	switch n {
	case 1:
		unix = "0 * * * *"
	case 24:
		unix = "0 0 * * *"
	}
	return cronSchedule{appEngine: fmt.Sprintf("every %d hours", n), unix: unix, every: time.Duration(n) * time.Hour}, nil
}

// cronEntry is one job of App Engine's cron.yaml, in its field order.
type cronEntry struct {
	Description string       `yaml:"description"`
	URL         string       `yaml:"url"`
	Schedule    string       `yaml:"schedule"`
	Timezone    string       `yaml:"timezone,omitempty"`
	Target      string       `yaml:"target,omitempty"`
	Retry       *cronRetries `yaml:"retry_parameters,omitempty"`
}

type cronRetries struct {
	JobRetryLimit     int `yaml:"job_retry_limit"`
	MinBackoffSeconds int `yaml:"min_backoff_seconds"`
	MaxBackoffSeconds int `yaml:"max_backoff_seconds"`
	MaxDoublings      int `yaml:"max_doublings"`
}

// sweepSchedule is how often cron sweeps, in App Engine's words.
const sweepSchedule = "every 10 minutes"

// exportPath is the cron route that starts a target's export.
func exportPath(name string) string { return "/cron/export?target=" + name }

// scheduled is each target with an export schedule, with the schedule in
// both forms; the file's schedules were checked when it was read.
func scheduled(targets []poller.Target) ([]poller.Target, []cronSchedule, error) {
	var ts []poller.Target
	var cs []cronSchedule
	for _, t := range targets {
		if t.Export == nil || t.Schedule == "" {
			continue
		}
		s, err := parseSchedule(t.Schedule)
		if err != nil {
			return nil, nil, err
		}
		ts, cs = append(ts, t), append(cs, s)
	}
	return ts, cs, nil
}

// cronYAML writes App Engine's cron.yaml for the targets: one export job
// per target with a schedule, retried as the repository's cron.yaml is,
// and the sweep. service is the App Engine service the jobs go to, zone
// the time zone of their schedules.
func cronYAML(w io.Writer, targets []poller.Target, service, zone string) error {
	ts, cs, err := scheduled(targets)
	if err != nil {
		return err
	}
	var entries []cronEntry
	for i, t := range ts {
		entries = append(entries, cronEntry{
			Description: fmt.Sprintf("export of target %s: %s/%s", t.Name, t.Project, dbName(t.Database)),
			URL:         exportPath(t.Name), Schedule: cs[i].appEngine, Timezone: zone, Target: service,
			// A start that fails (5xx from dsexport, e.g. the Admin API
			// unavailable) is tried again: 1, 2, then 4 minutes later.
			Retry: &cronRetries{JobRetryLimit: 3, MinBackoffSeconds: 60, MaxBackoffSeconds: 600, MaxDoublings: 2},
		})
	}
	entries = append(entries, cronEntry{
		Description: "resume orphaned polls, retry pending reports, staleness and backup alarms",
		URL:         "/cron/sweep", Schedule: sweepSchedule, Target: service,
	})
	var buf bytes.Buffer
	buf.WriteString("# Written by dsexport cron-yaml from the targets file; deploy with\n" +
		"#   gcloud app deploy cron.yaml\n" +
		"# App Engine sends X-Appengine-Cron: true, which dsexport requires on /cron/*.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(map[string][]cronEntry{"cron": entries}); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	_, err = w.Write(buf.Bytes())
	return err
}

// schedulerLines writes one line per scheduled target for
// deploy/cloudrun.sh: NAME, the unix cron, and the path to call, separated
// by tabs. The sweep is not listed: the script schedules it itself.
func schedulerLines(w io.Writer, targets []poller.Target) error {
	ts, cs, err := scheduled(targets)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	for i, t := range ts {
		fmt.Fprintf(&buf, "%s\t%s\t%s\n", t.Name, cs[i].unix, exportPath(t.Name))
	}
	_, err = w.Write(buf.Bytes())
	return err
}

// cronYAMLCmd is dsexport cron-yaml: it reads only the targets file, so it
// runs where the service's other settings are not at hand (a deploy).
func cronYAMLCmd(s settings, scheduler bool, service, zone string, stdout io.Writer) error {
	src := s["DSEXPORT_CONFIG"]
	if src.val == "" {
		return usagef("cron-yaml needs %s (--config): with no targets file, cron.yaml in the repository is the schedule", src.env)
	}
	if _, err := time.LoadLocation(zone); err != nil {
		return usagef("--time-zone=%q: not an IANA time zone such as UTC or Asia/Tokyo", zone)
	}
	f, err := readTargetsFile(configSource(s), src.val)
	if err != nil {
		return err
	}
	if scheduler {
		return schedulerLines(stdout, f.targets)
	}
	return cronYAML(stdout, f.targets, service, zone)
}
