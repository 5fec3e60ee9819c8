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
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/api/idtoken"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

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
  status NAME        show one operation (full name or bare id) and its history
  list [--json]      show recorded operations, newest first
  simulate [--json] [--n N] [--seed S]
                     compare the fixed and adaptive poll schedules on simulated exports

Every flag mirrors an environment variable; see README.md. "dsexport <command> -h" lists them.
`

// run is the whole program; main only calls it, so tests can run it with
// their own arguments, environment and output.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		// App Engine and Cloud Run start the binary without arguments.
		if getenv("GAE_ENV") != "standard" && getenv("K_SERVICE") == "" {
			fmt.Fprint(stderr, usage)
			return usagef("no command given")
		}
		args = []string{"serve"}
	}
	err := runCommand(ctx, args[0], args[1:], getenv, stdout, stderr)
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}

func runCommand(ctx context.Context, cmd string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	s := newSettings(getenv)
	fs := flag.NewFlagSet("dsexport "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	common := []string{"GOOGLE_CLOUD_PROJECT", "DSEXPORT_PROJECT", "DSEXPORT_TIMEZONE", "DSEXPORT_ADMIN_ENDPOINT"}
	exporting := []string{"DSEXPORT_OUTPUT_PREFIX", "DSEXPORT_KINDS", "DSEXPORT_NAMESPACES",
		"DSEXPORT_POLL_INTERVAL", "DSEXPORT_MAX_POLLS", "SLACK_CHANNEL", "DSEXPORT_SHRINK_WARN",
		"DSEXPORT_POLL_SCHEDULE", "DSEXPORT_POLL_MIN", "DSEXPORT_POLL_MAX"}
	switch cmd {
	case "serve":
		s.register(fs, append(append([]string{"PORT", "DSEXPORT_DISPATCH", "DSEXPORT_POLL_BUDGET",
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
		if err := parseFlags(fs, args, 0); err != nil {
			return err
		}
		return export(ctx, s, *wait, stdout, stderr)
	case "status":
		s.register(fs, common...)
		if err := parseFlags(fs, args, 1); err != nil {
			return err
		}
		return status(ctx, s, fs.Arg(0), stdout, stderr)
	case "list":
		s.register(fs, common...)
		asJSON := fs.Bool("json", false, "print JSON, one array of operations")
		limit := fs.Int("limit", 50, "how many operations to show")
		if err := parseFlags(fs, args, 0); err != nil {
			return err
		}
		if *limit <= 0 {
			return usagef("--limit=%d: want a positive number", *limit)
		}
		return list(ctx, s, *asJSON, *limit, stdout, stderr)
	case "simulate":
		return simulateCmd(fs, args, stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usagef("unknown command %q", cmd)
}

// errHelp stops a command whose help was asked for; run answers it with nil.
var errHelp = errors.New("help requested")

func parseFlags(fs *flag.FlagSet, args []string, nargs int) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return usagef("%v", err)
	}
	if fs.NArg() != nargs {
		if nargs == 0 {
			return usagef("%s takes no arguments, got %q", fs.Name(), fs.Args())
		}
		return usagef("%s takes %d argument(s), got %d", fs.Name(), nargs, fs.NArg())
	}
	return nil
}

// deps are the clients built once per run and passed to everything.
type deps struct {
	log      *slog.Logger
	admin    *poller.Admin
	store    *store.Store
	notifier poller.Notifier
	poller   *poller.Poller
	// onPoll, when set, sees every poll (export --wait's progress).
	onPoll func(poller.Record)
}

func (d *deps) close() {
	if d.store != nil {
		d.store.Close()
	}
}

// build makes every client serve and export need.
func build(ctx context.Context, c *config, stdout, stderr io.Writer) (*deps, error) {
	d, err := openStore(ctx, c, stderr)
	if err != nil {
		return nil, err
	}
	if d.admin, err = poller.NewAdmin(ctx, c.adminEndpoint, nil); err != nil {
		d.close()
		return nil, err
	}
	if err := readSecrets(ctx, c); err != nil {
		d.close()
		return nil, err
	}
	var nopts []notifier.Option
	if c.slackAPIURL != "" {
		nopts = append(nopts, notifier.WithAPIURL(c.slackAPIURL))
	}
	switch {
	case c.slackToken != "":
		d.notifier, err = notifier.NewSlackBot(c.slackToken, c.slackChannel, c.loc, nopts...)
	case c.slackWebhook != "":
		d.notifier, err = notifier.NewSlackWebhook(c.slackWebhook, c.loc, nopts...)
	default:
		d.notifier = notifier.NewText(stdout, c.loc)
	}
	if err != nil {
		d.close()
		return nil, err
	}
	var progress poller.ProgressNotifier
	if sl, ok := d.notifier.(*notifier.Slack); ok && c.slackProgress {
		progress = sl
	}
	// A lease outlives the longest wait between two polls.
	var schedule poller.Schedule = poller.Fixed{Every: c.interval}
	var wall time.Duration
	longest := c.interval
	if c.adaptive {
		schedule = poller.Adaptive{Min: c.pollMin, Max: c.pollMax}
		// The same wall-clock budget as the fixed schedule's.
		wall = time.Duration(c.maxPolls) * c.interval
		longest = max(c.interval, c.pollMax)
	}
	d.poller = poller.New(poller.Config{
		Schedule: schedule, Wall: wall, LeaseTTL: 2*longest + time.Minute,
		Progress: progress,
		Admin:    d.admin, Store: d.store, Notifier: d.notifier, Logger: d.log,
		Interval: c.interval, MaxPolls: c.maxPolls,
		OnPoll: func(r poller.Record) {
			if d.onPoll != nil {
				d.onPoll(r)
			}
		},
		StaleAfter: c.staleAfter, ShrinkWarn: c.shrinkWarn, CronWindow: c.cronWindow,
		// DSEXPORT_STARTS_PER_MINUTE, 20 by default: the Admin API's own limit.
		StartsPerMinute: c.startsCap(),
	})
	return d, nil
}

// readSecrets fills in the Slack token or webhook URL from Secret Manager
// when they are kept there instead of in the environment.
func readSecrets(ctx context.Context, c *config) error {
	version := c.slackTokenSecret + c.slackWebhookSecret // at most one is set
	if version == "" {
		return nil
	}
	src, err := secrets.New(ctx, c.secretsEndpoint)
	if err != nil {
		return fmt.Errorf("secret manager: %w", err)
	}
	defer src.Close()
	v, err := src.Get(ctx, version)
	if err != nil {
		return err
	}
	if c.slackTokenSecret != "" {
		c.slackToken = v
	} else {
		c.slackWebhook = v
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
	if d.store, err = store.New(ctx, c.storeProject, opts...); err != nil {
		return nil, fmt.Errorf("store in project %s: %w", c.storeProject, err)
	}
	return d, nil
}

func serve(ctx context.Context, s settings, stdout, stderr io.Writer) error {
	c, d, err := openAll(ctx, s, stdout, stderr)
	if err != nil {
		return err
	}
	defer d.close()
	var dispatcher server.Dispatcher
	// Inline polls live as long as the process, not the request that started them.
	inline := server.NewInline(ctx, d.poller, d.log)
	switch c.dispatch {
	case "cloudtasks":
		td, err := tasks.New(ctx, c.tasks)
		if err != nil {
			return err
		}
		defer td.Close()
		dispatcher = td
	default:
		if c.onCloud {
			// Work after a response dies or starves on App Engine and Cloud Run.
			d.log.Warn("DSEXPORT_DISPATCH=inline on App Engine or Cloud Run: polls run after the response and may be cut off; use cloudtasks")
		}
		dispatcher = inline
	}
	auth := c.auth
	auth.Logger = d.log
	if c.platform != server.Local {
		// Google's public keys need no credentials; they are fetched and cached on first use.
		if auth.Validator, err = idtoken.NewValidator(ctx); err != nil {
			return fmt.Errorf("ID token validator: %w", err)
		}
	}
	if err := auth.Check(); err != nil {
		return err
	}
	srv := &http.Server{
		Handler: server.New(server.Config{
			Poller: d.poller, Dispatcher: dispatcher, Logger: d.log, Defaults: c.export,
			PollBudget: c.budget, Auth: auth,
			Records: d.store, Location: c.loc, ShrinkWarn: c.shrinkWarn,
		}),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	ln, err := net.Listen("tcp", ":"+c.port)
	if err != nil {
		return fmt.Errorf("listen on PORT %s: %w", c.port, err)
	}
	d.log.Info("listening", "addr", ln.Addr().String(), "platform", c.platform.String(), "project", c.export.Project,
		"output_prefix", c.export.OutputURLPrefix, "dispatch", c.dispatch, "poll_budget", c.budget.String())
	fmt.Fprintf(stdout, "dsexport: listening on http://%s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	// One sweep of its own at start-up, after listening so /healthz answers
	// at once: it resumes what a replaced instance left. The cron sweep is
	// the guarantee; this one only shortens the wait.
	inline.Go(func(ctx context.Context) {
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		res, err := d.poller.Sweep(sctx, c.export.Project, dispatcher)
		if err != nil {
			d.log.Error("start-up sweep incomplete", "err", err)
		}
		d.log.Info("start-up sweep", "pending", res.Pending, "resumed", res.Resumed, "reported", res.Reported)
	})
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	d.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// A request still running is a poll task, which the queue delivers
		// again: exiting on time matters more.
		d.log.Warn("requests still running at shutdown; their tasks will be retried", "err", err)
	}
	// Inline polls stop at their next wait, their last steps bounded by the
	// poller's StopGrace; the store they write to closes only after them.
	inline.Wait()
	return nil
}

func export(ctx context.Context, s settings, wait bool, stdout, stderr io.Writer) error {
	c, d, err := openAll(ctx, s, stdout, stderr)
	if err != nil {
		return err
	}
	defer d.close()
	req := c.export
	req.Trigger = poller.TriggerManual
	fmt.Fprintf(stdout, "starting an export of %s to %s\n", req.Project, req.OutputURLPrefix)
	rec, err := d.poller.Start(ctx, req)
	if err != nil {
		return err
	}
	if rec.Outcome == poller.OutcomeNone {
		fmt.Fprintf(stdout, "started %s (%s)\n", rec.Name, rec.State)
		if !wait {
			fmt.Fprintf(stdout, "not followed: nothing reports it unless you run with --wait or POST /tasks/poll it to dsexport serve\n"+
				"see it with: dsexport status %s\n         or: %s\n", rec.Name, present.DescribeCommand(rec.Name))
			return nil
		}
		bar := newProgress(stdout, time.Now)
		d.onPoll = bar.update
		rec, err = d.poller.Poll(ctx, rec.Name)
		bar.done()
		if err != nil {
			return err
		}
	}
	if rec.Outcome != poller.OutcomeSuccess {
		return fmt.Errorf("export %s ended: %s", rec.Name, rec.Outcome)
	}
	return nil
}

// openAll checks the configuration for starting exports and builds every client.
func openAll(ctx context.Context, s settings, stdout, stderr io.Writer) (*config, *deps, error) {
	c, err := s.parse(true)
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
	c, err := s.parse(false)
	if err != nil {
		return nil, nil, err
	}
	d, err := openStore(ctx, c, stderr)
	if err != nil {
		return nil, nil, err
	}
	return c, d, nil
}

func status(ctx context.Context, s settings, nameOrID string, stdout, stderr io.Writer) error {
	c, d, err := open(ctx, s, stderr)
	if err != nil {
		return err
	}
	defer d.close()
	name, err := poller.QualifyName(c.export.Project, nameOrID)
	if err != nil {
		return usagef("NAME: %v", err)
	}
	rec, err := d.store.Get(ctx, name)
	if errors.Is(err, poller.ErrNotFound) {
		// Not started by dsexport: ask the Admin API for its current state.
		admin, aerr := poller.NewAdmin(ctx, c.adminEndpoint, nil)
		if aerr != nil {
			return fmt.Errorf("%s is not recorded by dsexport: %w", name, aerr)
		}
		op, gerr := admin.Get(ctx, name)
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

func list(ctx context.Context, s settings, asJSON bool, limit int, stdout, stderr io.Writer) error {
	c, d, err := open(ctx, s, stderr)
	if err != nil {
		return err
	}
	defer d.close()
	recs, err := d.store.List(ctx, limit)
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
	fmt.Fprintln(tw, "CREATED\tNAME\tTRIGGER\tSTATE\tDONE\tPOLLS\tOUTCOME\tREPORTED")
	for _, r := range recs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%d\t%s\t%v\n", present.TimeIn(r.Created, c.loc, present.ListLayout), r.Name,
			present.OrNone(string(r.Trigger)), present.OrNone(string(r.State)), r.Done, r.Polls, present.OrNone(string(r.Outcome)), r.Reported())
	}
	return tw.Flush()
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}
