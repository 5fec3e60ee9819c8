package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/dsexport/dsexport/poller"
)

// The file DSEXPORT_CONFIG names lists the targets, for example:
//
//	store: {project: ops-proj, database: dsexport}
//	targets:
//	  - name: shop-default
//	    project: shop-prod
//	    database: "(default)"
//	    export: {prefix: gs://shop-backups/daily, kinds: [Order, User], namespaces: ["(default)"], schedule: "every day 03:00", consistent: true}
//	    slackChannel: "#shop-backups"
//	  - name: shop-analytics
//	    project: shop-prod
//	    database: analytics
//	    backups: {expect: daily, retention: 14w}
//
// Every field but a target's name, project and one of export: and backups:
// is optional. An unknown field is a mistake, as is a value of the wrong
// kind; each error names the file, the line and the field's path.

const (
	// maxConfigFile bounds the file read: a hundred targets take some 30 KB.
	maxConfigFile = 1 << 20
	// maxTargets bounds the targets of one file. With each list at most
	// MaxFilterCombinations long it also bounds the walk when YAML aliases
	// repeat one node many times.
	maxTargets = 1000
	// maxRetention is the longest Google keeps a managed backup: 14 weeks.
	maxRetention = 14 * 7 * 24 * time.Hour
	// maxChannel bounds a Slack channel: names hold at most 80 characters.
	maxChannel = 81
)

// targetNameRE is a target's name: it is part of URLs (?target=), Cloud
// Scheduler job ids and command lines, so letters, digits and hyphens.
var targetNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// targetsFile is a checked DSEXPORT_CONFIG file. The store's project and
// database are "" where the file does not say; parse fills in their
// defaults from the environment.
type targetsFile struct {
	storeProject, storeDatabase string
	targets                     []poller.Target
	// channelLines are the lines of the targets' slackChannel fields, by
	// target index (0: none), for the check against the Slack settings.
	channelLines []int
}

// readTargetsFile reads and checks the file at path. src names it in
// errors: DSEXPORT_CONFIG=path or --config=path.
func readTargetsFile(src, path string) (targetsFile, error) {
	f, err := os.Open(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is in src already
		}
		return targetsFile{}, usagef("%s: %v", src, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigFile+1))
	if err != nil {
		return targetsFile{}, usagef("%s: %v", src, err)
	}
	if len(data) > maxConfigFile {
		return targetsFile{}, usagef("%s: the file is over %d bytes", src, maxConfigFile)
	}
	return parseTargetsFile(src, data)
}

// parseTargetsFile checks the file's text. The YAML is decoded to nodes,
// not straight into Go structs, so that each mistake is named by its line
// and its path in the file (targets[1].export.prefix); the walk below
// refuses unknown fields as KnownFields(true) would, and names them.
func parseTargetsFile(src string, data []byte) (targetsFile, error) {
	p := fileParser{src: src}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return targetsFile{}, usagef("%s: the file is empty; want store: and targets:", src)
		}
		return targetsFile{}, p.syntaxError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return targetsFile{}, p.syntaxError(err)
		}
		return targetsFile{}, p.errorf(&extra, "", "a second YAML document; the file holds one")
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	return p.file(doc)
}

// fileParser walks the file's nodes; src names the file in errors.
type fileParser struct{ src string }

// errorf is a mistake at node n, whose path in the file is path.
func (p fileParser) errorf(n *yaml.Node, path, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if n == nil {
		return usagef("%s: %s: %s", p.src, path, msg)
	}
	if path == "" {
		return usagef("%s: line %d: %s", p.src, n.Line, msg)
	}
	return usagef("%s: line %d: %s: %s", p.src, n.Line, path, msg)
}

// syntaxError is the YAML library's error, which says the line ("yaml:
// line 3: mapping values are not allowed in this context"). For the
// parser's errors (as against the scanner's) the library gives the line
// of the construct the mistake is in, counting from 0; it is made the
// usual count from 1 here, and said to be where that construct starts.
func (p fileParser) syntaxError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		num, problem, _ := strings.Cut(rest, ": ")
		if n, err := strconv.Atoi(num); err == nil && slices.Contains(parserProblems, problem) {
			msg = fmt.Sprintf("line %d: %s (in the block that starts there)", n+1, problem)
		}
	}
	return usagef("%s: %s", p.src, poller.BoundText(msg, 512))
}

// parserProblems are the YAML parser's messages, whose line is off by one.
var parserProblems = []string{
	"did not find expected ',' or ']'", "did not find expected ',' or '}'", "did not find expected '-' indicator",
	"did not find expected <document start>", "did not find expected key", "did not find expected node content",
}

// fieldError places a *poller.FieldError in the file: fields maps the
// validator's field names to their paths and nodes.
func (p fileParser) fieldError(err error, fields map[string]fieldAt) error {
	var fe *poller.FieldError
	if errors.As(err, &fe) {
		if at, ok := fields[fe.Field]; ok {
			return p.errorf(at.node, at.path, "%v", fe.Err)
		}
	}
	return usagef("%s: %v", p.src, err)
}

type fieldAt struct {
	path string
	node *yaml.Node
}

// deref is the node an alias stands for.
func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// fields reads the mapping at n, whose keys must be among known.
func (p fileParser) fields(n *yaml.Node, path string, known ...string) (map[string]*yaml.Node, error) {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		return nil, p.errorf(n, path, "want a mapping with the fields %s", strings.Join(known, ", "))
	}
	m := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		name := poller.BoundText(k.Value, 64)
		if k.Kind != yaml.ScalarNode || !slices.Contains(known, k.Value) {
			return nil, p.errorf(k, join(path, name), "unknown field; want one of %s", strings.Join(known, ", "))
		}
		if _, dup := m[k.Value]; dup {
			return nil, p.errorf(k, join(path, name), "given twice")
		}
		m[k.Value] = v
	}
	return m, nil
}

// str reads a scalar as text.
func (p fileParser) str(n *yaml.Node, path string) (string, error) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return "", p.errorf(n, path, "want a text value")
	}
	return n.Value, nil
}

// boolean reads true or false.
func (p fileParser) boolean(n *yaml.Node, path string) (bool, error) {
	n = deref(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
		var b bool
		if err := n.Decode(&b); err == nil {
			return b, nil
		}
	}
	return false, p.errorf(n, path, "want true or false")
}

// list reads a sequence of text values, at most max of them.
func (p fileParser) list(n *yaml.Node, path string, max int) ([]string, error) {
	n = deref(n)
	if n.Kind != yaml.SequenceNode {
		return nil, p.errorf(n, path, "want a list such as [A, B]")
	}
	if len(n.Content) > max {
		return nil, p.errorf(n, path, "%d entries; at most %d", len(n.Content), max)
	}
	out := make([]string, 0, len(n.Content))
	for i, item := range n.Content {
		v, err := p.str(item, fmt.Sprintf("%s[%d]", path, i))
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (p fileParser) file(doc *yaml.Node) (targetsFile, error) {
	var f targetsFile
	m, err := p.fields(doc, "", "store", "targets")
	if err != nil {
		return f, err
	}
	if n, ok := m["store"]; ok {
		if f, err = p.store(n); err != nil {
			return f, err
		}
	}
	n, ok := m["targets"]
	if !ok {
		return f, p.errorf(doc, "targets", "not set: list at least one target")
	}
	n = deref(n)
	if n.Kind != yaml.SequenceNode {
		return f, p.errorf(n, "targets", "want a list of targets")
	}
	switch {
	case len(n.Content) == 0:
		return f, p.errorf(n, "targets", "empty: list at least one target")
	case len(n.Content) > maxTargets:
		return f, p.errorf(n, "targets", "%d targets; at most %d", len(n.Content), maxTargets)
	}
	seen := map[string]int{}
	for i, tn := range n.Content {
		t, line, err := p.target(tn, fmt.Sprintf("targets[%d]", i))
		if err != nil {
			return f, err
		}
		if first, dup := seen[t.Name]; dup {
			return f, p.errorf(deref(tn), fmt.Sprintf("targets[%d].name", i), "%q is the name of targets[%d] too; names must differ", t.Name, first)
		}
		seen[t.Name] = i
		f.targets = append(f.targets, t)
		f.channelLines = append(f.channelLines, line)
	}
	return f, nil
}

func (p fileParser) store(n *yaml.Node) (targetsFile, error) {
	var f targetsFile
	m, err := p.fields(n, "store", "project", "database")
	if err != nil {
		return f, err
	}
	if v, ok := m["project"]; ok {
		if f.storeProject, err = p.str(v, "store.project"); err != nil {
			return f, err
		}
		if err := poller.ValidateProject(f.storeProject); err != nil {
			return f, p.fieldError(err, map[string]fieldAt{"project": {"store.project", v}})
		}
	}
	if v, ok := m["database"]; ok {
		if f.storeDatabase, err = p.str(v, "store.database"); err != nil {
			return f, err
		}
		if err := validateDatabase(f.storeDatabase); err != nil {
			return f, p.fieldError(err, map[string]fieldAt{"database": {"store.database", v}})
		}
	}
	return f, nil
}

// validateDatabase is poller.ValidateDatabase for a value that was given:
// empty is a mistake, not the default.
func validateDatabase(id string) error {
	if id == "" {
		return &poller.FieldError{Field: "database", Err: errors.New(`database is empty; "(default)" names the default database`)}
	}
	return poller.ValidateDatabase(id)
}

// target reads one target. line is that of its slackChannel (0: none).
func (p fileParser) target(n *yaml.Node, path string) (t poller.Target, line int, err error) {
	m, err := p.fields(n, path, "name", "project", "database", "export", "backups", "drill", "slackChannel")
	if err != nil {
		return t, 0, err
	}
	at := func(field string) fieldAt { return fieldAt{join(path, field), m[field]} }
	required := func(field, why string) (*yaml.Node, error) {
		v, ok := m[field]
		if !ok {
			return nil, p.errorf(deref(n), join(path, field), "not set: %s", why)
		}
		return v, nil
	}
	v, err := required("name", "the target's name, in ?target= and --target")
	if err != nil {
		return t, 0, err
	}
	if t.Name, err = p.str(v, join(path, "name")); err != nil {
		return t, 0, err
	}
	if !targetNameRE.MatchString(t.Name) {
		return t, 0, p.errorf(v, join(path, "name"), "%s is not a name of 1 to 63 lower-case letters, digits and hyphens, starting with a letter or digit",
			strconv.Quote(poller.BoundText(t.Name, 64)))
	}
	if v, err = required("project", "the project whose database this is"); err != nil {
		return t, 0, err
	}
	if t.Project, err = p.str(v, join(path, "project")); err != nil {
		return t, 0, err
	}
	if err := poller.ValidateProject(t.Project); err != nil {
		return t, 0, p.fieldError(err, map[string]fieldAt{"project": at("project")})
	}
	t.Database = poller.DefaultDatabase
	if v, ok := m["database"]; ok {
		if t.Database, err = p.str(v, join(path, "database")); err != nil {
			return t, 0, err
		}
		if err := validateDatabase(t.Database); err != nil {
			return t, 0, p.fieldError(err, map[string]fieldAt{"database": at("database")})
		}
	}
	_, hasExport := m["export"]
	_, hasBackups := m["backups"]
	if !hasExport && !hasBackups {
		return t, 0, p.errorf(deref(n), path, "neither export: nor backups: is set; a target needs one or both")
	}
	if hasExport {
		if err := p.export(m["export"], join(path, "export"), &t); err != nil {
			return t, 0, err
		}
	}
	if hasBackups {
		if t.Backups, err = p.backups(m["backups"], join(path, "backups")); err != nil {
			return t, 0, err
		}
	}
	if v, ok := m["drill"]; ok {
		if !hasExport {
			return t, 0, p.errorf(deref(v), join(path, "drill"), "a drill restores the target's latest verified export, and the target has no export:")
		}
		if t.Drill, err = p.drill(v, join(path, "drill"), t); err != nil {
			return t, 0, err
		}
	}
	if v, ok := m["slackChannel"]; ok {
		if t.Channel, err = p.str(v, join(path, "slackChannel")); err != nil {
			return t, 0, err
		}
		if err := checkChannel(t.Channel); err != nil {
			return t, 0, p.errorf(v, join(path, "slackChannel"), "%v", err)
		}
		line = deref(v).Line
	}
	return t, line, nil
}

// checkChannel checks a Slack channel's name or id, which the Slack API
// checks further.
func checkChannel(c string) error {
	if c == "" || len(c) > maxChannel || strings.ContainsFunc(c, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return fmt.Errorf("%s is not a Slack channel such as #backups or C0123456789", strconv.Quote(poller.BoundText(c, 96)))
	}
	return nil
}

// export reads a target's export: into t.Export and its schedule.
func (p fileParser) export(n *yaml.Node, path string, t *poller.Target) error {
	m, err := p.fields(n, path, "prefix", "kinds", "namespaces", "schedule", "consistent", "api")
	if err != nil {
		return err
	}
	at := func(field string) fieldAt { return fieldAt{join(path, field), m[field]} }
	req := &poller.ExportRequest{Project: t.Project, Database: t.Database, Target: t.Name}
	v, ok := m["prefix"]
	if !ok {
		return p.errorf(deref(n), join(path, "prefix"), "not set: the gs://bucket[/path] exports are written to")
	}
	if req.OutputURLPrefix, err = p.str(v, join(path, "prefix")); err != nil {
		return err
	}
	if err := poller.ValidatePrefix(req.OutputURLPrefix); err != nil {
		return p.fieldError(err, map[string]fieldAt{"outputUrlPrefix": at("prefix")})
	}
	// More entries than the combinations allowed fail below anyway; the
	// bound keeps the walk short.
	if v, ok := m["kinds"]; ok {
		if req.Kinds, err = p.list(v, join(path, "kinds"), poller.MaxFilterCombinations); err != nil {
			return err
		}
	}
	if v, ok := m["namespaces"]; ok {
		if req.Namespaces, err = p.list(v, join(path, "namespaces"), poller.MaxFilterCombinations); err != nil {
			return err
		}
		// "(default)" names the default namespace, whose id is "", as in
		// gcloud's --namespaces and DSEXPORT_NAMESPACES.
		for i, ns := range req.Namespaces {
			if ns == poller.DefaultDatabase {
				req.Namespaces[i] = ""
			}
		}
	}
	combined := at("kinds")
	combined.path = join(path, "kinds × namespaces")
	if combined.node == nil {
		combined.node = m["namespaces"]
	}
	if err := poller.ValidateFilter(req.Kinds, req.Namespaces); err != nil {
		return p.fieldError(err, map[string]fieldAt{"kinds": at("kinds"), "namespaces": at("namespaces"), "kinds × namespaces": combined})
	}
	if v, ok := m["consistent"]; ok {
		if req.Consistent, err = p.boolean(v, join(path, "consistent")); err != nil {
			return err
		}
	}
	if err := p.api(m, path, req); err != nil {
		return err
	}
	if v, ok := m["schedule"]; ok {
		if t.Schedule, err = p.str(v, join(path, "schedule")); err != nil {
			return err
		}
		cs, err := parseSchedule(t.Schedule)
		if err != nil {
			return p.errorf(v, join(path, "schedule"), "%v", err)
		}
		t.Every = cs.every
		// Cron retries of a start come within minutes; a window as long as
		// the schedule's period would take its next start for one.
		req.CronWindow = cs.every / 2
	}
	t.Export = req
	return nil
}

// api sets req.Firestore from export.api. The Datastore Admin API exports
// only the (default) database and never at one point in time, so:
// a named database takes the Firestore Admin API (api: datastore is a
// mistake), and consistent: true on (default) implies api: firestore
// unless api: datastore was asked for, which is a mistake too. Firestore
// is set whenever the Firestore Admin API exports, named database or not.
func (p fileParser) api(m map[string]*yaml.Node, path string, req *poller.ExportRequest) error {
	v, given := m["api"]
	api := ""
	if given {
		var err error
		if api, err = p.str(v, join(path, "api")); err != nil {
			return err
		}
	}
	named := !poller.IsDefaultDatabase(req.Database)
	switch api {
	case "":
		req.Firestore = named || req.Consistent
	case "firestore":
		req.Firestore = true
	case "datastore":
		if named {
			return p.errorf(v, join(path, "api"), "the Datastore Admin API exports only the (default) database; database %s takes api: firestore", req.Database)
		}
		if req.Consistent {
			return p.errorf(v, join(path, "api"), "consistent: true needs the Firestore Admin API (api: firestore); the Datastore Admin API's exports are not of one point in time")
		}
	default:
		return p.errorf(v, join(path, "api"), "%s: want datastore or firestore", strconv.Quote(poller.BoundText(api, 64)))
	}
	return nil
}

func (p fileParser) backups(n *yaml.Node, path string) (*poller.BackupWatch, error) {
	m, err := p.fields(n, path, "expect", "retention", "report")
	if err != nil {
		return nil, err
	}
	w := &poller.BackupWatch{}
	v, ok := m["expect"]
	if !ok {
		return nil, p.errorf(deref(n), join(path, "expect"), "not set: daily or weekly, how often the backup schedule takes a backup")
	}
	s, err := p.str(v, join(path, "expect"))
	if err != nil {
		return nil, err
	}
	if w.Recurrence, err = poller.ParseRecurrence(s); err != nil {
		return nil, p.errorf(v, join(path, "expect"), "%v", err)
	}
	if v, ok := m["retention"]; ok {
		if s, err = p.str(v, join(path, "retention")); err != nil {
			return nil, err
		}
		if w.Retention, err = parseRetention(s); err != nil {
			return nil, p.errorf(v, join(path, "retention"), "%v", err)
		}
	}
	if v, ok := m["report"]; ok {
		if w.Report, err = p.boolean(v, join(path, "report")); err != nil {
			return nil, err
		}
	}
	return w, nil
}

var retentionRE = regexp.MustCompile(`^([0-9]{1,6})([wdh])$`)

// parseRetention reads a retention in weeks, days or hours: 14w, 98d,
// 336h. Google keeps a backup at most 14 weeks.
func parseRetention(s string) (time.Duration, error) {
	m := retentionRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%s is not a retention such as 14w, 98d or 336h", strconv.Quote(poller.BoundText(s, 64)))
	}
	n, _ := strconv.Atoi(m[1])
	unit := map[string]time.Duration{"w": 7 * 24 * time.Hour, "d": 24 * time.Hour, "h": time.Hour}[m[2]]
	d := time.Duration(n) * unit
	switch {
	case n == 0:
		return 0, fmt.Errorf("%q is no time; leave retention out to accept any", s)
	case d > maxRetention:
		return 0, fmt.Errorf("%q is longer than 14 weeks, the longest Google keeps a backup", s)
	}
	return d, nil
}

// drill reads a target's restore drill: drill: {every: 7d, kinds: [Order],
// project: scratch-proj, database: drill-db, location: nam5, timeout: 24h}.
// Only every is required. The scratch database is never the target's own
// database: an import there would overwrite the data it restores.
func (p fileParser) drill(n *yaml.Node, path string, t poller.Target) (*poller.DrillSpec, error) {
	m, err := p.fields(n, path, "every", "kinds", "project", "database", "location", "timeout")
	if err != nil {
		return nil, err
	}
	d := &poller.DrillSpec{}
	v, ok := m["every"]
	if !ok {
		return nil, p.errorf(deref(n), join(path, "every"), "not set: how often the drill runs, such as 7d")
	}
	span := func(v *yaml.Node, field string, least, most time.Duration) (time.Duration, error) {
		s, err := p.str(v, join(path, field))
		if err != nil {
			return 0, err
		}
		d, err := parseSpan(s)
		if err == nil && (d < least || d > most) {
			err = fmt.Errorf("%q is not between %s and %s", s, least, most)
		}
		if err != nil {
			return 0, p.errorf(v, join(path, field), "%v", err)
		}
		return d, nil
	}
	if d.Every, err = span(v, "every", time.Hour, 366*24*time.Hour); err != nil {
		return nil, err
	}
	if v, ok := m["timeout"]; ok {
		if d.Timeout, err = span(v, "timeout", 10*time.Minute, 7*24*time.Hour); err != nil {
			return nil, err
		}
	}
	if v, ok := m["kinds"]; ok {
		if d.Kinds, err = p.list(v, join(path, "kinds"), poller.MaxFilterCombinations); err != nil {
			return nil, err
		}
		for _, k := range d.Kinds {
			if k == "" || strings.HasPrefix(k, "__") || len(k) > poller.MaxKind {
				return nil, p.errorf(v, join(path, "kinds"), "%s is not a kind a drill can import", strconv.Quote(poller.BoundText(k, 64)))
			}
		}
	}
	if v, ok := m["project"]; ok {
		if d.Project, err = p.str(v, join(path, "project")); err != nil {
			return nil, err
		}
		if err := poller.ValidateProject(d.Project); err != nil {
			return nil, p.errorf(v, join(path, "project"), "%v", err)
		}
	}
	if v, ok := m["database"]; ok {
		if d.Database, err = p.str(v, join(path, "database")); err != nil {
			return nil, err
		}
		if err := validateDatabase(d.Database); err != nil {
			return nil, p.errorf(v, join(path, "database"), "%v", err)
		}
		project := d.Project
		if project == "" {
			project = t.Project
		}
		if poller.Scope(project, d.Database) == t.Scope() {
			return nil, p.errorf(v, join(path, "database"), "%s is the target's own database: a drill imports into a scratch database, and an import here would overwrite the data it restores", strconv.Quote(d.Database))
		}
	}
	if v, ok := m["location"]; ok {
		if d.Database != "" {
			return nil, p.errorf(v, join(path, "location"), "location is for the scratch database dsexport creates; with database: set, the drill uses that one")
		}
		if d.Location, err = p.str(v, join(path, "location")); err != nil {
			return nil, err
		}
		if !locationRE.MatchString(d.Location) {
			return nil, p.errorf(v, join(path, "location"), "%s is not a location such as nam5 or europe-west1", strconv.Quote(poller.BoundText(d.Location, 64)))
		}
	}
	return d, nil
}

var (
	spanRE     = regexp.MustCompile(`^([0-9]{1,6})([wdhm])$`)
	locationRE = regexp.MustCompile(`^[a-z][a-z0-9-]{1,40}$`)
)

// parseSpan reads a span in weeks, days, hours or minutes: 1w, 7d, 24h, 90m.
func parseSpan(s string) (time.Duration, error) {
	m := spanRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%s is not a span such as 7d, 1w, 24h or 90m", strconv.Quote(poller.BoundText(s, 64)))
	}
	n, _ := strconv.Atoi(m[1])
	unit := map[string]time.Duration{"w": 7 * 24 * time.Hour, "d": 24 * time.Hour, "h": time.Hour, "m": time.Minute}[m[2]]
	return time.Duration(n) * unit, nil
}
