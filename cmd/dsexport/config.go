package main

import (
	"flag"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/secrets"
	"github.com/dsexport/dsexport/server"
	"github.com/dsexport/dsexport/tasks"
)

// usageError is a mistake in the command line or the configuration; it exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// setting is one configuration value: an environment variable, optionally
// mirrored by a flag that overrides it. Errors name whichever was used.
type setting struct {
	env, flag, def string
	val            string
	fromFlag       bool
}

// source names where the value came from, for error messages.
func (s *setting) source() string {
	if s.fromFlag {
		return "--" + s.flag
	}
	return s.env
}

// settings are every variable dsexport reads, by environment name.
type settings map[string]*setting

func newSettings(getenv func(string) string) settings {
	all := []*setting{
		{env: "PORT", flag: "port", def: "8080"},
		{env: "GOOGLE_CLOUD_PROJECT", flag: "store-project"},
		{env: "DSEXPORT_PROJECT", flag: "project"},
		{env: "DSEXPORT_OUTPUT_PREFIX", flag: "output-prefix"},
		{env: "DSEXPORT_KINDS", flag: "kinds"},
		{env: "DSEXPORT_NAMESPACES", flag: "namespaces"},
		{env: "DSEXPORT_POLL_INTERVAL", flag: "poll-interval", def: "60s"},
		{env: "DSEXPORT_MAX_POLLS", flag: "max-polls", def: "60"},
		{env: "DSEXPORT_TIMEZONE", flag: "timezone", def: "UTC"},
		{env: "DSEXPORT_ADMIN_ENDPOINT", flag: "admin-endpoint"},
		{env: "DSEXPORT_DISPATCH", flag: "dispatch"},
		{env: "DSEXPORT_POLL_BUDGET", flag: "poll-budget"},
		{env: "DSEXPORT_STALE_AFTER", flag: "stale-after", def: "26h"},
		{env: "DSEXPORT_SHRINK_WARN", flag: "shrink-warn", def: "10%"},
		{env: "DSEXPORT_CRON_WINDOW", flag: "cron-window", def: "1h"},
		{env: "DSEXPORT_STARTS_PER_MINUTE"},
		{env: "DSEXPORT_SLACK_PROGRESS"},
		{env: "DSEXPORT_POLL_SCHEDULE", flag: "poll-schedule", def: "adaptive"},
		{env: "DSEXPORT_POLL_MIN", flag: "poll-min", def: "5s"},
		{env: "DSEXPORT_POLL_MAX", flag: "poll-max", def: "15m"},
		{env: "DSEXPORT_TASKS_QUEUE", flag: "tasks-queue"},
		{env: "DSEXPORT_TASKS_URL", flag: "tasks-url"},
		{env: "DSEXPORT_TASKS_SERVICE_ACCOUNT", flag: "tasks-service-account"},
		{env: "DSEXPORT_TASKS_ENDPOINT"},
		{env: "DSEXPORT_AUDIENCE", flag: "audience"},
		{env: "DSEXPORT_INVOKERS", flag: "invokers"},
		{env: "DSEXPORT_IAP_AUDIENCE", flag: "iap-audience"},
		{env: "DSEXPORT_CLOUD_RUN_IAM"},
		{env: "DSEXPORT_SLACK_TOKEN_SECRET"},
		{env: "DSEXPORT_SLACK_WEBHOOK_SECRET"},
		{env: "DSEXPORT_SECRETS_ENDPOINT"},
		{env: "GAE_SERVICE"},
		{env: "DATASTORE_EMULATOR_HOST"},
		{env: "SLACK_TOKEN"},
		{env: "SLACK_CHANNEL", flag: "slack-channel"},
		{env: "SLACK_WEBHOOK_URL"},
		{env: "SLACK_API_URL"},
		{env: "GAE_ENV"},
		{env: "K_SERVICE"},
	}
	s := settings{}
	for _, st := range all {
		st.val = getenv(st.env)
		s[st.env] = st
	}
	return s
}

// register adds the flags that mirror the named variables to fs.
func (s settings) register(fs *flag.FlagSet, envs ...string) {
	for _, env := range envs {
		st := s[env]
		def := st.val
		if def == "" {
			def = st.def
		}
		fs.Func(st.flag, fmt.Sprintf("%s (default %q)", env, def), func(v string) error {
			st.val, st.fromFlag = v, true
			return nil
		})
	}
}

func (s settings) get(env string) string {
	st := s[env]
	if st.val == "" {
		return st.def
	}
	return st.val
}

// config is the checked configuration.
type config struct {
	port          string
	storeProject  string
	export        poller.ExportRequest
	interval      time.Duration
	maxPolls      int
	loc           *time.Location
	adminEndpoint string
	emulatorHost  string
	slackToken    string
	slackChannel  string
	slackWebhook  string
	slackAPIURL   string
	dispatch      string
	onCloud       bool
	platform      server.Platform
	budget        time.Duration
	tasks         tasks.Config
	auth          server.AuthConfig
	// slackProgress: one Slack message follows each export (bot token only).
	slackProgress bool
	// adaptive polls by the export's progress within [pollMin, pollMax];
	// otherwise every interval.
	adaptive         bool
	pollMin, pollMax time.Duration
	staleAfter       time.Duration
	shrinkWarn       float64
	cronWindow       time.Duration
	// startsPerMinute caps the export starts of a project a minute; zero
	// (not set) is the Admin API's own limit (startsCap).
	startsPerMinute int
	// Secret Manager versions holding the Slack token or webhook URL.
	slackTokenSecret   string
	slackWebhookSecret string
	secretsEndpoint    string
}

// parse checks every setting and returns the first mistake, naming its
// variable or flag. needExport says whether an export must be startable
// (serve, export), which makes the output prefix required.
func (s settings) parse(needExport bool) (*config, error) {
	c := &config{
		port:          s.get("PORT"),
		adminEndpoint: s.get("DSEXPORT_ADMIN_ENDPOINT"),
		emulatorHost:  s.get("DATASTORE_EMULATOR_HOST"),
		slackToken:    s.get("SLACK_TOKEN"),
		slackChannel:  s.get("SLACK_CHANNEL"),
		slackWebhook:  s.get("SLACK_WEBHOOK_URL"),
		slackAPIURL:   s.get("SLACK_API_URL"),
		platform:      server.DetectPlatform(s.get),
	}
	c.onCloud = c.platform != server.Local
	if p, err := strconv.Atoi(c.port); err != nil || p < 0 || p > 65535 {
		return nil, usagef("%s=%q: want a port number", s["PORT"].source(), c.port)
	}
	c.export.Project = s.get("DSEXPORT_PROJECT")
	c.storeProject = s.get("GOOGLE_CLOUD_PROJECT")
	if c.export.Project == "" {
		c.export.Project = c.storeProject
	}
	if c.storeProject == "" {
		c.storeProject = c.export.Project
	}
	if c.export.Project == "" {
		return nil, usagef("%s (or %s) is not set: the project whose Datastore is exported", s["DSEXPORT_PROJECT"].source(), s["GOOGLE_CLOUD_PROJECT"].source())
	}
	// Check each project under the name it was given by.
	for _, env := range []string{"DSEXPORT_PROJECT", "GOOGLE_CLOUD_PROJECT"} {
		if v := s.get(env); v != "" {
			if err := poller.ValidateProject(v); err != nil {
				return nil, usagef("%s: %v", s[env].source(), err)
			}
		}
	}
	c.export.OutputURLPrefix = s.get("DSEXPORT_OUTPUT_PREFIX")
	if c.export.OutputURLPrefix == "" && needExport {
		return nil, usagef("%s is not set: the gs://bucket[/path] exports are written to", s["DSEXPORT_OUTPUT_PREFIX"].source())
	}
	if c.export.OutputURLPrefix != "" {
		if err := poller.ValidatePrefix(c.export.OutputURLPrefix); err != nil {
			return nil, usagef("%s: %v", s["DSEXPORT_OUTPUT_PREFIX"].source(), err)
		}
	}
	c.export.Kinds = splitList(s.get("DSEXPORT_KINDS"))
	c.export.Namespaces = splitList(s.get("DSEXPORT_NAMESPACES"))
	{
		if err := poller.ValidateFilter(c.export.Kinds, c.export.Namespaces); err != nil {
			field, _, _ := strings.Cut(err.Error(), ":")
			src := map[string]string{"kinds": "DSEXPORT_KINDS", "namespaces": "DSEXPORT_NAMESPACES"}[field]
			if src == "" {
				src = "DSEXPORT_KINDS/DSEXPORT_NAMESPACES"
			} else {
				src = s[src].source()
			}
			return nil, usagef("%s: %v", src, err)
		}
	}

	iv := s["DSEXPORT_POLL_INTERVAL"]
	d, err := time.ParseDuration(s.get(iv.env))
	if err != nil || d <= 0 {
		return nil, usagef("%s=%q: want a positive Go duration such as 60s or 2m", iv.source(), s.get(iv.env))
	}
	c.interval = d
	mp := s["DSEXPORT_MAX_POLLS"]
	n, err := strconv.Atoi(s.get(mp.env))
	if err != nil || n <= 0 {
		return nil, usagef("%s=%q: want a positive whole number", mp.source(), s.get(mp.env))
	}
	c.maxPolls = n
	// The Admin API takes 20 export and import requests a minute per
	// project; a higher cap is for runs against a fake API.
	if v := s.get("DSEXPORT_STARTS_PER_MINUTE"); v != "" {
		if c.startsPerMinute, err = strconv.Atoi(v); err != nil || c.startsPerMinute <= 0 {
			return nil, usagef("DSEXPORT_STARTS_PER_MINUTE=%q: want a positive whole number (the Admin API takes 20 a minute)", v)
		}
	}
	for _, d := range []struct {
		env string
		to  *time.Duration
	}{{"DSEXPORT_STALE_AFTER", &c.staleAfter}, {"DSEXPORT_CRON_WINDOW", &c.cronWindow}} {
		st := s[d.env]
		v, err := time.ParseDuration(s.get(d.env))
		if err != nil || v <= 0 {
			return nil, usagef("%s=%q: want a positive Go duration such as 26h", st.source(), s.get(d.env))
		}
		*d.to = v
	}
	if c.cronWindow >= 24*time.Hour {
		// A daily cron would find each day's request within the window of
		// the day before and start nothing.
		return nil, usagef("%s=%s must be shorter than the cron schedule (under 24h)", s["DSEXPORT_CRON_WINDOW"].source(), c.cronWindow)
	}
	sw := s["DSEXPORT_SHRINK_WARN"]
	pct, err := strconv.ParseFloat(strings.TrimSuffix(s.get(sw.env), "%"), 64)
	if err != nil || !(pct >= 0 && pct < 100) {
		return nil, usagef("%s=%q: want a percentage from 0 to 99, such as 10%%", sw.source(), s.get(sw.env))
	}
	c.shrinkWarn = pct / 100
	switch v := s.get("DSEXPORT_POLL_SCHEDULE"); v {
	case "adaptive":
		c.adaptive = true
	case "fixed":
	default:
		return nil, usagef("%s=%q: want adaptive or fixed", s["DSEXPORT_POLL_SCHEDULE"].source(), v)
	}
	for _, d := range []struct {
		env string
		to  *time.Duration
	}{{"DSEXPORT_POLL_MIN", &c.pollMin}, {"DSEXPORT_POLL_MAX", &c.pollMax}} {
		v, err := time.ParseDuration(s.get(d.env))
		if err != nil || v <= 0 {
			return nil, usagef("%s=%q: want a positive Go duration such as 5s or 15m", s[d.env].source(), s.get(d.env))
		}
		*d.to = v
	}
	if c.pollMin > c.pollMax {
		return nil, usagef("%s=%s is longer than %s=%s", s["DSEXPORT_POLL_MIN"].source(), c.pollMin, s["DSEXPORT_POLL_MAX"].source(), c.pollMax)
	}
	tz := s["DSEXPORT_TIMEZONE"]
	if c.loc, err = time.LoadLocation(s.get(tz.env)); err != nil {
		return nil, usagef("%s=%q: not an IANA time zone such as UTC or Asia/Tokyo", tz.source(), s.get(tz.env))
	}
	if c.adminEndpoint != "" {
		if err := checkBaseURL(c.adminEndpoint); err != nil {
			return nil, usagef("%s: %v", s["DSEXPORT_ADMIN_ENDPOINT"].source(), err)
		}
	}

	switch {
	case c.slackToken != "" && c.slackWebhook != "":
		return nil, usagef("SLACK_TOKEN and SLACK_WEBHOOK_URL are both set: choose the bot token or the webhook")
	case c.slackToken != "" && c.slackChannel == "":
		return nil, usagef("%s is not set: SLACK_TOKEN needs the channel to post to", s["SLACK_CHANNEL"].source())
	case c.slackWebhook != "":
		if err := checkBaseURL(c.slackWebhook); err != nil {
			// The webhook URL is a secret: say what is wrong without it.
			return nil, usagef("SLACK_WEBHOOK_URL is not an http(s) URL")
		}
	}
	if c.slackAPIURL != "" {
		if err := checkBaseURL(c.slackAPIURL); err != nil {
			return nil, usagef("SLACK_API_URL: %v", err)
		}
	}

	c.slackTokenSecret = s.get("DSEXPORT_SLACK_TOKEN_SECRET")
	c.slackWebhookSecret = s.get("DSEXPORT_SLACK_WEBHOOK_SECRET")
	c.secretsEndpoint = s.get("DSEXPORT_SECRETS_ENDPOINT")
	switch {
	case c.slackTokenSecret != "" && (c.slackToken != "" || c.slackWebhook != "" || c.slackWebhookSecret != ""):
		return nil, usagef("DSEXPORT_SLACK_TOKEN_SECRET is set with another Slack secret: choose one of SLACK_TOKEN, SLACK_WEBHOOK_URL and their _SECRET forms")
	case c.slackWebhookSecret != "" && (c.slackToken != "" || c.slackWebhook != ""):
		return nil, usagef("DSEXPORT_SLACK_WEBHOOK_SECRET is set with another Slack secret: choose one of SLACK_TOKEN, SLACK_WEBHOOK_URL and their _SECRET forms")
	case c.slackTokenSecret != "" && c.slackChannel == "":
		return nil, usagef("%s is not set: DSEXPORT_SLACK_TOKEN_SECRET needs the channel to post to", s["SLACK_CHANNEL"].source())
	}
	for _, env := range []string{"DSEXPORT_SLACK_TOKEN_SECRET", "DSEXPORT_SLACK_WEBHOOK_SECRET"} {
		if v := s.get(env); v != "" {
			if err := secrets.CheckVersion(v); err != nil {
				return nil, usagef("%s: %v", env, err)
			}
		}
	}

	switch v := s.get("DSEXPORT_SLACK_PROGRESS"); v {
	case "", "update":
		// Only a bot can update a message; a webhook posts the report alone.
		c.slackProgress = c.slackToken != "" || c.slackTokenSecret != ""
	case "off":
	default:
		return nil, usagef("DSEXPORT_SLACK_PROGRESS=%q: want update or off", v)
	}

	ds := s["DSEXPORT_DISPATCH"]
	c.dispatch = s.get(ds.env)
	switch c.dispatch {
	case "":
		// Off App Engine and Cloud Run nothing dies after a response.
		c.dispatch = "inline"
		if c.onCloud {
			c.dispatch = "cloudtasks"
		}
	case "inline", "cloudtasks":
	default:
		return nil, usagef("%s=%q: want inline or cloudtasks", ds.source(), c.dispatch)
	}
	if c.dispatch == "cloudtasks" {
		c.tasks = tasks.Config{
			Queue:          s.get("DSEXPORT_TASKS_QUEUE"),
			Target:         tasks.HTTP,
			URL:            s.get("DSEXPORT_TASKS_URL"),
			ServiceAccount: s.get("DSEXPORT_TASKS_SERVICE_ACCOUNT"),
			// The tasks' ID tokens must carry the audience this service checks.
			Audience: s.get("DSEXPORT_AUDIENCE"),
			Endpoint: s.get("DSEXPORT_TASKS_ENDPOINT"),
		}
		if c.platform == server.AppEngine {
			c.tasks = tasks.Config{
				Queue: c.tasks.Queue, Target: tasks.AppEngine, Endpoint: c.tasks.Endpoint,
				// No version: tasks go to whichever version serves traffic, so a
				// redeploy, which stops the old version, does not strand them.
				Service: s.get("GAE_SERVICE"),
			}
		}
		if c.tasks.Queue == "" {
			return nil, usagef("%s is not set: DSEXPORT_DISPATCH=cloudtasks needs the queue projects/P/locations/L/queues/Q", s["DSEXPORT_TASKS_QUEUE"].source())
		}
	}

	// A poll request may run 24h on App Engine basic scaling and 30m as a
	// Cloud Tasks HTTP task; each default leaves room to hand over.
	bs := s["DSEXPORT_POLL_BUDGET"]
	limit := time.Duration(0)
	switch {
	case c.dispatch == "cloudtasks" && c.tasks.Target == tasks.AppEngine:
		c.budget, limit = 23*time.Hour, tasks.MaxAppEngineDispatchDeadline
	case c.dispatch == "cloudtasks":
		c.budget, limit = 25*time.Minute, tasks.MaxHTTPDispatchDeadline
	}
	if v := s.get(bs.env); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return nil, usagef("%s=%q: want a Go duration such as 25m or 23h (0: no bound)", bs.source(), v)
		}
		c.budget = d
	}
	if c.budget > 0 && c.budget <= c.interval {
		return nil, usagef("%s=%s must be longer than DSEXPORT_POLL_INTERVAL=%s, or no poll fits in a request", bs.source(), c.budget, c.interval)
	}
	if limit > 0 && (c.budget == 0 || c.budget >= limit) {
		return nil, usagef("%s=%s must be under the task's dispatch deadline %s, or the queue gives up on the request first", bs.source(), c.budget, limit)
	}

	iam, err := strconv.ParseBool(orDefault(s.get("DSEXPORT_CLOUD_RUN_IAM"), "false"))
	if err != nil {
		return nil, usagef("DSEXPORT_CLOUD_RUN_IAM=%q: want true or false", s.get("DSEXPORT_CLOUD_RUN_IAM"))
	}
	c.auth = server.AuthConfig{
		Platform:    c.platform,
		Audience:    s.get("DSEXPORT_AUDIENCE"),
		Invokers:    splitList(s.get("DSEXPORT_INVOKERS")),
		IAPAudience: s.get("DSEXPORT_IAP_AUDIENCE"),
		CloudRunIAM: iam,
	}
	return c, nil
}

// startsCap is DSEXPORT_STARTS_PER_MINUTE, or 20, the Admin API's own
// limit, when it is not set.
func (c *config) startsCap() int {
	if c.startsPerMinute > 0 {
		return c.startsPerMinute
	}
	return 20
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// splitList splits a comma-separated list. "(default)" names the default
// namespace, as in gcloud datastore export --namespaces.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		v = strings.TrimSpace(v)
		switch v {
		case "":
		case "(default)":
			out = append(out, "")
		default:
			out = append(out, v)
		}
	}
	return out
}

func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", s)
	}
	return nil
}
