package main

import (
	"cmp"
	"errors"
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
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }

func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// setting is one configuration value: an environment variable, optionally
// mirrored by a flag that overrides it. Errors name whichever was used.
type setting struct {
	env, flag, def string
	// help says what the setting is for -h. defText says the default in
	// words when it is not one value (it depends on where dsexport runs, or
	// on another setting).
	help, defText string
	val           string
	fromFlag      bool
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

// allSettings is the table of every variable: README.md's configuration
// table, in the same order. A word in backquotes is the flag's placeholder.
func allSettings() []*setting {
	return []*setting{
		{env: "PORT", flag: "port", def: "8080", help: "listen `port` of serve"},
		{env: "DSEXPORT_CONFIG", flag: "config", help: "YAML `file` listing the targets (store:, targets:), instead of the single target of DSEXPORT_PROJECT and DSEXPORT_OUTPUT_PREFIX", defText: "none"},
		{env: "GOOGLE_CLOUD_PROJECT", flag: "store-project", help: "`project` whose Datastore holds dsexport's own records", defText: "the file's store.project, else the exported project"},
		{env: "DSEXPORT_STORE_DATABASE", flag: "store-database", help: "`database` of the store project that holds dsexport's own records, never one it exports; (default) reads the records of earlier versions", defText: "the file's store.database, else dsexport"},
		{env: "DSEXPORT_PROJECT", flag: "project", help: "`project` whose Datastore is exported", defText: "the store project"},
		{env: "DSEXPORT_OUTPUT_PREFIX", flag: "output-prefix", help: "`gs://bucket[/path]` the export is written under, required to export"},
		{env: "DSEXPORT_KINDS", flag: "kinds", help: "comma-separated `kinds` to export", defText: "all"},
		{env: "DSEXPORT_NAMESPACES", flag: "namespaces", help: "comma-separated `namespaces` to export, (default) for the default one", defText: "all"},
		{env: "DSEXPORT_POLL_SCHEDULE", flag: "poll-schedule", def: "adaptive", help: "`schedule`: adaptive (by the export's progress) or fixed (every poll interval)"},
		{env: "DSEXPORT_POLL_INTERVAL", flag: "poll-interval", def: "60s", help: "`duration` between polls of the fixed schedule; times max polls, the wall-clock budget of either"},
		{env: "DSEXPORT_MAX_POLLS", flag: "max-polls", def: "60", help: "`polls` (GETs) per operation at most, before the timeout report"},
		{env: "DSEXPORT_POLL_MIN", flag: "poll-min", def: "5s", help: "shortest `duration` the adaptive schedule waits"},
		{env: "DSEXPORT_POLL_MAX", flag: "poll-max", def: "15m", help: "longest `duration` the adaptive schedule waits"},
		{env: "DSEXPORT_TIMEZONE", flag: "timezone", def: "UTC", help: "IANA `zone` for times in reports"},
		{env: "DSEXPORT_STALE_AFTER", flag: "stale-after", def: "26h", help: "post the staleness alarm when no export succeeded for this `duration`"},
		{env: "DSEXPORT_SHRINK_WARN", flag: "shrink-warn", def: "10%", help: "warn when a success holds this `percentage` (0 to 99) fewer entities than the previous one"},
		{env: "DSEXPORT_STARTS_PER_MINUTE", def: "20"},
		{env: "DSEXPORT_VERIFY", flag: "verify", def: "on", help: "`on` or off: read each successful export's files before its report and compare them with the previous export and the source's counts"},
		{env: "DSEXPORT_VERIFY_TIMEOUT", flag: "verify-timeout", def: "3m", help: "longest `duration` the check of an export's files takes before the report says it was not verified in time"},
		{env: "DSEXPORT_CRON_WINDOW", flag: "cron-window", def: "1h", help: "a cron start this `duration` after the previous one of the same filter is a retry of it (under 24h)"},
		{env: "DSEXPORT_ADMIN_ENDPOINT", flag: "admin-endpoint", help: "base `URL` of the Datastore Admin API, a fake or the emulator, used without authentication", defText: "Google's"},
		{env: "DSEXPORT_PROJECT_NUMBER", flag: "project-number", help: "the `number` of every target's project, or project=number pairs separated by commas, for the preflight's check of the Firestore service agent", defText: "none: that check is skipped"},
		{env: "DSEXPORT_FIRESTORE_ENDPOINT", flag: "firestore-endpoint", help: "base `URL` of the Firestore Admin API (named databases, managed backups), a fake, used without authentication", defText: "Google's"},
		{env: "DSEXPORT_DISPATCH", flag: "dispatch", help: "`hand-off` from the trigger to the poller: inline or cloudtasks", defText: "cloudtasks on App Engine and Cloud Run, else inline"},
		{env: "DSEXPORT_POLL_BUDGET", flag: "poll-budget", help: "longest `duration` one POST /tasks/poll works before it enqueues its continuation", defText: "23h on App Engine, 25m for HTTP tasks, none inline"},
		{env: "DSEXPORT_SWEEP_EVERY", flag: "sweep-every", def: "1m", help: "`duration` between the sweeps an inline serve makes by itself (with cloudtasks, cron sweeps)"},
		{env: "DSEXPORT_TASKS_QUEUE", flag: "tasks-queue", help: "Cloud Tasks `queue` projects/P/locations/L/queues/Q, required with cloudtasks"},
		{env: "DSEXPORT_TASKS_URL", flag: "tasks-url", help: "base `URL` of this service, where HTTP tasks are sent, required with cloudtasks off App Engine"},
		{env: "DSEXPORT_TASKS_SERVICE_ACCOUNT", flag: "tasks-service-account", help: "service account `email` whose OIDC token HTTP tasks carry, required with cloudtasks off App Engine"},
		{env: "DSEXPORT_TASKS_ENDPOINT"},
		{env: "DSEXPORT_RESOURCEMANAGER_ENDPOINT"},
		{env: "GAE_SERVICE"},
		{env: "DSEXPORT_AUDIENCE", flag: "audience", help: "`audience` of the ID tokens this service accepts, also that of the tasks' tokens, required on Cloud Run; on App Engine, this or the IAP audience"},
		{env: "DSEXPORT_INVOKERS", flag: "invokers", help: "comma-separated `emails` allowed to call with an ID token or IAP JWT, required on App Engine and Cloud Run"},
		{env: "DSEXPORT_IAP_AUDIENCE", flag: "iap-audience", help: "`audience` of the IAP JWTs accepted on App Engine, /projects/NUMBER/apps/PROJECT_ID", defText: "none accepted"},
		{env: "DSEXPORT_CLOUD_RUN_IAM", def: "false"},
		{env: "DATASTORE_EMULATOR_HOST"},
		{env: "SLACK_TOKEN"},
		{env: "DSEXPORT_SLACK_TOKEN_SECRET"},
		{env: "SLACK_CHANNEL", flag: "slack-channel", help: "Slack `channel` the bot posts to"},
		{env: "SLACK_WEBHOOK_URL"},
		{env: "DSEXPORT_SLACK_PROGRESS", def: "update"},
		{env: "DSEXPORT_SLACK_WEBHOOK_SECRET"},
		{env: "DSEXPORT_SECRETS_ENDPOINT"},
		{env: "SLACK_API_URL"},
		{env: "GAE_ENV"},
		{env: "K_SERVICE"},
	}
}

func newSettings(getenv func(string) string) settings {
	s := settings{}
	for _, st := range allSettings() {
		st.val = getenv(st.env)
		s[st.env] = st
	}
	return s
}

// register adds the flags that mirror the named variables to fs. Their help
// says what each is for and shows the built-in default, not the value the
// environment gives now.
func (s settings) register(fs *flag.FlagSet, envs ...string) {
	for _, env := range envs {
		st := s[env]
		usage := st.help + " (" + env
		if d := cmp.Or(st.def, st.defText); d != "" {
			usage += "; default " + d
		}
		fs.Func(st.flag, usage+")", func(v string) error {
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

// config is the checked configuration, in one section for each part of
// dsexport it configures.
type config struct {
	port     string
	platform server.Platform
	// onCloud: App Engine or Cloud Run, where logs are JSON for Cloud Logging.
	onCloud       bool
	loc           *time.Location
	adminEndpoint string
	// firestoreEndpoint is the Firestore Admin API's (DSEXPORT_FIRESTORE_ENDPOINT).
	firestoreEndpoint string
	// resourceManagerEndpoint is Cloud Resource Manager's, for the drill
	// permissions check (DSEXPORT_RESOURCEMANAGER_ENDPOINT, tests only).
	resourceManagerEndpoint string
	emulatorHost            string

	export exportSection
	// targets are the databases dsexport looks after: the file's, or with
	// no file the one the variables define (Name "", as records of earlier
	// versions have it; with no output prefix, for reading, not exported).
	targets []poller.Target
	// storeProject and storeDatabase are where dsexport keeps its records.
	storeProject, storeDatabase string
	// configSource names the targets file in errors ("" : none).
	configSource string

	polling  pollingSection
	slack    slackSection
	dispatch dispatchSection
	auth     server.AuthConfig
}

// exportSection is what the variables export and where dsexport keeps its
// records. With a targets file it holds only the store's project: the
// targets say what is exported.
type exportSection struct {
	// ExportRequest is the export that serve's cron and export start:
	// project, output prefix, kinds and namespaces.
	poller.ExportRequest
	// storeProject is config.storeProject, kept for the code not yet
	// reading targets.
	storeProject string
}

// pollingSection is how often an export is polled and what its reports warn of.
type pollingSection struct {
	// adaptive polls by the export's progress within [min, max]; otherwise
	// every interval.
	adaptive bool
	interval time.Duration
	maxPolls int
	min, max time.Duration
	// budget bounds one poll request (0: none); see parseBudget.
	budget     time.Duration
	cronWindow time.Duration
	staleAfter time.Duration
	shrinkWarn float64
	// verify reads each success's files before its report, for at most
	// verifyTimeout (DSEXPORT_VERIFY, DSEXPORT_VERIFY_TIMEOUT).
	verify        bool
	verifyTimeout time.Duration
	// startsPerMinute caps the export starts of a project a minute.
	startsPerMinute int
}

// slackSection is where reports go; all empty means standard output.
type slackSection struct {
	token, channel, webhook, apiURL string
	// Secret Manager versions holding the token or the webhook URL.
	tokenSecret, webhookSecret, secretsEndpoint string
	// progress: one Slack message follows each export (bot token only).
	progress bool
}

// dispatchSection is how the trigger hands an export to the poller.
type dispatchSection struct {
	mode  string       // "inline" or "cloudtasks"
	tasks tasks.Config // with cloudtasks
	// sweepEvery is how often an inline serve sweeps by itself: with no
	// Cloud Tasks there is no cron to sweep either.
	sweepEvery time.Duration
}

// purpose is what a command needs of the configuration.
type purpose int

const (
	forReading purpose = iota // status, list: the store
	forExport                 // export: also an export to start
	forServe                  // serve: also callers to authenticate
)

// parse checks every setting the purpose needs, before anything is built,
// and returns the first mistake as a *usageError naming its variable or flag.
func (s settings) parse(p purpose) (*config, error) {
	c := &config{platform: server.DetectPlatform(s.get), emulatorHost: s.get("DATASTORE_EMULATOR_HOST")}
	c.onCloud = c.platform != server.Local
	var err error
	if c.port, err = s.parsePort(); err != nil {
		return nil, err
	}
	channels, err := s.parseTargets(c, p >= forExport)
	if err != nil {
		return nil, err
	}
	if c.loc, err = s.parseTimezone(); err != nil {
		return nil, err
	}
	if c.adminEndpoint, err = s.baseURL("DSEXPORT_ADMIN_ENDPOINT"); err != nil {
		return nil, err
	}
	if c.firestoreEndpoint, err = s.baseURL("DSEXPORT_FIRESTORE_ENDPOINT"); err != nil {
		return nil, err
	}
	if c.resourceManagerEndpoint, err = s.baseURL("DSEXPORT_RESOURCEMANAGER_ENDPOINT"); err != nil {
		return nil, err
	}
	if c.slack, err = s.parseSlack(); err != nil {
		return nil, err
	}
	if err := s.checkChannels(c, channels, p >= forExport); err != nil {
		return nil, err
	}
	if p >= forExport {
		if err := c.checkStoreApart(); err != nil {
			return nil, err
		}
	}
	if c.dispatch, err = s.parseDispatch(c.platform); err != nil {
		return nil, err
	}
	if c.polling, err = s.parsePolling(c.dispatch); err != nil {
		return nil, err
	}
	if c.auth, err = s.parseAuth(c.platform, p == forServe); err != nil {
		return nil, err
	}
	return c, nil
}

func (s settings) parsePort() (string, error) {
	v := s.get("PORT")
	if p, err := strconv.Atoi(v); err != nil || p < 0 || p > 65535 {
		return "", usagef("%s=%q: want a port number", s["PORT"].source(), v)
	}
	return v, nil
}

func (s settings) parseTimezone() (*time.Location, error) {
	v := s.get("DSEXPORT_TIMEZONE")
	loc, err := time.LoadLocation(v)
	if err != nil {
		return nil, usagef("%s=%q: not an IANA time zone such as UTC or Asia/Tokyo", s["DSEXPORT_TIMEZONE"].source(), v)
	}
	return loc, nil
}

// parseExport reads the export section. needPrefix: an export must be
// startable (serve, export), which makes the output prefix required.
func (s settings) parseExport(needPrefix bool) (exportSection, error) {
	e := exportSection{storeProject: s.get("GOOGLE_CLOUD_PROJECT")}
	e.Project = s.get("DSEXPORT_PROJECT")
	if e.Project == "" {
		e.Project = e.storeProject
	}
	if e.storeProject == "" {
		e.storeProject = e.Project
	}
	if e.Project == "" {
		return e, usagef("%s (or %s) is not set: the project whose Datastore is exported", s["DSEXPORT_PROJECT"].source(), s["GOOGLE_CLOUD_PROJECT"].source())
	}
	// Check each project under the name it was given by.
	for _, env := range []string{"DSEXPORT_PROJECT", "GOOGLE_CLOUD_PROJECT"} {
		if v := s.get(env); v != "" {
			if err := poller.ValidateProject(v); err != nil {
				return e, s.fieldError(err, map[string]string{"project": s[env].source()})
			}
		}
	}
	e.OutputURLPrefix = s.get("DSEXPORT_OUTPUT_PREFIX")
	prefix := s["DSEXPORT_OUTPUT_PREFIX"].source()
	if e.OutputURLPrefix == "" && needPrefix {
		return e, usagef("%s is not set: the gs://bucket[/path] exports are written to", prefix)
	}
	if e.OutputURLPrefix != "" {
		if err := poller.ValidatePrefix(e.OutputURLPrefix); err != nil {
			return e, s.fieldError(err, map[string]string{"outputUrlPrefix": prefix})
		}
	}
	e.Kinds = splitList(s.get("DSEXPORT_KINDS"))
	e.Namespaces = splitList(s.get("DSEXPORT_NAMESPACES"))
	if err := poller.ValidateFilter(e.Kinds, e.Namespaces); err != nil {
		kinds, namespaces := s["DSEXPORT_KINDS"].source(), s["DSEXPORT_NAMESPACES"].source()
		return e, s.fieldError(err, map[string]string{
			"kinds": kinds, "namespaces": namespaces, "kinds × namespaces": kinds + " × " + namespaces,
		})
	}
	return e, nil
}

// configSource names the targets file in errors: DSEXPORT_CONFIG=path or
// --config=path.
func configSource(s settings) string {
	st := s["DSEXPORT_CONFIG"]
	return st.source() + "=" + poller.BoundText(st.val, 256)
}

// targetLines are the lines of the file's slackChannel fields, by target,
// for errors found once the Slack settings are read (nil with no file).
type targetLines struct {
	src   string
	lines []int
}

// parseTargets fills in c's targets and store: from the file DSEXPORT_CONFIG
// names, or from the variables as before there were files.
func (s settings) parseTargets(c *config, needExport bool) (targetLines, error) {
	if s.get("DSEXPORT_CONFIG") == "" {
		var err error
		if c.export, err = s.parseExport(needExport); err != nil {
			return targetLines{}, err
		}
		t := poller.Target{Project: c.export.Project, Database: poller.DefaultDatabase}
		if c.export.OutputURLPrefix != "" {
			// The request as before targets: Database "" is (default), and
			// records keep Target "".
			req := c.export.ExportRequest
			t.Export = &req
		}
		c.targets = []poller.Target{t}
		c.storeProject = c.export.storeProject
		c.storeDatabase, err = s.storeDatabase("")
		return targetLines{}, err
	}
	src := configSource(s)
	c.configSource = src
	// The file says what is exported; a variable that would say it too is
	// left over from before the file and would be ignored.
	for _, env := range []string{"DSEXPORT_PROJECT", "DSEXPORT_OUTPUT_PREFIX", "DSEXPORT_KINDS", "DSEXPORT_NAMESPACES"} {
		if s.get(env) != "" {
			return targetLines{}, usagef("%s is set with %s: the file's targets say what is exported; unset %s", s[env].source(), src, s[env].source())
		}
	}
	f, err := readTargetsFile(src, s.get("DSEXPORT_CONFIG"))
	if err != nil {
		return targetLines{}, err
	}
	c.targets = f.targets
	// A flag wins over the file, the file over the variable.
	gcp := s["GOOGLE_CLOUD_PROJECT"]
	switch {
	case gcp.fromFlag || f.storeProject == "":
		c.storeProject = gcp.val
		if c.storeProject == "" {
			return targetLines{}, usagef("%s: store.project is not set, nor %s: the project whose database keeps dsexport's records", src, gcp.source())
		}
		if err := poller.ValidateProject(c.storeProject); err != nil {
			return targetLines{}, s.fieldError(err, map[string]string{"project": gcp.source()})
		}
	default:
		c.storeProject = f.storeProject
	}
	c.export = exportSection{storeProject: c.storeProject}
	if c.storeDatabase, err = s.storeDatabase(f.storeDatabase); err != nil {
		return targetLines{}, err
	}
	return targetLines{src: src, lines: f.channelLines}, nil
}

// storeDatabase is the store's database: --store-database, else the
// file's store.database (fromFile, already checked), else
// DSEXPORT_STORE_DATABASE, else store.DefaultDatabase.
func (s settings) storeDatabase(fromFile string) (string, error) {
	st := s["DSEXPORT_STORE_DATABASE"]
	if fromFile != "" && !st.fromFlag {
		return fromFile, nil
	}
	if st.val == "" {
		return defaultStoreDatabase, nil
	}
	if err := validateDatabase(st.val); err != nil {
		return "", s.fieldError(err, map[string]string{"database": st.source()})
	}
	return st.val, nil
}

// checkChannels checks the targets' Slack channels against the Slack
// settings: only a bot token posts to a channel of its choosing; a
// webhook posts to its own. needToken: reports are to be sent (serve,
// export); list and status send none and may run without the token.
func (s settings) checkChannels(c *config, tl targetLines, needToken bool) error {
	bot := c.slack.token != "" || c.slack.tokenSecret != ""
	webhook := c.slack.webhook != "" || c.slack.webhookSecret != ""
	for i, t := range c.targets {
		if t.Channel == "" || bot {
			continue
		}
		where := fmt.Sprintf("%s: line %d: targets[%d].slackChannel", tl.src, tl.lines[i], i)
		switch {
		case webhook:
			hook := "SLACK_WEBHOOK_URL"
			if c.slack.webhookSecret != "" {
				hook = "DSEXPORT_SLACK_WEBHOOK_SECRET"
			}
			return usagef("%s: %s needs a Slack bot token (SLACK_TOKEN or DSEXPORT_SLACK_TOKEN_SECRET) instead of %s: a webhook posts only to its own channel", where, strconv.Quote(t.Channel), hook)
		case needToken:
			return usagef("%s: %s needs a Slack bot token to post with: set SLACK_TOKEN or DSEXPORT_SLACK_TOKEN_SECRET", where, strconv.Quote(t.Channel))
		}
	}
	return nil
}

// defaultStoreDatabase is store.DefaultDatabase, the database dsexport's
// records live in unless configured otherwise; the store package is not
// imported here for one constant.
const defaultStoreDatabase = "dsexport"

// checkStoreApart refuses a store inside a database dsexport exports:
// every export would carry dsexport's records, and importing one would
// roll them back (an old "running, unreported" record the sweep resumes
// and reports again). A database only watched for managed backups is not
// refused: a backup is restored into a new database, never over the store.
// The check holds with the emulator too: it is a mistake in the
// configuration wherever it runs.
func (c *config) checkStoreApart() error {
	store := poller.Scope(c.storeProject, c.storeDatabase)
	// Every target's database, exported or only watched: a drill writes
	// into none of them.
	targetOf := map[string]string{}
	for _, t := range c.targets {
		targetOf[t.Scope()] = t.Name
	}
	for _, t := range c.targets {
		if t.Drill == nil || t.Drill.Database == "" {
			continue
		}
		// An import writes over what the scratch database holds: never the
		// store's database, nor any target's.
		project := t.Drill.Project
		if project == "" {
			project = t.Project
		}
		scratch := poller.Scope(project, t.Drill.Database)
		if scratch == store {
			return usagef("%s: target %q: drill.database %s/%s is dsexport's store: a drill's import would write over its records; leave drill.database out to have dsexport create a scratch database",
				c.configSource, t.Name, project, dbName(t.Drill.Database))
		}
		if other, ok := targetOf[scratch]; ok {
			return usagef("%s: target %q: drill.database %s/%s is target %q's database: a drill's import would write over it; leave drill.database out to have dsexport create a scratch database",
				c.configSource, t.Name, project, dbName(t.Drill.Database), other)
		}
	}
	for _, t := range c.targets {
		if t.Export == nil || poller.Scope(t.Project, t.Database) != store {
			continue
		}
		what := fmt.Sprintf("target %q", t.Name)
		if t.Name == "" {
			what = "DSEXPORT_PROJECT"
		}
		return usagef("store %s/%s is the database %s exports: its backups would carry dsexport's records; set store.database (DSEXPORT_STORE_DATABASE) to a database of its own, e.g. %s",
			c.storeProject, dbName(c.storeDatabase), what, defaultStoreDatabase)
	}
	return nil
}

func dbName(database string) string {
	if poller.IsDefaultDatabase(database) {
		return poller.DefaultDatabase
	}
	return database
}

// target is the configured target of that name; "" names the only one.
func (c *config) target(name string) (poller.Target, error) {
	if name == "" && len(c.targets) == 1 {
		return c.targets[0], nil
	}
	var names []string
	for _, t := range c.targets {
		if name != "" && t.Name == name {
			return t, nil
		}
		names = append(names, strconv.Quote(t.Name))
	}
	known := strings.Join(names, ", ")
	switch {
	case name == "":
		return poller.Target{}, usagef("%d targets are configured: name one of %s", len(c.targets), known)
	case len(c.targets) == 1 && c.targets[0].Name == "":
		return poller.Target{}, usagef("no target %s: with no DSEXPORT_CONFIG there is one target, with no name", strconv.Quote(poller.BoundText(name, 64)))
	}
	return poller.Target{}, usagef("no target %s: the configured targets are %s", strconv.Quote(poller.BoundText(name, 64)), known)
}

// fieldError names the variable or flag behind a *poller.FieldError, from
// sources, which maps the request's field names to them.
func (s settings) fieldError(err error, sources map[string]string) error {
	var fe *poller.FieldError
	if !errors.As(err, &fe) {
		return &usageError{err: err}
	}
	src, ok := sources[fe.Field]
	if !ok {
		src = fe.Field
	}
	return usagef("%s: %w", src, fe.Err)
}

// parsePolling reads the polling section. The poll budget's default and
// limit depend on the dispatch.
func (s settings) parsePolling(d dispatchSection) (pollingSection, error) {
	var p pollingSection
	switch v := s.get("DSEXPORT_POLL_SCHEDULE"); v {
	case "adaptive":
		p.adaptive = true
	case "fixed":
	default:
		return p, usagef("%s=%q: want adaptive or fixed", s["DSEXPORT_POLL_SCHEDULE"].source(), v)
	}
	var err error
	for _, d := range []struct {
		env, examples string
		to            *time.Duration
	}{
		{"DSEXPORT_POLL_INTERVAL", "60s or 2m", &p.interval},
		{"DSEXPORT_POLL_MIN", "5s or 15m", &p.min},
		{"DSEXPORT_POLL_MAX", "5s or 15m", &p.max},
		{"DSEXPORT_STALE_AFTER", "26h", &p.staleAfter},
		{"DSEXPORT_CRON_WINDOW", "1h", &p.cronWindow},
		{"DSEXPORT_VERIFY_TIMEOUT", "3m or 10m", &p.verifyTimeout},
	} {
		if *d.to, err = s.positiveDuration(d.env, d.examples); err != nil {
			return p, err
		}
	}
	if p.maxPolls, err = s.positiveInt("DSEXPORT_MAX_POLLS", ""); err != nil {
		return p, err
	}
	// The Admin API takes 20 export and import requests a minute per
	// project; a higher cap is for runs against a fake API.
	if p.startsPerMinute, err = s.positiveInt("DSEXPORT_STARTS_PER_MINUTE", " (the Admin API takes 20 a minute)"); err != nil {
		return p, err
	}
	if p.min > p.max {
		return p, usagef("%s=%s is longer than %s=%s", s["DSEXPORT_POLL_MIN"].source(), p.min, s["DSEXPORT_POLL_MAX"].source(), p.max)
	}
	if p.cronWindow >= 24*time.Hour {
		// A daily cron would find each day's request within the window of
		// the day before and start nothing.
		return p, usagef("%s=%s must be shorter than the cron schedule (under 24h)", s["DSEXPORT_CRON_WINDOW"].source(), p.cronWindow)
	}
	if p.shrinkWarn, err = s.parseShrinkWarn(); err != nil {
		return p, err
	}
	switch v := s.get("DSEXPORT_VERIFY"); v {
	case "on":
		p.verify = true
	case "off":
	default:
		return p, usagef("%s=%q: want on or off", s["DSEXPORT_VERIFY"].source(), v)
	}
	if p.budget, err = s.parseBudget(p.interval, d); err != nil {
		return p, err
	}
	// The content check runs in the poll request that saw the end, after
	// the budget: both must fit the task's dispatch deadline.
	if limit := dispatchLimit(d); p.verify && p.budget > 0 && limit > 0 && p.budget+p.verifyTimeout >= limit {
		return p, usagef("%s=%s and %s=%s add up to the task's dispatch deadline %s or more: the content check runs in the poll request after its budget; lower one of them",
			s["DSEXPORT_POLL_BUDGET"].source(), p.budget, s["DSEXPORT_VERIFY_TIMEOUT"].source(), p.verifyTimeout, limit)
	}
	return p, nil
}

// dispatchLimit is the dispatch deadline of a poll task (0: none, inline).
func dispatchLimit(d dispatchSection) time.Duration {
	switch {
	case d.mode == "cloudtasks" && d.tasks.Target == tasks.AppEngine:
		return tasks.MaxAppEngineDispatchDeadline
	case d.mode == "cloudtasks":
		return tasks.MaxHTTPDispatchDeadline
	}
	return 0
}

func (s settings) positiveDuration(env, examples string) (time.Duration, error) {
	v := s.get(env)
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, usagef("%s=%q: want a positive Go duration such as %s", s[env].source(), v, examples)
	}
	return d, nil
}

func (s settings) positiveInt(env, why string) (int, error) {
	v := s.get(env)
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, usagef("%s=%q: want a positive whole number%s", s[env].source(), v, why)
	}
	return n, nil
}

// parseShrinkWarn reads a percentage, "10%" or "10", as a fraction.
func (s settings) parseShrinkWarn() (float64, error) {
	v := s.get("DSEXPORT_SHRINK_WARN")
	pct, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
	if err != nil || !(pct >= 0 && pct < 100) {
		return 0, usagef("%s=%q: want a percentage from 0 to 99, such as 10%%", s["DSEXPORT_SHRINK_WARN"].source(), v)
	}
	return pct / 100, nil
}

// parseBudget reads the poll budget. A poll request may run 24h on App
// Engine basic scaling and 30m as a Cloud Tasks HTTP task; each default
// leaves room to hand over.
func (s settings) parseBudget(interval time.Duration, d dispatchSection) (time.Duration, error) {
	src := s["DSEXPORT_POLL_BUDGET"].source()
	var budget, limit time.Duration
	switch {
	case d.mode == "cloudtasks" && d.tasks.Target == tasks.AppEngine:
		budget, limit = 23*time.Hour, tasks.MaxAppEngineDispatchDeadline
	case d.mode == "cloudtasks":
		budget, limit = 25*time.Minute, tasks.MaxHTTPDispatchDeadline
	}
	if v := s.get("DSEXPORT_POLL_BUDGET"); v != "" {
		var err error
		if budget, err = time.ParseDuration(v); err != nil || budget < 0 {
			return 0, usagef("%s=%q: want a Go duration such as 25m or 23h (0: no bound)", src, v)
		}
	}
	if budget > 0 && budget <= interval {
		return 0, usagef("%s=%s must be longer than %s=%s, or no poll fits in a request", src, budget, s["DSEXPORT_POLL_INTERVAL"].source(), interval)
	}
	if limit > 0 && (budget == 0 || budget >= limit) {
		return 0, usagef("%s=%s must be under the task's dispatch deadline %s, or the queue gives up on the request first", src, budget, limit)
	}
	return budget, nil
}

// parseSlack reads the Slack section. The token and the webhook URL are
// secrets: no message shows them.
func (s settings) parseSlack() (slackSection, error) {
	sl := slackSection{
		token: s.get("SLACK_TOKEN"), channel: s.get("SLACK_CHANNEL"), webhook: s.get("SLACK_WEBHOOK_URL"),
		tokenSecret: s.get("DSEXPORT_SLACK_TOKEN_SECRET"), webhookSecret: s.get("DSEXPORT_SLACK_WEBHOOK_SECRET"),
		secretsEndpoint: s.get("DSEXPORT_SECRETS_ENDPOINT"),
	}
	if err := sl.checkSources(s["SLACK_CHANNEL"].source()); err != nil {
		return sl, err
	}
	if sl.webhook != "" && checkBaseURL(sl.webhook) != nil {
		return sl, usagef("SLACK_WEBHOOK_URL is not an http(s) URL")
	}
	var err error
	if sl.apiURL, err = s.baseURL("SLACK_API_URL"); err != nil {
		return sl, err
	}
	for _, env := range []string{"DSEXPORT_SLACK_TOKEN_SECRET", "DSEXPORT_SLACK_WEBHOOK_SECRET"} {
		if v := s.get(env); v != "" {
			if err := secrets.CheckVersion(v); err != nil {
				return sl, usagef("%s: %w", env, err)
			}
		}
	}
	switch v := s.get("DSEXPORT_SLACK_PROGRESS"); v {
	case "update":
		// Only a bot can update a message; a webhook posts the report alone.
		sl.progress = sl.token != "" || sl.tokenSecret != ""
	case "off":
	default:
		return sl, usagef("DSEXPORT_SLACK_PROGRESS=%q: want update or off", v)
	}
	return sl, nil
}

// checkSources allows one way to reach Slack, and a channel for a bot.
func (sl slackSection) checkSources(channel string) error {
	const choose = "choose one of SLACK_TOKEN, SLACK_WEBHOOK_URL and their _SECRET forms"
	switch {
	case sl.token != "" && sl.webhook != "":
		return usagef("SLACK_TOKEN and SLACK_WEBHOOK_URL are both set: choose the bot token or the webhook")
	case sl.tokenSecret != "" && (sl.token != "" || sl.webhook != "" || sl.webhookSecret != ""):
		return usagef("DSEXPORT_SLACK_TOKEN_SECRET is set with another Slack secret: %s", choose)
	case sl.webhookSecret != "" && (sl.token != "" || sl.webhook != ""):
		return usagef("DSEXPORT_SLACK_WEBHOOK_SECRET is set with another Slack secret: %s", choose)
	case sl.token != "" && sl.channel == "":
		return usagef("%s is not set: SLACK_TOKEN needs the channel to post to", channel)
	case sl.tokenSecret != "" && sl.channel == "":
		return usagef("%s is not set: DSEXPORT_SLACK_TOKEN_SECRET needs the channel to post to", channel)
	}
	return nil
}

// parseDispatch reads the dispatch section. Off App Engine and Cloud Run
// nothing dies after a response, so inline is the default there.
func (s settings) parseDispatch(platform server.Platform) (dispatchSection, error) {
	d := dispatchSection{mode: s.get("DSEXPORT_DISPATCH")}
	switch d.mode {
	case "":
		d.mode = "inline"
		if platform != server.Local {
			d.mode = "cloudtasks"
		}
	case "inline", "cloudtasks":
	default:
		return d, usagef("%s=%q: want inline or cloudtasks", s["DSEXPORT_DISPATCH"].source(), d.mode)
	}
	if d.mode != "cloudtasks" {
		var err error
		d.sweepEvery, err = s.positiveDuration("DSEXPORT_SWEEP_EVERY", "1m or 30s")
		return d, err
	}
	if s.get("DSEXPORT_TASKS_QUEUE") == "" {
		return d, usagef("%s is not set: DSEXPORT_DISPATCH=cloudtasks needs the queue projects/P/locations/L/queues/Q", s["DSEXPORT_TASKS_QUEUE"].source())
	}
	d.tasks = tasks.Config{
		Queue:          s.get("DSEXPORT_TASKS_QUEUE"),
		Target:         tasks.HTTP,
		URL:            s.get("DSEXPORT_TASKS_URL"),
		ServiceAccount: s.get("DSEXPORT_TASKS_SERVICE_ACCOUNT"),
		// The tasks' ID tokens must carry the audience this service checks.
		Audience: s.get("DSEXPORT_AUDIENCE"),
		Endpoint: s.get("DSEXPORT_TASKS_ENDPOINT"),
	}
	if platform == server.AppEngine {
		d.tasks = tasks.Config{
			Queue: d.tasks.Queue, Target: tasks.AppEngine, Endpoint: d.tasks.Endpoint,
			// No version: tasks go to whichever version serves traffic, so a
			// redeploy, which stops the old version, does not strand them.
			Service: s.get("GAE_SERVICE"),
		}
	}
	// The tasks client would refuse the rest when serve builds it.
	if err := d.tasks.Check(); err != nil {
		return d, usagef("cloud tasks dispatch: %w", err)
	}
	return d, nil
}

// parseAuth reads who may call the service. check: judge it now (serve),
// so that a service that could authenticate nobody stops as a mistake in
// its configuration before it builds anything.
func (s settings) parseAuth(platform server.Platform, check bool) (server.AuthConfig, error) {
	iam, err := strconv.ParseBool(s.get("DSEXPORT_CLOUD_RUN_IAM"))
	if err != nil {
		return server.AuthConfig{}, usagef("DSEXPORT_CLOUD_RUN_IAM=%q: want true or false", s.get("DSEXPORT_CLOUD_RUN_IAM"))
	}
	a := server.AuthConfig{
		Platform:    platform,
		Audience:    s.get("DSEXPORT_AUDIENCE"),
		Invokers:    splitList(s.get("DSEXPORT_INVOKERS")),
		IAPAudience: s.get("DSEXPORT_IAP_AUDIENCE"),
		CloudRunIAM: iam,
	}
	if !check {
		return a, nil
	}
	if err := a.CheckSettings(); err != nil {
		return a, &usageError{err: err}
	}
	return a, nil
}

// baseURL reads an optional http(s) base URL.
func (s settings) baseURL(env string) (string, error) {
	v := s.get(env)
	if v == "" {
		return "", nil
	}
	if err := checkBaseURL(v); err != nil {
		return "", usagef("%s: %w", s[env].source(), err)
	}
	return v, nil
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
