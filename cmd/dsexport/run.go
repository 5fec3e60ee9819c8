package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/api/idtoken"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/dsexport/dsexport/admin"
	"github.com/dsexport/dsexport/content"
	"github.com/dsexport/dsexport/count"
	"github.com/dsexport/dsexport/internal/cloudlog"
	"github.com/dsexport/dsexport/notifier"
	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/present"
	"github.com/dsexport/dsexport/secrets"
	"github.com/dsexport/dsexport/server"
	"github.com/dsexport/dsexport/store"
	"github.com/dsexport/dsexport/tasks"
)

const usage = `usage: dsexport <command> [flags]

commands:
  serve              run the HTTP service (cron, manual trigger, poll tasks)
  export [--wait]    start an export now; --wait follows it to its end and reports it
  verify [--target T] NAME
                     read a successful export's files: entities per kind, files, bytes; compare with the operation
  drill [--target T] [--every D]
                     run a restore drill now: import the latest verified export into a scratch database, count, compare, delete
  status NAME        show one operation (full name or bare id) and its history
  list [--json]      show recorded operations, newest first
  cron-yaml [--scheduler]
                     print cron.yaml for the targets file's schedules; --scheduler: NAME, unix cron, path per line
  simulate [--json] [--n N] [--seed S]
                     compare the fixed and adaptive poll schedules on simulated exports
  doctor [--target NAME] [--json]
                     check the buckets, locations and permissions the targets' exports need; each failure with its fix
  version            print the module version and VCS revision it was built from

Every flag mirrors an environment variable; see README.md. "dsexport <command> -h" lists them.
`

// run is the whole program; main only calls it, so tests can run it with
// their own arguments, environment and output.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	args, ok := commandArgs(args, getenv)
	if !ok {
		fmt.Fprint(stderr, usage)
		return usagef("no command given")
	}
	err := runCommand(ctx, args[0], args[1:], getenv, stdout, stderr)
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}

// commandArgs is the command line to run: args, or serve when a platform
// started the binary. App Engine and Cloud Run start it without arguments.
// App Engine's local development server, dev_appserver.py, starts it with
// GAE_ENV=localdev, the port in PORT, and two file paths of its own (the
// runtime configuration it writes and a file for the port, its
// START_PROCESS_REVERSE protocol) that serve does not need; there serve runs
// as on any machine, on the Local platform.
func commandArgs(args []string, getenv func(string) string) ([]string, bool) {
	switch {
	case getenv("GAE_ENV") == "localdev" && (len(args) == 0 || !isCommand(args[0])):
		return []string{"serve"}, true
	case len(args) > 0:
		return args, true
	case getenv("GAE_ENV") == "standard" || getenv("K_SERVICE") != "":
		return []string{"serve"}, true
	}
	return nil, false
}

// isCommand reports whether name is one of runCommand's commands.
func isCommand(name string) bool {
	switch name {
	case "serve", "export", "doctor", "verify", "drill", "status", "list", "cron-yaml", "simulate", "version", "help", "-h", "--help":
		return true
	}
	return false
}

func runCommand(ctx context.Context, cmd string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	s := newSettings(getenv)
	fs := flag.NewFlagSet("dsexport "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	common := []string{"DSEXPORT_CONFIG", "GOOGLE_CLOUD_PROJECT", "DSEXPORT_STORE_DATABASE", "DSEXPORT_PROJECT", "DSEXPORT_TIMEZONE", "DSEXPORT_ADMIN_ENDPOINT", "DSEXPORT_FIRESTORE_ENDPOINT"}
	exporting := []string{"DSEXPORT_OUTPUT_PREFIX", "DSEXPORT_KINDS", "DSEXPORT_NAMESPACES",
		"DSEXPORT_POLL_INTERVAL", "DSEXPORT_MAX_POLLS", "SLACK_CHANNEL", "DSEXPORT_SHRINK_WARN",
		"DSEXPORT_POLL_SCHEDULE", "DSEXPORT_POLL_MIN", "DSEXPORT_POLL_MAX"}
	switch cmd {
	case "serve":
		s.register(fs, append(append([]string{"PORT", "DSEXPORT_PROJECT_NUMBER", "DSEXPORT_DISPATCH", "DSEXPORT_POLL_BUDGET", "DSEXPORT_SWEEP_EVERY",
			"DSEXPORT_TASKS_QUEUE", "DSEXPORT_TASKS_URL", "DSEXPORT_TASKS_SERVICE_ACCOUNT",
			"DSEXPORT_AUDIENCE", "DSEXPORT_INVOKERS", "DSEXPORT_IAP_AUDIENCE",
			"DSEXPORT_STALE_AFTER", "DSEXPORT_CRON_WINDOW"}, common...), exporting...)...)
		if err := parseFlags(fs, args, 0); err != nil {
			return err
		}
		return serve(ctx, s, stdout, stderr)
	case "export":
		s.register(fs, append(common, exporting...)...)
		wait := fs.Bool("wait", false, "follow the export to its end and report it")
		target := fs.String("target", "", "the `name` of the target in DSEXPORT_CONFIG to export (needed when it lists several)")
		if err := parseFlags(fs, args, 0); err != nil {
			return err
		}
		return export(ctx, s, *wait, *target, stdout, stderr)
	case "doctor":
		s.register(fs, append(append(common, exporting...), "DSEXPORT_PROJECT_NUMBER", "DSEXPORT_DISPATCH", "DSEXPORT_TASKS_QUEUE")...)
		target := fs.String("target", "", "the `name` of the one target to check")
		asJSON := fs.Bool("json", false, "print the checks as JSON")
		if err := parseFlags(fs, args, 0); err != nil {
			return err
		}
		return doctor(ctx, s, *target, *asJSON, s.get("DSEXPORT_PROJECT_NUMBER"), stdout, stderr)
	case "verify":
		s.register(fs, common...)
		target := fs.String("target", "", "the `name` of the target whose database a bare operation id is in")
		if err := parseFlags(fs, args, 1); err != nil {
			return err
		}
		return verify(ctx, s, fs.Arg(0), *target, stdout, stderr)
	case "drill":
		s.register(fs, append(common, exporting...)...)
		target := fs.String("target", "", "the `name` of the target to drill (needed when DSEXPORT_CONFIG lists several)")
		every := fs.Duration("every", 10*time.Second, "how often to look at the drill's operations")
		if err := parseFlags(fs, args, 0); err != nil {
			return err
		}
		if *every <= 0 {
			return usagef("--every=%s: want a positive duration", *every)
		}
		return drill(ctx, s, *target, *every, stdout, stderr)
	case "status":
		s.register(fs, common...)
		target := fs.String("target", "", "the `name` of the target whose database a bare operation id is in")
		if err := parseFlags(fs, args, 1); err != nil {
			return err
		}
		return status(ctx, s, fs.Arg(0), *target, stdout, stderr)
	case "list":
		s.register(fs, common...)
		asJSON := fs.Bool("json", false, "print JSON, one array of operations")
		limit := fs.Int("limit", 50, "how many operations to show")
		target := fs.String("target", "", "show only the operations of the target of this `name`")
		if err := parseFlags(fs, args, 0); err != nil {
			return err
		}
		if *limit <= 0 {
			return usagef("--limit=%d: want a positive number", *limit)
		}
		return list(ctx, s, *asJSON, *limit, *target, stdout, stderr)
	case "cron-yaml":
		s.register(fs, "DSEXPORT_CONFIG")
		scheduler := fs.Bool("scheduler", false, "print one line per scheduled target for Cloud Scheduler: name, unix cron and path, tab-separated")
		service := fs.String("service", "dsexport", "App Engine `service` the cron jobs go to (cron.yaml's target:)")
		zone := fs.String("time-zone", "UTC", "IANA `zone` of the schedules (cron.yaml's timezone:)")
		if err := parseFlags(fs, args, 0); err != nil {
			return err
		}
		return cronYAMLCmd(s, *scheduler, *service, *zone, stdout)
	case "simulate":
		return simulateCmd(fs, args, stdout)
	case "version":
		if err := parseFlags(fs, args, 0); err != nil {
			return err
		}
		fmt.Fprint(stdout, versionText(debug.ReadBuildInfo()))
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usagef("unknown command %q", cmd)
}

// errHelp stops a command whose help was asked for; run answers it with nil.
var errHelp = errors.New("help requested")

// parseFlags parses a command's flags. The flag package prints an error and
// the usage before it returns the error, which main prints again, so the
// parse is quiet and only -h prints the flags.
func parseFlags(fs *flag.FlagSet, args []string, nargs int) error {
	out := fs.Output()
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.SetOutput(out)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(out, "usage: %s [flags]\n\nflags:\n", fs.Name())
		fs.PrintDefaults()
		return errHelp
	}
	if err != nil {
		return usagef("%v (%s -h lists the flags)", err, fs.Name())
	}
	if fs.NArg() != nargs {
		if nargs == 0 {
			return usagef("%s takes no arguments, got %q", fs.Name(), fs.Args())
		}
		return usagef("%s takes %d argument(s), got %d", fs.Name(), nargs, fs.NArg())
	}
	return nil
}

// versionText is the module version and the VCS revision the binary was
// built from, as debug.ReadBuildInfo tells them.
func versionText(info *debug.BuildInfo, ok bool) string {
	if !ok {
		return "dsexport: built without module information\n"
	}
	vcs := map[string]string{}
	for _, s := range info.Settings {
		vcs[s.Key] = s.Value
	}
	line := "dsexport " + info.Main.Version
	if rev := vcs["vcs.revision"]; rev != "" {
		line += " revision " + rev
		if vcs["vcs.modified"] == "true" {
			line += " (modified)"
		}
		if t := vcs["vcs.time"]; t != "" {
			line += " of " + t
		}
	}
	return line + "\n"
}

// deps are the clients built once per run and passed to everything.
type deps struct {
	log   *slog.Logger
	admin admin.Router
	// firestore is the Firestore Admin API: named databases' exports
	// (through admin) and managed backups.
	firestore *admin.Firestore
	store     *store.Store
	notifier  poller.Notifier
	progress  poller.ProgressNotifier
	poller    *poller.Poller
	// onPoll, when set, sees every poll (export --wait's progress), and
	// onDrill every step of a drill (drill's).
	onPoll  func(poller.Record)
	onDrill func(poller.Drill)
	// content reads each success's files (nil: DSEXPORT_VERIFY=off);
	// counter counts kinds in a source or a drill's scratch database.
	content *content.Reader
	counter *count.Counter
}

func (d *deps) close() {
	if d.store != nil {
		d.store.Close()
	}
	if d.content != nil {
		d.content.Close()
	}
	if d.counter != nil {
		d.counter.Close()
	}
}

// checkers builds the content reader (when exports are verified) and the
// counter of source and scratch databases. With the Datastore emulator the
// reader also reads local files, where the emulator writes its exports,
// and the counter counts on the emulator.
func (d *deps) checkers(ctx context.Context, c *config) error {
	var err error
	var copts []count.Option
	if c.emulatorHost != "" {
		copts = append(copts, count.WithEmulatorHost(c.emulatorHost))
	}
	if d.counter, err = count.New(ctx, copts...); err != nil {
		return err
	}
	if !c.polling.verify {
		return nil
	}
	if c.emulatorHost != "" {
		var opts []option.ClientOption
		if os.Getenv("STORAGE_EMULATOR_HOST") == "" {
			// Local files need no credentials, and a laptop may have none.
			opts = append(opts, option.WithoutAuthentication())
		}
		d.content, err = content.NewLocal(ctx, opts...)
	} else {
		d.content, err = content.New(ctx)
	}
	return err
}

// contentReader is d.content as the poller's port: nil, not a nil
// *content.Reader, when exports are not verified.
func (d *deps) contentReader() poller.ContentReader {
	if d.content == nil {
		return nil
	}
	return d.content
}

// build makes every client serve and export need.
func build(ctx context.Context, c *config, stdout, stderr io.Writer) (*deps, error) {
	d, err := openStore(ctx, c, stderr)
	if err != nil {
		return nil, err
	}
	if d.admin, d.firestore, err = adminAPIs(ctx, c, false); err != nil {
		d.close()
		return nil, err
	}
	if err := readSecrets(ctx, c); err != nil {
		d.close()
		return nil, err
	}
	if err := d.checkers(ctx, c); err != nil {
		d.close()
		return nil, err
	}
	var nopts []notifier.Option
	if c.slack.apiURL != "" {
		nopts = append(nopts, notifier.WithAPIURL(c.slack.apiURL))
	}
	if channels := targetChannels(c.targets); len(channels) > 0 {
		// Configuration refused per-target channels with a webhook already.
		nopts = append(nopts, notifier.WithTargetChannels(channels))
	}
	switch {
	case c.slack.token != "":
		d.notifier, err = notifier.NewSlackBot(c.slack.token, c.slack.channel, c.loc, nopts...)
	case c.slack.webhook != "":
		d.notifier, err = notifier.NewSlackWebhook(c.slack.webhook, c.loc, nopts...)
	default:
		d.notifier = notifier.NewText(stdout, c.loc)
	}
	if err != nil {
		d.close()
		return nil, err
	}
	if sl, ok := d.notifier.(*notifier.Slack); ok && c.slack.progress {
		d.progress = sl
	}
	return d, nil
}

// backups is the Firestore Admin API as the backup watch's port: nil, not a
// nil *admin.Firestore, when there is none.
func (d *deps) backups() poller.BackupsAdmin {
	if d.firestore == nil {
		return nil
	}
	return d.firestore
}

// adminAPIs builds the Admin API clients and the router between them: the
// Datastore Admin API always, the Firestore Admin API when a target needs
// it (a named database, a consistent export, managed backups), when its
// endpoint is set, or when firestore asks for it (status of a Firestore
// operation name). Without it nothing needs Google credentials for it.
func adminAPIs(ctx context.Context, c *config, firestore bool) (admin.Router, *admin.Firestore, error) {
	ds, err := admin.NewDatastore(ctx, c.adminEndpoint, nil)
	if err != nil {
		return admin.Router{}, nil, err
	}
	r := admin.Router{Datastore: ds}
	if !firestore && c.firestoreEndpoint == "" && !needsFirestore(c.targets) {
		return r, nil, nil
	}
	fs, err := admin.NewFirestore(ctx, c.firestoreEndpoint, nil)
	if err != nil {
		return admin.Router{}, nil, err
	}
	r.Firestore = fs
	return r, fs, nil
}

// needsFirestore tells whether a target goes through the Firestore Admin API.
func needsFirestore(targets []poller.Target) bool {
	for _, t := range targets {
		if t.Backups != nil || !poller.IsDefaultDatabase(t.Database) || (t.Export != nil && t.Export.Firestore) {
			return true
		}
	}
	return false
}

// targetChannels maps each target with a Slack channel of its own to it.
func targetChannels(targets []poller.Target) map[string]string {
	m := map[string]string{}
	for _, t := range targets {
		if t.Channel != "" {
			m[t.Name] = t.Channel
		}
	}
	return m
}

// newPoller builds the poller on d's clients, handing operations over
// through dispatcher (nil: nobody follows an export but the caller).
func (d *deps) newPoller(c *config, dispatcher poller.Dispatcher) {
	var schedule poller.Schedule = poller.Fixed{Every: c.polling.interval}
	if c.polling.adaptive {
		schedule = poller.Adaptive{Min: c.polling.min, Max: c.polling.max}
	}
	cfg := poller.Config{
		Admin: d.admin, Backups: d.backups(), Store: d.store, Notifier: d.notifier, Progress: d.progress, Logger: d.log,
		Dispatcher: dispatcher, Budget: c.polling.budget,
		Schedule: schedule, Interval: c.polling.interval, MaxPolls: c.polling.maxPolls,
		OnPoll: func(r poller.Record) {
			if d.onPoll != nil {
				d.onPoll(r)
			}
		},
		StaleAfter: c.polling.staleAfter, ShrinkWarn: c.polling.shrinkWarn, CronWindow: c.polling.cronWindow,
		// DSEXPORT_STARTS_PER_MINUTE, 20 by default: the Admin API's own limit.
		StartsPerMinute: c.polling.startsPerMinute,
		Content:         d.contentReader(), ContentTimeout: c.polling.verifyTimeout,
		Drills: d.admin,
		OnDrill: func(dr poller.Drill) {
			if d.onDrill != nil {
				d.onDrill(dr)
			}
		},
	}
	if d.counter != nil {
		cfg.DrillCounter = d.counter
		if d.content != nil {
			cfg.SourceCounter = d.counter
		}
	}
	d.poller = poller.New(cfg)
}

// readSecrets fills in the Slack token or webhook URL from Secret Manager
// when they are kept there instead of in the environment.
func readSecrets(ctx context.Context, c *config) error {
	version := c.slack.tokenSecret + c.slack.webhookSecret // at most one is set
	if version == "" {
		return nil
	}
	src, err := secrets.New(ctx, c.slack.secretsEndpoint)
	if err != nil {
		return fmt.Errorf("secret manager: %w", err)
	}
	defer src.Close()
	v, err := src.Get(ctx, version)
	if err != nil {
		return err
	}
	if c.slack.tokenSecret != "" {
		c.slack.token = v
	} else {
		c.slack.webhook = v
	}
	return nil
}

// openStore makes the logger and the store, all that reading records needs.
func openStore(ctx context.Context, c *config, stderr io.Writer) (*deps, error) {
	d := &deps{log: cloudlog.New(stderr, c.onCloud, c.storeProject)}
	var opts []option.ClientOption
	if c.emulatorHost != "" {
		// The client reads DATASTORE_EMULATOR_HOST from the process
		// environment itself; run's getenv is passed explicitly instead.
		opts = append(opts, option.WithEndpoint(c.emulatorHost), option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	}
	var err error
	if d.store, err = store.NewIn(ctx, c.storeProject, c.storeDatabase, opts...); err != nil {
		return nil, fmt.Errorf("store in %s: %w", poller.Scope(c.storeProject, c.storeDatabase), err)
	}
	return d, nil
}

func serve(ctx context.Context, s settings, stdout, stderr io.Writer) error {
	if _, err := projectNumbers(s.get("DSEXPORT_PROJECT_NUMBER")); err != nil {
		return err // a configuration mistake: exit 2 before anything is built
	}
	c, d, err := openAll(ctx, s, forServe, stdout, stderr)
	if err != nil {
		return err
	}
	defer d.close()
	// Inline polls live as long as the process, not the request that
	// started them; the start-up sweep runs as one of them.
	inline := poller.NewInline(ctx, d.log)
	dispatcher, closeDispatcher, err := newDispatcher(ctx, c, d, inline)
	if err != nil {
		return err
	}
	defer closeDispatcher()
	d.newPoller(c, dispatcher)
	auth, err := serverAuth(ctx, c, d)
	if err != nil {
		return err
	}
	doc, startDoctor := startupDoctor(c, d, s.get("DSEXPORT_PROJECT_NUMBER"))
	srv := &http.Server{
		Handler: server.New(server.Config{
			Poller: d.poller, Logger: d.log, Defaults: c.export.ExportRequest, Targets: c.targets, Auth: auth,
			Records: d.store, Backups: d.store, Verifications: d.store, Drills: d.store, Location: c.loc, ShrinkWarn: c.polling.shrinkWarn, Doctor: doc,
		}),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	ln, err := net.Listen("tcp", ":"+c.port)
	if err != nil {
		return fmt.Errorf("listen on PORT %s: %w", c.port, err)
	}
	d.log.Info("listening", "addr", ln.Addr().String(), "platform", c.platform.String(), "targets", len(c.targets),
		"store", poller.Scope(c.storeProject, c.storeDatabase), "dispatch", c.dispatch.mode, "poll_budget", c.polling.budget.String())
	for _, t := range c.targets {
		logTarget(d.log, t)
	}
	fmt.Fprintf(stdout, "dsexport: listening on http://%s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	inline.Go(startDoctor)
	// One sweep of its own at start-up, after listening so /healthz answers
	// at once: it resumes what a replaced instance left. With Cloud Tasks
	// the cron sweep is the guarantee and this one only shortens the wait;
	// inline, nothing else sweeps, so serve goes on sweeping by itself.
	inline.Go(func(ctx context.Context) {
		sweepLoop(ctx, d, c.targets, c.dispatch.sweepEvery)
	})
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown(ctx, srv, d.log)
	// Inline polls stop at their next wait, their last steps bounded by the
	// poller's StopGrace; the store they write to closes only after them.
	inline.Wait()
	return nil
}

// sweepLoop sweeps at once and then, when every is set, every every until
// ctx ends.
func sweepLoop(ctx context.Context, d *deps, targets []poller.Target, every time.Duration) {
	for first := true; ; first = false {
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		res, err := d.poller.Sweep(sctx, targets)
		cancel()
		if err != nil {
			d.log.Error("sweep incomplete", "err", err)
		}
		if first || res.Resumed+res.Reported+res.StillPending > 0 {
			d.log.Info("sweep", "first", first, "pending", res.Pending, "resumed", res.Resumed, "reported", res.Reported)
		}
		if every <= 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// logTarget says at start-up what serve does with t.
func logTarget(log *slog.Logger, t poller.Target) {
	attrs := []any{"target", t.Name, "project", t.Project, "database", t.Database}
	if t.Export != nil {
		attrs = append(attrs, "output_prefix", t.Export.OutputURLPrefix, "schedule", t.Schedule, "firestore_api", t.Export.Firestore || !poller.IsDefaultDatabase(t.Database))
	}
	if t.Backups != nil {
		attrs = append(attrs, "backups", string(t.Backups.Recurrence))
	}
	if t.Channel != "" {
		attrs = append(attrs, "channel", t.Channel)
	}
	log.Info("target", attrs...)
}

// newDispatcher is the hand-off serve's poller uses: Cloud Tasks, or inline
// in this process.
func newDispatcher(ctx context.Context, c *config, d *deps, inline *poller.Inline) (poller.Dispatcher, func(), error) {
	if c.dispatch.mode == "cloudtasks" {
		td, err := tasks.New(ctx, c.dispatch.tasks)
		if err != nil {
			return nil, nil, err
		}
		return td, func() { td.Close() }, nil
	}
	if c.onCloud {
		// Work after a response dies or starves on App Engine and Cloud Run.
		d.log.Warn("DSEXPORT_DISPATCH=inline on App Engine or Cloud Run: polls run after the response and may be cut off; use cloudtasks")
	}
	return inline, func() {}, nil
}

// serverAuth is the checked authentication of serve's routes.
func serverAuth(ctx context.Context, c *config, d *deps) (server.AuthConfig, error) {
	auth := c.auth
	auth.Logger = d.log
	if c.platform != server.Local {
		// Google's public keys need no credentials; they are fetched and cached on first use.
		var err error
		if auth.Validator, err = idtoken.NewValidator(ctx); err != nil {
			return auth, fmt.Errorf("ID token validator: %w", err)
		}
	}
	return auth, auth.Check()
}

// shutdown stops srv within 10s of a stop.
func shutdown(ctx context.Context, srv *http.Server, log *slog.Logger) {
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// A request still running is a poll task, which the queue delivers
		// again: exiting on time matters more.
		log.Warn("requests still running at shutdown; their tasks will be retried", "err", err)
	}
}

func export(ctx context.Context, s settings, wait bool, name string, stdout, stderr io.Writer) error {
	c, err := s.parse(forExport)
	if err != nil {
		return err
	}
	t, err := c.target(name)
	if err != nil {
		return err
	}
	if t.Export == nil {
		return usagef("--target=%s: the target only watches managed backups; it has no export to start", t.Name)
	}
	d, err := build(ctx, c, stdout, stderr)
	if err != nil {
		return err
	}
	defer d.close()
	req := *t.Export
	req.Trigger = poller.TriggerManual
	fmt.Fprintf(stdout, "starting an export of %s to %s\n", poller.Scope(req.Project, req.Database), req.OutputURLPrefix)
	// No dispatcher: this command follows the export itself, or nobody does.
	d.newPoller(c, nil)
	res, err := d.poller.Start(ctx, req)
	if err != nil {
		return err
	}
	rec := res.Record
	switch res.Status {
	case poller.Running:
		return fmt.Errorf("an export of the same database and filter is running: %s", rec.Name)
	case poller.Refused:
		return fmt.Errorf("the export could not be started: %s", rec.ErrorMessage)
	}
	if rec.Outcome == poller.OutcomeNone {
		fmt.Fprintf(stdout, "started %s (%s)\n", rec.Name, rec.State)
		if !wait && !res.Recorded {
			// Not in the store: no sweep of a serve can ever find it.
			return fmt.Errorf("export %s started but could not be recorded: follow it with --wait, or see it with: %s",
				rec.Name, present.DescribeCommand(rec.Name))
		}
		if !wait {
			fmt.Fprintf(stdout, "not followed: nothing reports it unless you run with --wait, POST /tasks/poll it to dsexport serve,\n"+
				"or a dsexport serve on the same store sweeps it up\n"+
				"see it with: dsexport status %s\n         or: %s\n", rec.Name, present.DescribeCommand(rec.Name))
			return nil
		}
		bar := newProgress(stdout, time.Now)
		d.onPoll = bar.update
		res, err := d.poller.Poll(ctx, rec.Name)
		bar.done()
		if err != nil {
			return err
		}
		if res.Status == poller.Held {
			// A serve sharing the store took the export over (its sweep
			// found this lease expired, as after a laptop's sleep).
			fmt.Fprintf(stdout, "%s is followed by another poller now; it reports it\n", rec.Name)
			return nil
		}
		rec = res.Record
	}
	if rec.Outcome != poller.OutcomeSuccess {
		return fmt.Errorf("export %s ended: %s", rec.Name, rec.Outcome)
	}
	return nil
}

// openAll checks the configuration for p, forExport or forServe, and builds
// every client.
func openAll(ctx context.Context, s settings, p purpose, stdout, stderr io.Writer) (*config, *deps, error) {
	c, err := s.parse(p)
	if err != nil {
		return nil, nil, err
	}
	d, err := build(ctx, c, stdout, stderr)
	if err != nil {
		return nil, nil, err
	}
	return c, d, nil
}

// open builds only what reading the store needs.
func open(ctx context.Context, s settings, stderr io.Writer) (*config, *deps, error) {
	c, err := s.parse(forReading)
	if err != nil {
		return nil, nil, err
	}
	d, err := openStore(ctx, c, stderr)
	if err != nil {
		return nil, nil, err
	}
	return c, d, nil
}

// operationName is the operation NAME names: a full name, or a bare id in
// the database of target (needed when the file lists several).
func (c *config) operationName(nameOrID, target string) (string, error) {
	project, database := c.export.Project, ""
	if target == "" && len(c.targets) > 1 && !strings.HasPrefix(nameOrID, "projects/") {
		return "", usagef("NAME: a bare operation id is in one target's database: give --target (DSEXPORT_CONFIG lists %d targets), or the full name", len(c.targets))
	}
	if target != "" || len(c.targets) == 1 {
		t, err := c.target(target)
		if err != nil {
			return "", err
		}
		project, database = t.Project, t.Database
	}
	name, err := poller.QualifyNameIn(project, database, nameOrID)
	if err != nil {
		return "", usagef("NAME: %v", err)
	}
	return name, nil
}

func status(ctx context.Context, s settings, nameOrID, target string, stdout, stderr io.Writer) error {
	c, d, err := open(ctx, s, stderr)
	if err != nil {
		return err
	}
	defer d.close()
	name, err := c.operationName(nameOrID, target)
	if err != nil {
		return err
	}
	rec, err := d.store.Get(ctx, name)
	if errors.Is(err, poller.ErrNotFound) {
		// Not started by dsexport: ask the Admin API for its current state.
		api, _, aerr := adminAPIs(ctx, c, poller.IsFirestoreName(name))
		if aerr != nil {
			return fmt.Errorf("%s is not recorded by dsexport: %w", name, aerr)
		}
		op, gerr := api.Get(ctx, name)
		if gerr != nil {
			return fmt.Errorf("%s is not recorded by dsexport, and the Admin API says: %w", name, gerr)
		}
		fmt.Fprintln(stdout, "(not recorded by dsexport: live from the Admin API)")
		return notifier.WriteText(stdout, present.Format(poller.Report{Outcome: poller.Classify(op), Operation: op}, c.loc))
	}
	if err != nil {
		return err
	}
	if err := writeRecord(stdout, rec, c.loc); err != nil {
		return err
	}
	snaps, err := d.store.Snapshots(ctx, name)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "POLL\tTIME\tSTATE\tDONE\tENTITIES\tBYTES")
	for _, sn := range snaps {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%v\t%d/%d\t%d/%d\n", sn.Poll, present.Clock(sn.Time, c.loc),
			present.OrNone(string(sn.State)), sn.Done, sn.EntitiesCompleted, sn.EntitiesEstimated, sn.BytesCompleted, sn.BytesEstimated)
	}
	return tw.Flush()
}

// writeRecord shows rec as its report, which for a refused start says it
// could not be started and offers no command about an operation Google
// never had, then how it was followed.
func writeRecord(w io.Writer, rec poller.Record, loc *time.Location) error {
	if err := notifier.WriteText(w, present.Format(poller.ReportOf(rec), loc)); err != nil {
		return err
	}
	reported := "not yet"
	if rec.Reported() {
		reported = present.Clock(rec.ReportedAt, loc)
	}
	_, err := fmt.Fprintf(w, "polls: %d  outcome: %s  reported: %s\n\n", rec.Polls, present.OrNone(string(rec.Outcome)), reported)
	return err
}

func list(ctx context.Context, s settings, asJSON bool, limit int, target string, stdout, stderr io.Writer) error {
	c, d, err := open(ctx, s, stderr)
	if err != nil {
		return err
	}
	defer d.close()
	if target != "" {
		if _, err := c.target(target); err != nil {
			return err
		}
	}
	recs, err := d.store.ListTarget(ctx, target, limit)
	if err != nil {
		return err
	}
	if asJSON {
		if recs == nil {
			recs = []poller.Record{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(recs)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CREATED\tTARGET\tNAME\tTRIGGER\tSTATE\tDONE\tPOLLS\tOUTCOME\tREPORTED")
	for _, r := range recs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%v\t%d\t%s\t%v\n", present.TimeIn(r.Created, c.loc, present.ListLayout), present.OrNone(present.Name(r.Target)), r.Name,
			present.OrNone(string(r.Trigger)), present.OrNone(string(r.State)), r.Done, r.Polls, present.OrNone(string(r.Outcome)), r.Reported())
	}
	return tw.Flush()
}
