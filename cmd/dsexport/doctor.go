package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/cloudresourcemanager/v3"
	"google.golang.org/api/option"

	"github.com/dsexport/dsexport/admin"
	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/preflight"
	"github.com/dsexport/dsexport/server"
	"github.com/dsexport/dsexport/tasks"
)

// startupDoctorBudget bounds the checks serve runs at start-up.
const startupDoctorBudget = 2 * time.Minute

// errChecksFailed is doctor's error when a check failed: exit status 1.
var errChecksFailed = errors.New("a preflight check failed")

// projectNumbers reads DSEXPORT_PROJECT_NUMBER: one number for every
// target's project, or project=number pairs separated by commas. A project
// it does not name has its service agent check skipped.
func projectNumbers(v string) (func(project string) string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, nil
	}
	if digits(v) {
		return func(string) string { return v }, nil
	}
	m := map[string]string{}
	for _, pair := range strings.Split(v, ",") {
		p, n, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok || p == "" || !digits(n) {
			return nil, usagef("DSEXPORT_PROJECT_NUMBER: %q is not a project number nor project=number", poller.BoundText(pair, 64))
		}
		m[p] = n
	}
	return func(project string) string { return m[project] }, nil
}

func digits(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// newDoctor builds the preflight checks of targets: the Cloud Storage ones
// (the client honours STORAGE_EMULATOR_HOST) with the database locations
// from the Firestore Admin API, then Slack's (the token as read from
// Secret Manager already) and, with cloudtasks dispatch, the queue's. The
// drill checks test dsexport's permissions with Cloud Resource Manager
// (DSEXPORT_RESOURCEMANAGER_ENDPOINT, a fake, used without authentication;
// else Google's with ADC).
// probeChannels adds the check of each report channel, which schedules a
// message and deletes it: the CLI's doctor only, so that neither serve's
// start-up nor a probe of GET /api/doctor touches a channel. close releases
// the clients.
func newDoctor(ctx context.Context, c *config, fs *admin.Firestore, numbers func(string) string, targets []poller.Target, probeChannels bool) (poller.Doctor, func(), error) {
	sc, err := storage.NewClient(ctx)
	if err != nil {
		return poller.Doctor{}, nil, fmt.Errorf("cloud storage client: %w", err)
	}
	if fs == nil {
		if fs, err = admin.NewFirestore(ctx, c.firestoreEndpoint, nil); err != nil {
			sc.Close()
			return poller.Doctor{}, nil, err
		}
	}
	closers := []func() error{sc.Close}
	closeAll := func() {
		for _, f := range closers {
			f()
		}
	}
	cfg := preflight.Config{Storage: sc, Databases: fs, ProjectNumber: numbers}
	// Only the drill checks use Resource Manager: a deployment without
	// drills needs neither its client nor credentials for it.
	if slices.ContainsFunc(targets, func(t poller.Target) bool { return t.Drill != nil }) {
		if cfg.ResourceManager, err = resourceManager(ctx, c.resourceManagerEndpoint); err != nil {
			closeAll()
			return poller.Doctor{}, nil, err
		}
	}
	checks := preflight.Checks(cfg, targets)
	var channels []string
	if probeChannels {
		channels = reportChannels(c.slack.channel, targets)
	}
	checks = append(checks, preflight.SlackChecks(preflight.Slack{
		Token: c.slack.token, Webhook: c.slack.webhook != "", APIURL: c.slack.apiURL,
		HTTPClient: &http.Client{Timeout: poller.DefaultCheckTimeout},
		Channels:   channels,
	})...)
	if c.dispatch.mode == "cloudtasks" {
		tc, err := tasks.NewClient(ctx, c.dispatch.tasks.Endpoint)
		if err != nil {
			closeAll()
			return poller.Doctor{}, nil, err
		}
		closers = append(closers, tc.Close)
		checks = append(checks, preflight.TasksCheck(tc, c.dispatch.tasks.Queue))
	}
	return poller.Doctor{Checks: checks}, closeAll, nil
}

// resourceManager is the Cloud Resource Manager v3 client: at endpoint
// without authentication, as the other fakes' endpoints are used, else
// Google's with Application Default Credentials (no HTTP client of ours:
// option.WithHTTPClient would drop the credentials; each check's context
// bounds the call). Nothing is dialled before its first call.
func resourceManager(ctx context.Context, endpoint string) (*cloudresourcemanager.Service, error) {
	var opts []option.ClientOption
	if endpoint != "" {
		opts = []option.ClientOption{option.WithEndpoint(strings.TrimSuffix(endpoint, "/") + "/"), option.WithoutAuthentication()}
	}
	rm, err := cloudresourcemanager.NewService(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("cloud resource manager client: %w", err)
	}
	return rm, nil
}

// reportChannels are the channels reports go to: the default one (that of
// operations with no target, and of targets without a channel of their
// own) and each target's.
func reportChannels(def string, targets []poller.Target) []string {
	var out []string
	if def != "" {
		out = append(out, def)
	}
	for _, t := range targets {
		if t.Channel != "" {
			out = append(out, t.Channel)
		}
	}
	return out
}

// doctor runs the checks of the targets (one with --target), prints them
// as a table or JSON, and fails when one failed.
func doctor(ctx context.Context, s settings, target string, asJSON bool, numberText string, stdout, stderr io.Writer) error {
	numbers, err := projectNumbers(numberText)
	if err != nil {
		return err
	}
	c, err := s.parse(forExport)
	if err != nil {
		return err
	}
	targets := c.targets
	if target != "" {
		t, err := c.target(target)
		if err != nil {
			return err
		}
		targets = []poller.Target{t}
	}
	// The Slack check needs the token serve would use.
	if err := readSecrets(ctx, c); err != nil {
		return err
	}
	doc, closeDoc, err := newDoctor(ctx, c, nil, numbers, targets, true)
	if err != nil {
		return err
	}
	defer closeDoc()
	checks := doc.Run(ctx)
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(checks); err != nil {
			return err
		}
	} else if err := writeChecks(stdout, checks); err != nil {
		return err
	}
	if n := poller.Failed(checks); n > 0 {
		return fmt.Errorf("%w: %d of %d", errChecksFailed, n, len(checks))
	}
	return nil
}

// writeChecks prints NAME / TARGET / OK / DETAIL / FIX, one check a line.
func writeChecks(w io.Writer, checks []poller.Check) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTARGET\tOK\tDETAIL\tFIX")
	for _, c := range checks {
		ok := "ok"
		switch {
		case !c.OK:
			ok = "FAIL"
		case c.Warning:
			ok = "warn"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Name, orDash(c.Target), ok, oneLine(c.Detail), orDash(c.Fix))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// startupDoctor builds the checks serve runs: the doctor for GET
// /api/doctor, and start, which runs them once within startupDoctorBudget,
// for serve to run in the background once it listens (as one of its
// inline tasks, which a stop waits for). Each failure is logged at WARN,
// each uncertain check at INFO: never fatal. The clients are made at the
// first run, so that finding credentials never delays listening. serve's
// checks never probe a channel (newDoctor).
func startupDoctor(c *config, d *deps, numberText string) (doc server.Doctor, start func(ctx context.Context)) {
	ld := &lazyDoctor{build: func(ctx context.Context) (poller.Doctor, error) {
		numbers, err := projectNumbers(numberText)
		if err != nil {
			return poller.Doctor{}, err
		}
		// The clients live as long as serve.
		pd, _, err := newDoctor(context.WithoutCancel(ctx), c, d.firestore, numbers, c.targets, false)
		return pd, err
	}}
	return ld, func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, startupDoctorBudget)
		defer cancel()
		logChecks(d.log, ld.Run(ctx))
	}
}

// lazyDoctor builds its poller.Doctor at its first Run, and again at the
// next Run after a failure to build it (a credentials blip), which is the
// one failed check of that Run. Runs take turns: a burst of GET
// /api/doctor runs the checks one set at a time.
type lazyDoctor struct {
	build func(ctx context.Context) (poller.Doctor, error)
	mu    sync.Mutex
	built bool
	doc   poller.Doctor
}

func (l *lazyDoctor) Run(ctx context.Context) []poller.Check {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.built {
		doc, err := l.build(ctx)
		if err != nil {
			return []poller.Check{{Name: "preflight", Detail: poller.BoundText("the checks could not be set up: "+err.Error(), poller.MaxErrorText)}}
		}
		l.doc, l.built = doc, true
	}
	return l.doc.Run(ctx)
}

func logChecks(log *slog.Logger, checks []poller.Check) {
	for _, c := range checks {
		switch {
		case !c.OK:
			log.Warn("preflight check failed", "check", c.Name, "target", c.Target, "detail", c.Detail, "fix", c.Fix)
		case c.Warning:
			log.Info("preflight check uncertain", "check", c.Name, "target", c.Target, "detail", c.Detail)
		}
	}
	log.Info("preflight checks done", "checks", len(checks), "failed", poller.Failed(checks))
}
