package main

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dsexport/dsexport/poller"
)

// exampleFile is the example, with the line numbers the tests name.
const exampleFile = `store: {project: ops-proj, database: dsexport}
targets:
  - name: shop-default
    project: shop-prod
    database: "(default)"
    export: {prefix: gs://shop-backups/daily, kinds: [Order, User], namespaces: ["(default)"], schedule: "every day 03:00", consistent: true}
    slackChannel: "#shop-backups"
  - name: shop-analytics
    project: shop-prod
    database: analytics
    backups: {expect: daily, retention: 14w}
`

// writeFile writes text to a file of the test's own and returns its path.
func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// fileEnv is an environment with the targets file at path and a bot token,
// without validEnv's single-target variables.
func fileEnv(path string, more map[string]string) func(string) string {
	vars := map[string]string{"DSEXPORT_CONFIG": path, "SLACK_TOKEN": "xoxb-1-2-abc", "SLACK_CHANNEL": "#backups"}
	for k, v := range more {
		if v == "" {
			delete(vars, k)
			continue
		}
		vars[k] = v
	}
	return func(k string) string { return vars[k] }
}

func TestTargetsFileExample(t *testing.T) {
	path := writeFile(t, "targets.yaml", exampleFile)
	c, err := newSettings(fileEnv(path, nil)).parse(forExport)
	if err != nil {
		t.Fatalf("parse(forExport) of the example = %v", err)
	}
	want := []poller.Target{
		{
			Name: "shop-default", Project: "shop-prod", Database: "(default)",
			// consistent: true on (default) takes the Firestore Admin API.
			Export: &poller.ExportRequest{Project: "shop-prod", Database: "(default)", Firestore: true, Target: "shop-default",
				Consistent: true, OutputURLPrefix: "gs://shop-backups/daily", Kinds: []string{"Order", "User"}, Namespaces: []string{""}, CronWindow: 12 * time.Hour},
			Schedule: "every day 03:00", Every: 24 * time.Hour, Channel: "#shop-backups",
		},
		{
			Name: "shop-analytics", Project: "shop-prod", Database: "analytics",
			Backups: &poller.BackupWatch{Recurrence: poller.Daily, Retention: 14 * 7 * 24 * time.Hour},
		},
	}
	if !reflect.DeepEqual(c.targets, want) {
		t.Errorf("targets =\n%+v\nwant\n%+v", c.targets, want)
	}
	if got, want := c.storeProject+"/"+c.storeDatabase, "ops-proj/dsexport"; got != want {
		t.Errorf("store = %s; want %s", got, want)
	}
	if got := c.export.storeProject; got != "ops-proj" {
		t.Errorf("export.storeProject = %q; want ops-proj", got)
	}
	for _, name := range []string{"shop-default", "shop-analytics"} {
		if tg, err := c.target(name); err != nil || tg.Name != name {
			t.Errorf("target(%q) = %q, %v; want that target", name, tg.Name, err)
		}
	}
	_, err = c.target("")
	assertUsage(t, err, "name one of", `"shop-default", "shop-analytics"`)
	_, err = c.target("shop")
	assertUsage(t, err, `no target "shop"`, `"shop-default", "shop-analytics"`)
}

func TestTargetsFileDefaults(t *testing.T) {
	file := `targets:
  - name: named
    project: p-one
    database: orders
    export: {prefix: "gs://b-one/x"}
  - name: "7"
    project: p-two
    export: {prefix: "gs://b-two", schedule: "0 */6 * * *", api: firestore}
    backups: {expect: weekly, report: true}
  - name: plain
    project: p-two
    export: {prefix: "gs://b-two", schedule: "every monday,thursday 02:30"}
`
	path := writeFile(t, "t.yaml", file)
	c, err := newSettings(fileEnv(path, map[string]string{"GOOGLE_CLOUD_PROJECT": "ops", "DSEXPORT_STORE_DATABASE": "records"})).parse(forExport)
	if err != nil {
		t.Fatalf("parse = %v", err)
	}
	want := []poller.Target{
		// A named database takes the Firestore Admin API by default.
		{Name: "named", Project: "p-one", Database: "orders",
			Export: &poller.ExportRequest{Project: "p-one", Database: "orders", Firestore: true, Target: "named", OutputURLPrefix: "gs://b-one/x"}},
		{Name: "7", Project: "p-two", Database: "(default)",
			Export:   &poller.ExportRequest{Project: "p-two", Database: "(default)", Firestore: true, Target: "7", OutputURLPrefix: "gs://b-two", CronWindow: 3 * time.Hour},
			Schedule: "0 */6 * * *", Every: 6 * time.Hour, Backups: &poller.BackupWatch{Recurrence: poller.Weekly, Report: true}},
		// (default) takes the Datastore Admin API unless asked otherwise.
		{Name: "plain", Project: "p-two", Database: "(default)",
			Export:   &poller.ExportRequest{Project: "p-two", Database: "(default)", Target: "plain", OutputURLPrefix: "gs://b-two", CronWindow: 2 * 24 * time.Hour},
			Schedule: "every monday,thursday 02:30", Every: 4 * 24 * time.Hour},
	}
	if !reflect.DeepEqual(c.targets, want) {
		t.Errorf("targets =\n%+v\nwant\n%+v", c.targets, want)
	}
	// No store: in the file: GOOGLE_CLOUD_PROJECT and DSEXPORT_STORE_DATABASE.
	if got, want := c.storeProject+"/"+c.storeDatabase, "ops/records"; got != want {
		t.Errorf("store = %s; want %s", got, want)
	}

	// The file's store: wins over the variables, a flag over the file.
	path = writeFile(t, "s.yaml", "store: {project: file-proj, database: file-db}\n"+file)
	s := newSettings(fileEnv(path, map[string]string{"GOOGLE_CLOUD_PROJECT": "env-proj", "DSEXPORT_STORE_DATABASE": "env-db"}))
	if c, err = s.parse(forReading); err != nil {
		t.Fatal(err)
	}
	if got, want := c.storeProject+"/"+c.storeDatabase, "file-proj/file-db"; got != want {
		t.Errorf("store with store: in the file = %s; want %s", got, want)
	}
	s["GOOGLE_CLOUD_PROJECT"].val, s["GOOGLE_CLOUD_PROJECT"].fromFlag = "flag-proj", true
	s["DSEXPORT_STORE_DATABASE"].val, s["DSEXPORT_STORE_DATABASE"].fromFlag = "flag-db", true
	if c, err = s.parse(forReading); err != nil {
		t.Fatal(err)
	}
	if got, want := c.storeProject+"/"+c.storeDatabase, "flag-proj/flag-db"; got != want {
		t.Errorf("store with flags = %s; want %s", got, want)
	}
}

// assertUsage checks that err is a *usageError whose text holds each of wants.
func assertUsage(t *testing.T, err error, wants ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("error = nil; want one naming %q", wants)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not name %q", err, w)
		}
	}
	var ue *usageError
	if !errors.As(err, &ue) {
		t.Errorf("error %q is %T; want *usageError (exit 2)", err, err)
	}
}

// target is a file of one target whose fields are given.
func oneTarget(fields string) string {
	return "store: {project: ops-proj}\ntargets:\n  - name: t1\n    project: shop-prod\n" + fields
}

func TestTargetsFileErrors(t *testing.T) {
	tests := []struct {
		name, file string
		env        map[string]string
		// want must all appear in the error.
		want []string
	}{
		{"unknown field", oneTarget("    export: {prefix: gs://b-b/x, prefx: 1}\n"), nil,
			[]string{"line 5:", "targets[0].export.prefx: unknown field", "prefix, kinds"}},
		{"misspelt target field", oneTarget("    export: {prefix: gs://b-b/x}\n    slack_channel: '#x'\n"), nil,
			[]string{"line 6:", "targets[0].slack_channel: unknown field"}},
		{"unknown top field", "stores: {}\ntargets: []\n", nil, []string{"line 1:", "stores: unknown field"}},
		{"field given twice", oneTarget("    export: {prefix: gs://b-b/x}\n    project: other\n"), nil,
			[]string{"line 6:", "targets[0].project: given twice"}},
		{"duplicate name", oneTarget("    export: {prefix: gs://b-b/x}\n  - name: t1\n    project: p2\n    backups: {expect: daily}\n"), nil,
			[]string{"line 6:", "targets[1].name", `"t1" is the name of targets[0] too`}},
		{"bad name", "targets:\n  - name: Shop_Default\n    project: p\n    backups: {expect: daily}\n", nil,
			[]string{"line 2:", "targets[0].name", `"Shop_Default" is not a name`}},
		{"name too long", "targets:\n  - name: " + strings.Repeat("a", 64) + "\n    project: p\n    backups: {expect: daily}\n", nil,
			[]string{"line 2:", "targets[0].name"}},
		{"no name", "targets:\n  - project: p\n    backups: {expect: daily}\n", nil, []string{"line 2:", "targets[0].name: not set"}},
		{"bad project", "targets:\n  - name: a\n    project: Shop_Prod\n    backups: {expect: daily}\n", nil,
			[]string{"line 3:", "targets[0].project", `"Shop_Prod" is not a valid project ID`}},
		{"no project", "targets:\n  - name: a\n    backups: {expect: daily}\n", nil, []string{"line 2:", "targets[0].project: not set"}},
		{"bad database", oneTarget("    database: Analytics\n    backups: {expect: daily}\n"), nil,
			[]string{"line 5:", "targets[0].database", `database "Analytics" is not`}},
		{"empty database", oneTarget("    database: ''\n    backups: {expect: daily}\n"), nil,
			[]string{"line 5:", "targets[0].database", "empty"}},
		{"neither export nor backups", oneTarget("    database: analytics\n"), nil,
			[]string{"line 3:", "targets[0]: neither export: nor backups:"}},
		{"bad prefix", "targets:\n  - name: a\n    project: p-1\n    database: x-db\n    backups: {expect: daily}\n  - name: b\n    project: p-1\n    export:\n      prefix: s3://x\n", nil,
			[]string{"line 9:", "targets[1].export.prefix", `output prefix "s3://x" must start with gs://`}},
		{"no prefix", oneTarget("    export: {kinds: [A]}\n"), nil, []string{"line 5:", "targets[0].export.prefix: not set"}},
		{"reserved kind", oneTarget("    export: {prefix: gs://b-b, kinds: [__Stat__]}\n"), nil,
			[]string{"line 5:", "targets[0].export.kinds", "reserved kind"}},
		{"too many kinds × namespaces", oneTarget("    export:\n      prefix: gs://b-b\n      kinds: [A, B, C, D, E, F, G, H, I, J, K]\n      namespaces: [a, b, c, d, e, f, g, h, i, j]\n"), nil,
			[]string{"line 7:", "targets[0].export.kinds × namespaces", "110 combinations"}},
		{"too many kinds", oneTarget("    export: {prefix: gs://b-b, kinds: [" + strings.Repeat("A,", 100) + "B]}\n"), nil,
			[]string{"line 5:", "targets[0].export.kinds", "101 entries"}},
		{"kinds not a list", oneTarget("    export: {prefix: gs://b-b, kinds: Order}\n"), nil,
			[]string{"line 5:", "targets[0].export.kinds", "want a list"}},
		{"bad schedule", oneTarget("    export: {prefix: gs://b-b, schedule: every fortnight}\n"), nil,
			[]string{"line 5:", "targets[0].export.schedule", `"every fortnight"`}},
		{"unconvertible schedule", oneTarget("    export: {prefix: gs://b-b, schedule: '0 3 1 * *'}\n"), nil,
			[]string{"line 5:", "targets[0].export.schedule", "day of the month"}},
		{"bad api", oneTarget("    export: {prefix: gs://b-b, api: mongo}\n"), nil,
			[]string{"line 5:", "targets[0].export.api", `"mongo": want datastore or firestore`}},
		{"consistent with api datastore", oneTarget("    export: {prefix: gs://b-b, consistent: true, api: datastore}\n"), nil,
			[]string{"line 5:", "targets[0].export.api", "consistent: true needs the Firestore Admin API"}},
		{"named database with api datastore", oneTarget("    database: analytics\n    export: {prefix: gs://b-b, api: datastore}\n"), nil,
			[]string{"line 6:", "targets[0].export.api", "only the (default) database"}},
		{"consistent not a bool", oneTarget("    export: {prefix: gs://b-b, consistent: yes please}\n"), nil,
			[]string{"line 5:", "targets[0].export.consistent", "want true or false"}},
		{"drill without export", oneTarget("    backups: {expect: daily}\n    drill: {every: 7d}\n"), nil,
			[]string{"line 6:", "targets[0].drill", "has no export:"}},
		{"drill without every", oneTarget("    export: {prefix: gs://b-b}\n    drill: {kinds: [Order]}\n"), nil,
			[]string{"line 6:", "targets[0].drill.every: not set"}},
		{"drill every not a span", oneTarget("    export: {prefix: gs://b-b}\n    drill: {every: weekly}\n"), nil,
			[]string{"line 6:", "targets[0].drill.every", `"weekly" is not a span such as 7d`}},
		{"drill every too short", oneTarget("    export: {prefix: gs://b-b}\n    drill: {every: 5m}\n"), nil,
			[]string{"line 6:", "targets[0].drill.every", "not between 1h0m0s and"}},
		{"drill unknown field", oneTarget("    export: {prefix: gs://b-b}\n    drill: {every: 7d, scratch: x}\n"), nil,
			[]string{"line 6:", "targets[0].drill", "scratch"}},
		{"drill reserved kind", oneTarget("    export: {prefix: gs://b-b}\n    drill: {every: 7d, kinds: [__key__]}\n"), nil,
			[]string{"line 6:", "targets[0].drill.kinds", "not a kind a drill can import"}},
		{"drill into the target's own database", oneTarget("    export: {prefix: gs://b-b}\n    drill: {every: 7d, database: '(default)'}\n"), nil,
			[]string{"line 6:", "targets[0].drill.database", "the target's own database"}},
		{"drill into the target's own database, named", oneTarget("    database: orders\n    export: {prefix: gs://b-b}\n    drill: {every: 7d, project: shop-prod, database: orders}\n"), nil,
			[]string{"line 7:", "targets[0].drill.database", "the target's own database"}},
		{"drill location with database", oneTarget("    export: {prefix: gs://b-b}\n    drill: {every: 7d, project: scratch-1, database: d-b1, location: nam5}\n"), nil,
			[]string{"line 6:", "targets[0].drill.location", "with database: set"}},
		{"drill bad location", oneTarget("    export: {prefix: gs://b-b}\n    drill: {every: 7d, location: 'US East'}\n"), nil,
			[]string{"line 6:", "targets[0].drill.location", "not a location"}},
		{"drill bad project", oneTarget("    export: {prefix: gs://b-b}\n    drill: {every: 7d, project: Scratch}\n"), nil,
			[]string{"line 6:", "targets[0].drill.project"}},
		{"drill into the store", "store: {project: ops-proj, database: dsexport}\ntargets:\n  - name: t1\n    project: shop-prod\n    export: {prefix: gs://b-b}\n    drill: {every: 7d, project: ops-proj, database: dsexport}\n", nil,
			[]string{"target \"t1\": drill.database ops-proj/dsexport is dsexport's store"}},
		{"drill into another target's database", "store: {project: ops-proj}\ntargets:\n  - name: t1\n    project: shop-prod\n    export: {prefix: gs://b-b}\n    drill: {every: 7d, project: crm-prod, database: '(default)'}\n  - name: t2\n    project: crm-prod\n    export: {prefix: gs://c-c}\n", nil,
			[]string{"target \"t1\": drill.database crm-prod/(default) is target \"t2\"'s database"}},
		{"drill into a watched target's database", "store: {project: ops-proj}\ntargets:\n  - name: t1\n    project: shop-prod\n    export: {prefix: gs://b-b}\n    drill: {every: 7d, project: crm-prod, database: orders}\n  - name: t2\n    project: crm-prod\n    database: orders\n    backups: {expect: daily}\n", nil,
			[]string{"target \"t1\": drill.database crm-prod/orders is target \"t2\"'s database"}},
		{"bad expect", oneTarget("    backups: {expect: hourly}\n"), nil,
			[]string{"line 5:", "targets[0].backups.expect", `"hourly" is not daily or weekly`}},
		{"no expect", oneTarget("    backups: {retention: 2w}\n"), nil, []string{"line 5:", "targets[0].backups.expect: not set"}},
		{"bad retention", oneTarget("    backups: {expect: daily, retention: two weeks}\n"), nil,
			[]string{"line 5:", "targets[0].backups.retention", `"two weeks" is not a retention`}},
		{"retention over 14 weeks", oneTarget("    backups:\n      expect: weekly\n      retention: 15w\n"), nil,
			[]string{"line 7:", "targets[0].backups.retention", "longer than 14 weeks"}},
		{"retention of 99 days", oneTarget("    backups: {expect: weekly, retention: 99d}\n"), nil,
			[]string{"line 5:", "targets[0].backups.retention", "longer than 14 weeks"}},
		{"retention zero", oneTarget("    backups: {expect: weekly, retention: 0h}\n"), nil,
			[]string{"line 5:", "targets[0].backups.retention"}},
		{"slackChannel with a webhook", oneTarget("    backups: {expect: daily}\n    slackChannel: '#shop'\n"),
			map[string]string{"SLACK_TOKEN": "", "SLACK_CHANNEL": "", "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/" + webhookSecret},
			[]string{"line 6:", "targets[0].slackChannel", "SLACK_WEBHOOK_URL", "SLACK_TOKEN or DSEXPORT_SLACK_TOKEN_SECRET"}},
		{"slackChannel with no Slack", oneTarget("    backups: {expect: daily}\n    slackChannel: '#shop'\n"),
			map[string]string{"SLACK_TOKEN": "", "SLACK_CHANNEL": ""},
			[]string{"line 6:", "targets[0].slackChannel", "SLACK_TOKEN or DSEXPORT_SLACK_TOKEN_SECRET"}},
		{"bad slackChannel", oneTarget("    backups: {expect: daily}\n    slackChannel: 'two words'\n"), nil,
			[]string{"line 6:", "targets[0].slackChannel", "not a Slack channel"}},
		{"bad store project", "store: {project: Ops}\n" + oneTarget("    backups: {expect: daily}\n")[len("store: {project: ops-proj}\n"):], nil,
			[]string{"line 1:", "store.project", `"Ops" is not a valid project ID`}},
		{"bad store database", "store: {database: X}\n" + oneTarget("    backups: {expect: daily}\n")[len("store: {project: ops-proj}\n"):], nil,
			[]string{"line 1:", "store.database"}},
		{"no store project", "targets:\n  - name: a\n    project: shop-prod\n    backups: {expect: daily}\n", nil,
			[]string{"store.project is not set, nor GOOGLE_CLOUD_PROJECT"}},
		{"no targets", "store: {project: ops-proj}\n", nil, []string{"line 1:", "targets: not set"}},
		{"empty targets", "store: {project: ops-proj}\ntargets: []\n", nil, []string{"line 2:", "targets: empty"}},
		{"target not a mapping", "targets:\n  - shop\n", nil, []string{"line 2:", "targets[0]: want a mapping"}},
		{"empty file", "", nil, []string{"the file is empty"}},
		{"two documents", oneTarget("    backups: {expect: daily}\n") + "---\ntargets: []\n", nil,
			[]string{"line 6:", "a second YAML document"}},
		{"YAML syntax error", "targets:\n  - name: a\n    project: [p\n", nil, []string{"line 3:", "did not find expected ',' or ']'"}},
		{"YAML syntax error in a block", "targets:\n  - name: a\n  project: p\n   backups: x\n", nil, []string{"line 2:", "in the block that starts there"}},
		{"YAML syntax error in the middle", strings.Replace(exampleFile, "kinds: [Order, User]", "kinds: [Order, User", 1), nil, []string{"line 6:"}},
		{"YAML scanner error", "targets:\n  - name: a\n    project: p: q\n", nil, []string{"line 3:", "mapping values are not allowed"}},
		{"tab indentation", "targets:\n\t- name: a\n", nil, []string{"line 2:"}},
		{"single-target variable with the file", oneTarget("    backups: {expect: daily}\n"),
			map[string]string{"DSEXPORT_OUTPUT_PREFIX": "gs://b-b"}, []string{"DSEXPORT_OUTPUT_PREFIX is set with DSEXPORT_CONFIG="}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "targets.yaml", tt.file)
			_, err := newSettings(fileEnv(path, tt.env)).parse(forExport)
			assertUsage(t, err, append(tt.want, "DSEXPORT_CONFIG="+path)...)
		})
	}
}

func TestMissingTargetsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nowhere.yaml")
	s := newSettings(fileEnv(path, nil))
	_, err := s.parse(forReading)
	assertUsage(t, err, "DSEXPORT_CONFIG="+path, "no such file")
	// Given by flag, the error names the flag.
	s["DSEXPORT_CONFIG"].fromFlag = true
	_, err = s.parse(forReading)
	assertUsage(t, err, "--config="+path+": ")
}

// TestStoreApart: serve and export refuse a store inside a database they
// export, naming both; reading commands do not, so that records of
// earlier versions, in (default), can still be listed.
func TestStoreApart(t *testing.T) {
	refused := strings.Replace(exampleFile, "store: {project: ops-proj, database: dsexport}", `store: {project: shop-prod, database: "(default)"}`, 1)
	path := writeFile(t, "targets.yaml", refused)
	for _, p := range []purpose{forExport, forServe} {
		_, err := newSettings(fileEnv(path, map[string]string{"DSEXPORT_INVOKERS": "ops@example.com"})).parse(p)
		assertUsage(t, err, `store shop-prod/(default) is the database target "shop-default" exports`,
			"set store.database (DSEXPORT_STORE_DATABASE) to a database of its own, e.g. dsexport")
	}
	if _, err := newSettings(fileEnv(path, nil)).parse(forReading); err != nil {
		t.Errorf("parse(forReading) = %v; want nil: reading does not write records", err)
	}
	// A database only watched for managed backups may hold the store: a
	// backup is restored into a new database, never over it.
	watched := strings.Replace(exampleFile, "store: {project: ops-proj, database: dsexport}", "store: {project: shop-prod, database: analytics}", 1)
	if _, err := newSettings(fileEnv(writeFile(t, "w.yaml", watched), nil)).parse(forExport); err != nil {
		t.Errorf("store in a watched database: parse = %v; want nil", err)
	}
	// The emulator changes nothing: the configuration is wrong either way.
	_, err := newSettings(fileEnv(path, map[string]string{"DATASTORE_EMULATOR_HOST": "127.0.0.1:8081"})).parse(forExport)
	assertUsage(t, err, "store shop-prod/(default)")

	// With no file, the variables' target and DSEXPORT_STORE_DATABASE.
	env := map[string]string{"DSEXPORT_STORE_DATABASE": "(default)"}
	_, err = newSettings(getenvWith(env)).parse(forExport)
	assertUsage(t, err, "store example-proj/(default) is the database DSEXPORT_PROJECT exports")
	c, err := newSettings(getenvWith(env)).parse(forReading)
	if err != nil {
		t.Fatalf("parse(forReading) with DSEXPORT_STORE_DATABASE=(default) = %v; want nil", err)
	}
	if got, want := c.storeDatabase, "(default)"; got != want {
		t.Errorf("storeDatabase = %q; want %q", got, want)
	}
	// The store in another project's (default) database is apart.
	if _, err = newSettings(getenvWith(map[string]string{"DSEXPORT_STORE_DATABASE": "(default)", "GOOGLE_CLOUD_PROJECT": "ops-proj"})).parse(forExport); err != nil {
		t.Errorf("store in another project's (default): parse = %v; want nil", err)
	}
	_, err = newSettings(getenvWith(map[string]string{"DSEXPORT_STORE_DATABASE": "Bad"})).parse(forReading)
	assertUsage(t, err, "DSEXPORT_STORE_DATABASE", `"Bad"`)
}

// TestEnvTarget: with no file the variables define one target, without a
// name, whose export is the request as before targets.
func TestEnvTarget(t *testing.T) {
	c, err := newSettings(getenvWith(map[string]string{"DSEXPORT_KINDS": "Order"})).parse(forExport)
	if err != nil {
		t.Fatal(err)
	}
	want := poller.Target{Project: "example-proj", Database: "(default)",
		Export: &poller.ExportRequest{Project: "example-proj", OutputURLPrefix: "gs://example-backups/daily", Kinds: []string{"Order"}}}
	got, err := c.target("")
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("target(\"\") = %+v, %v; want %+v", got, err, want)
	}
	if len(c.targets) != 1 {
		t.Errorf("targets = %+v; want one", c.targets)
	}
	_, err = c.target("shop")
	assertUsage(t, err, `no target "shop"`, "no DSEXPORT_CONFIG")
	if got, want := c.storeProject+"/"+c.storeDatabase, "example-proj/dsexport"; got != want {
		t.Errorf("store = %s; want %s (the store's own database by default)", got, want)
	}
}
