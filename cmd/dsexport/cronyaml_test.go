package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestParseSchedule(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		in              string
		appEngine, unix string
		every           time.Duration
	}{
		{"every day 03:00", "every day 03:00", "0 3 * * *", day},
		{"every day 3:05", "every day 03:05", "5 3 * * *", day},
		{"  every   day 23:59 ", "every day 23:59", "59 23 * * *", day},
		{"every 24 hours", "every 24 hours", "0 0 * * *", day},
		{"every 6 hours", "every 6 hours", "0 */6 * * *", 6 * time.Hour},
		{"every 1 hours", "every 1 hours", "0 * * * *", time.Hour},
		{"every 30 minutes", "every 30 minutes", "*/30 * * * *", 30 * time.Minute},
		{"every 5 mins", "every 5 minutes", "*/5 * * * *", 5 * time.Minute},
		{"every 1 minutes", "every 1 minutes", "* * * * *", time.Minute},
		{"every 60 minutes", "every 1 hours", "0 * * * *", time.Hour},
		{"every monday 03:00", "every monday 03:00", "0 3 * * 1", 7 * day},
		{"every mon,thu 02:30", "every monday,thursday 02:30", "30 2 * * 1,4", 4 * day},
		{"every sunday,saturday 00:00", "every sunday,saturday 00:00", "0 0 * * 0,6", 6 * day},
		{"every monday,tuesday,wednesday,thursday,friday,saturday,sunday 01:00", "every day 01:00", "0 1 * * *", day},
		{"0 3 * * *", "every day 03:00", "0 3 * * *", day},
		{"15 23 * * *", "every day 23:15", "15 23 * * *", day},
		{"0 3 * * 1", "every monday 03:00", "0 3 * * 1", 7 * day},
		{"0 3 * * 4,1", "every monday,thursday 03:00", "0 3 * * 1,4", 4 * day},
		{"0 3 * * 7", "every sunday 03:00", "0 3 * * 0", 7 * day},
		{"0 3 * * mon,FRI", "every monday,friday 03:00", "0 3 * * 1,5", 4 * day},
		{"0 */6 * * *", "every 6 hours", "0 */6 * * *", 6 * time.Hour},
		{"0 * * * *", "every 1 hours", "0 * * * *", time.Hour},
		{"*/15 * * * *", "every 15 minutes", "*/15 * * * *", 15 * time.Minute},
		{"* * * * *", "every 1 minutes", "* * * * *", time.Minute},
	}
	for _, tt := range tests {
		got, err := parseSchedule(tt.in)
		if err != nil {
			t.Errorf("parseSchedule(%q) = %v", tt.in, err)
			continue
		}
		want := cronSchedule{tt.appEngine, tt.unix, tt.every}
		if got != want {
			t.Errorf("parseSchedule(%q) = %+v; want %+v", tt.in, got, want)
		}
		// Each form read back is the same schedule.
		for _, form := range []string{got.appEngine, got.unix} {
			if back, err := parseSchedule(form); err != nil || back.unix != got.unix || back.every != got.every {
				t.Errorf("parseSchedule(%q) (from %q) = %+v, %v; want unix %q every %s", form, tt.in, back, err, got.unix, got.every)
			}
		}
	}
}

func TestParseScheduleErrors(t *testing.T) {
	for _, in := range []string{
		"", "daily", "every fortnight", "every day", "every day 24:00", "every day 3:5", "every day 03:60",
		"every 7 minutes", "every 5 hours", "every 0 hours", "every 90 minutes", "every 2 days",
		"every funday 03:00", "every 6 hours from 08:00 to 20:00", "1st monday of month 09:00",
		"0 3 1 * *", "0 3 * 1 *", "*/7 * * * *", "0 */5 * * *", "30 */6 * * *", "0 3,15 * * *", "60 3 * * *",
		"0 24 * * *", "0 3 * * 8", "0 3 * * 1-5", "5 * * * *", "*/15 3 * * *", "0 3 * * * *",
	} {
		if got, err := parseSchedule(in); err == nil {
			t.Errorf("parseSchedule(%q) = %+v, nil; want an error", in, got)
		} else if !strings.Contains(err.Error(), "schedule") {
			t.Errorf("parseSchedule(%q) error %q does not say schedule", in, err)
		}
	}
}

// cronFile is cron.yaml as App Engine reads it.
type cronFile struct {
	Cron []struct {
		Description, URL, Schedule, Timezone, Target string
		Retry                                        *struct {
			JobRetryLimit     int `yaml:"job_retry_limit"`
			MinBackoffSeconds int `yaml:"min_backoff_seconds"`
			MaxBackoffSeconds int `yaml:"max_backoff_seconds"`
			MaxDoublings      int `yaml:"max_doublings"`
		} `yaml:"retry_parameters"`
	}
}

// exampleWithSchedules is the example and a third target, exported
// on a unix schedule.
const exampleWithSchedules = exampleFile + `  - name: orders
    project: shop-prod
    database: orders
    export:
      prefix: gs://shop-backups/orders
      schedule: "0 */6 * * *"
  - name: by-hand
    project: shop-prod
    database: by-hand
    export: {prefix: gs://shop-backups/by-hand}
`

func TestCronYAML(t *testing.T) {
	path := writeFile(t, "targets.yaml", exampleWithSchedules)
	var out, errOut bytes.Buffer
	getenv := func(string) string { return "" }
	if err := run(context.Background(), []string{"cron-yaml", "--config", path, "--service", "backups"}, getenv, &out, &errOut); err != nil {
		t.Fatalf("cron-yaml = %v (%s)", err, errOut.String())
	}
	dec := yaml.NewDecoder(bytes.NewReader(out.Bytes()))
	dec.KnownFields(true)
	var got cronFile
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("cron-yaml's output is not cron.yaml: %v\n%s", err, out.String())
	}
	type entry struct{ url, schedule, timezone, target string }
	want := []entry{
		{"/cron/export?target=shop-default", "every day 03:00", "UTC", "backups"},
		// The unix schedule is written in App Engine's words.
		{"/cron/export?target=orders", "every 6 hours", "UTC", "backups"},
		// The target without a schedule (shop-analytics only watches
		// backups, by-hand is exported by hand) has no job.
		{"/cron/sweep", "every 10 minutes", "", "backups"},
	}
	if len(got.Cron) != len(want) {
		t.Fatalf("cron-yaml has %d entries; want %d:\n%s", len(got.Cron), len(want), out.String())
	}
	for i, w := range want {
		e := got.Cron[i]
		if g := (entry{e.URL, e.Schedule, e.Timezone, e.Target}); g != w {
			t.Errorf("entry %d = %+v; want %+v", i, g, w)
		}
		if e.Description == "" {
			t.Errorf("entry %d has no description", i)
		}
		// Exports are retried as the repository's cron.yaml retries them; the sweep is not.
		if exported := strings.HasPrefix(e.URL, "/cron/export"); exported != (e.Retry != nil) {
			t.Errorf("entry %d (%s) retry_parameters = %+v", i, e.URL, e.Retry)
		} else if exported && (e.Retry.JobRetryLimit != 3 || e.Retry.MinBackoffSeconds != 60 || e.Retry.MaxBackoffSeconds != 600 || e.Retry.MaxDoublings != 2) {
			t.Errorf("entry %d retry_parameters = %+v; want cron.yaml's 3, 60, 600, 2", i, *e.Retry)
		}
	}
	if !strings.Contains(got.Cron[1].Description, "shop-prod/orders") {
		t.Errorf("description %q does not name the database", got.Cron[1].Description)
	}
}

// TestCronYAMLMirrorsRepository: the repository's cron.yaml and the
// generated one agree on everything but the jobs' targets.
func TestCronYAMLMirrorsRepository(t *testing.T) {
	data, err := os.ReadFile("../../cron.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var repo cronFile
	if err := yaml.Unmarshal(data, &repo); err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, "t.yaml", "targets:\n  - name: a\n    project: shop-prod\n    export: {prefix: gs://b-b, schedule: every day 03:00}\n")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"cron-yaml", "--config", path}, func(string) string { return "" }, &out, &out); err != nil {
		t.Fatal(err)
	}
	var gen cronFile
	if err := yaml.Unmarshal(out.Bytes(), &gen); err != nil {
		t.Fatal(err)
	}
	if len(repo.Cron) != 2 || len(gen.Cron) != 2 {
		t.Fatalf("entries: repository %d, generated %d; want 2 each", len(repo.Cron), len(gen.Cron))
	}
	for i := range repo.Cron {
		r, g := repo.Cron[i], gen.Cron[i]
		if r.Schedule != g.Schedule || r.Timezone != g.Timezone || r.Target != g.Target || (r.Retry == nil) != (g.Retry == nil) ||
			(r.Retry != nil && *r.Retry != *g.Retry) || strings.Split(r.URL, "?")[0] != strings.Split(g.URL, "?")[0] {
			t.Errorf("entry %d: repository %+v, generated %+v", i, r, g)
		}
	}
}

func TestCronYAMLScheduler(t *testing.T) {
	path := writeFile(t, "targets.yaml", exampleWithSchedules)
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"cron-yaml", "--scheduler"}, func(k string) string {
		if k == "DSEXPORT_CONFIG" {
			return path
		}
		return ""
	}, &out, &errOut); err != nil {
		t.Fatalf("cron-yaml --scheduler = %v (%s)", err, errOut.String())
	}
	want := "shop-default\t0 3 * * *\t/cron/export?target=shop-default\n" +
		"orders\t0 */6 * * *\t/cron/export?target=orders\n"
	if got := out.String(); got != want {
		t.Errorf("cron-yaml --scheduler =\n%q\nwant\n%q", got, want)
	}
}

func TestCronYAMLErrors(t *testing.T) {
	bad := writeFile(t, "bad.yaml", strings.Replace(exampleFile, "every day 03:00", "every fortnight", 1))
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"cron-yaml"}, []string{"cron-yaml needs DSEXPORT_CONFIG"}},
		{[]string{"cron-yaml", "--config", bad}, []string{"--config=" + bad, "line 6:", "targets[0].export.schedule"}},
		{[]string{"cron-yaml", "--config", bad, "--time-zone", "Mars/Base"}, []string{"--time-zone"}},
		{[]string{"cron-yaml", "extra"}, []string{"takes no arguments"}},
	} {
		var out bytes.Buffer
		err := run(context.Background(), tt.args, func(string) string { return "" }, &out, &out)
		assertUsage(t, err, tt.want...)
		if strings.Contains(out.String(), "cron:") {
			t.Errorf("%q printed a cron.yaml despite the error", tt.args)
		}
	}
}
