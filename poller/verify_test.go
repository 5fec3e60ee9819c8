package poller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsexport/dsexport/admin/adminfake"
	"github.com/dsexport/dsexport/content"
	"github.com/dsexport/dsexport/content/contenttest"
	"github.com/dsexport/dsexport/internal/testrig"
	"github.com/dsexport/dsexport/notifier/slackfake"
	"github.com/dsexport/dsexport/poller"
	"github.com/fsouza/fake-gcs-server/fakestorage"
)

// The exports in content/testdata, written by the Datastore emulator:
// full holds Order o1 and o2, Line 7 and Order o9 in namespace ns2 (and a
// Ghost of another database); orders holds the three Orders.
const (
	fullExport   = "gs://testdata/full/2026-12-02T073300_726/2026-12-02T073300_726.overall_export_metadata"
	ordersExport = "gs://testdata/orders/2026-12-02T073301_754/2026-12-02T073301_754.overall_export_metadata"
)

// relocated is the real content reader over fake-gcs-server holding the
// emulator's export files, reading the export at the URL the test names
// for the next export: the fake Admin API makes up its output URLs. It
// checks that it is asked for the operation's own output URL, the one the
// fake answered.
type relocated struct {
	t  *testing.T
	r  *content.Reader
	mu sync.Mutex
	// next is the URL the next export is read from; reads counts the reads.
	next  string
	reads int
}

func (l *relocated) ReadDatabase(ctx context.Context, outputURL, database string) (poller.Content, error) {
	l.mu.Lock()
	next := l.next
	l.reads++
	l.mu.Unlock()
	if !strings.HasPrefix(outputURL, "gs://example-backups/daily/") || !strings.HasSuffix(outputURL, ".overall_export_metadata") {
		l.t.Errorf("content read of %q; want the operation's output URL", outputURL)
	}
	return l.r.ReadDatabase(ctx, next, database)
}

func (l *relocated) set(next string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.next = next
}

// sourceCounts is the source database's count per "namespace/kind": the
// Counter port, answering what a COUNT aggregation would.
type sourceCounts map[string]int64

func (s sourceCounts) Count(_ context.Context, _, _, namespace, kind string) (int64, error) {
	return s[namespace+"/"+kind], nil
}

// emptyExport is an export whose metadata is there and whose files hold
// nothing: the "writing 0 bytes" exports users report.
const emptyExport = "gs://testdata/empty/E/E.overall_export_metadata"

func newContentReader(t *testing.T) *relocated {
	t.Helper()
	objs := contenttest.LoadDir(t, "../content/testdata/export")
	objs = append(objs, fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "testdata", Name: "empty/E/E.overall_export_metadata"},
		Content: []byte("metadata")})
	contenttest.Serve(t, objs)
	r, err := content.New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return &relocated{t: t, r: r}
}

// text is everything a Slack message says.
func text(m slackfake.Message) string {
	b, _ := json.Marshal(m.Attachments)
	return m.Text + string(b)
}

// TestVerifiedReport: a success's files are read before its report, and
// the report says what they hold, what disagrees, and raises the alarms.
func TestVerifiedReport(t *testing.T) {
	tests := []struct {
		name string
		// previous, when set, is an export of the target verified before.
		previous  string
		url       string
		entities  int64
		source    sourceCounts
		title     string
		wantColor string
		want      []string
		not       []string
	}{
		{name: "verified", url: fullExport, entities: 4,
			source: sourceCounts{"/Order": 2, "/Line": 1, "ns2/Order": 1},
			title:  "Datastore export succeeded", wantColor: "#2eb886",
			want: []string{"verified: 4 entities in 2 kinds, ", " in 1 file"}, not: []string{"NOT verified", "Warning"}},
		{name: "operation count differs", url: fullExport, entities: 1000,
			title: "Datastore export succeeded", wantColor: "#daa038",
			want: []string{"verified: 4 entities", "The operation says it exported 1000 entities; its files hold 4."}},
		{name: "source count differs", url: fullExport, entities: 4,
			source: sourceCounts{"/Order": 5, "/Line": 1, "ns2/Order": 1},
			title:  "Datastore export succeeded", wantColor: "#daa038",
			want: []string{`Kind \"Order\" has 5 entities in the database; the export's files hold 2.`}},
		{name: "kind gone since the previous export", previous: fullExport, url: ordersExport, entities: 3,
			title: "Datastore export succeeded, but its files are NOT verified", wantColor: "#d40e0d",
			want: []string{"NOT verified: 3 entities in 1 kind", `Kind \"Line\" had 1 entities in the previous export and is not in this one.`, "Alarm"}},
		{name: "empty", url: emptyExport, entities: 0,
			title: "Datastore export succeeded, but its files are NOT verified", wantColor: "#d40e0d",
			want: []string{"NOT verified: 0 entities in 0 kinds, 8 B in 0 files", "The export holds no entity: 0 entities in 0 output files.", "Alarm"}},
		{name: "metadata missing", url: "gs://testdata/gone/F/F.overall_export_metadata", entities: 4,
			title: "Datastore export succeeded, but its files are NOT verified", wantColor: "#d40e0d",
			want: []string{"NOT verified: content: export metadata gs://testdata/gone/F/F.overall_export_metadata", "could not be read"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reader := newContentReader(t)
			r := &rig{testrig.New(t, 5, func(c *poller.Config) {
				c.Content = reader
				if tt.source != nil {
					c.SourceCounter = tt.source
				}
			})}
			ctx := context.Background()
			if tt.previous != "" {
				first := r.start(t, adminfake.Successful(4, 100))
				reader.set(tt.previous)
				if _, err := r.Poller.Poll(ctx, first.Name); err != nil {
					t.Fatal(err)
				}
			}
			rec := r.start(t, adminfake.Successful(tt.entities, 100))
			reader.set(tt.url)
			res, err := r.Poller.Poll(ctx, rec.Name)
			if err != nil {
				t.Fatal(err)
			}
			msgs := r.Slack.Messages()
			m := msgs[len(msgs)-1]
			got := text(m)
			if len(m.Attachments) == 0 || m.Attachments[0].Title != tt.title || m.Attachments[0].Color != tt.wantColor {
				t.Errorf("report %q colour %q; want %q colour %q\n%s", m.Attachments[0].Title, m.Attachments[0].Color, tt.title, tt.wantColor, got)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("report lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(got, w) {
					t.Errorf("report says %q:\n%s", w, got)
				}
			}
			st, err := r.Store.(poller.VerificationStore).VerifiedState(ctx, res.Record.Target)
			if err != nil || st.Latest == nil || st.Latest.Operation != rec.Name {
				t.Fatalf("VerifiedState = %+v, %v; want the latest to be %s", st, err, rec.Name)
			}
		})
	}
}

// TestVerificationNotReadTwice: a report that failed after its files were
// read is sent by the sweep from the recorded verification; the files are
// not read again, and the report goes out once.
func TestVerificationNotReadTwice(t *testing.T) {
	reader := newContentReader(t)
	r := &rig{testrig.New(t, 5, func(c *poller.Config) { c.Content = reader })}
	ctx := context.Background()
	rec := r.start(t, adminfake.Successful(4, 100))
	reader.set(fullExport)
	r.Slack.FailNext(1, 500, 0)
	if _, err := r.Poller.Poll(ctx, rec.Name); err == nil {
		t.Fatal("Poll with Slack down: no error; want the report pending")
	}
	if _, err := r.Poller.Sweep(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := text(r.Slack.Only(t)); !strings.Contains(got, "verified: 4 entities in 2 kinds") {
		t.Errorf("report after the sweep lacks the verification:\n%s", got)
	}
	if reader.reads != 1 {
		t.Errorf("files read %d times; want once", reader.reads)
	}
}

// slowReader takes its time before it reads: an export too large to read
// within the check's bound.
type slowReader struct {
	poller.ContentReader
	wait time.Duration
}

func (s slowReader) ReadDatabase(ctx context.Context, outputURL, database string) (poller.Content, error) {
	select {
	case <-ctx.Done():
		return poller.Content{}, fmt.Errorf("content: list gs://testdata/full/: %w", ctx.Err())
	case <-time.After(s.wait):
	}
	return s.ContentReader.ReadDatabase(ctx, outputURL, database)
}

// TestVerificationTimesOut: a check cut by its time bound says the export
// was not verified in time, as a warning, not an alarm, and the report
// still goes out.
func TestVerificationTimesOut(t *testing.T) {
	reader := newContentReader(t)
	reader.set(fullExport)
	r := &rig{testrig.New(t, 5, func(c *poller.Config) {
		c.Content = slowReader{reader, time.Minute}
		c.ContentTimeout = 50 * time.Millisecond
	})}
	rec := r.start(t, adminfake.Successful(4, 100))
	if _, err := r.Poller.Poll(context.Background(), rec.Name); err != nil {
		t.Fatal(err)
	}
	m := r.Slack.Only(t)
	got := text(m)
	if m.Attachments[0].Title != "Datastore export succeeded" || m.Attachments[0].Color != "#daa038" ||
		!strings.Contains(got, "not verified: reading the files took longer than 50ms") {
		t.Errorf("report %q colour %q; want a success in warning colour saying it was not verified in time:\n%s",
			m.Attachments[0].Title, m.Attachments[0].Color, got)
	}
	st, err := r.Store.(poller.VerificationStore).VerifiedState(context.Background(), "")
	if err != nil || st.Latest == nil || !st.Latest.TimedOut || st.Good != nil {
		t.Errorf("VerifiedState = %+v, %v; want a timed-out latest and no good one", st, err)
	}
}

// countingReader counts the reads of a reader.
type countingReader struct {
	poller.ContentReader
	mu    sync.Mutex
	reads int
}

func (c *countingReader) ReadDatabase(ctx context.Context, outputURL, database string) (poller.Content, error) {
	c.mu.Lock()
	c.reads++
	c.mu.Unlock()
	return c.ContentReader.ReadDatabase(ctx, outputURL, database)
}

// TestSweepLeavesACheckUnderWay: while a poller reads a success's files
// under its claim, a sweep finds the report claimed and reads nothing; the
// report goes out once.
func TestSweepLeavesACheckUnderWay(t *testing.T) {
	reader := newContentReader(t)
	reader.set(fullExport)
	counted := &countingReader{ContentReader: slowReader{reader, 300 * time.Millisecond}}
	r := &rig{testrig.New(t, 5, func(c *poller.Config) { c.Content = counted })}
	rec := r.start(t, adminfake.Successful(4, 100))
	done := make(chan error, 1)
	go func() {
		_, err := r.Poller.Poll(context.Background(), rec.Name)
		done <- err
	}()
	// The poll reaches its check: the record has its outcome.
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := r.Store.Get(context.Background(), rec.Name)
		if err == nil && got.Outcome == poller.OutcomeSuccess && !got.ReportClaimed.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the poll never claimed its report")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := r.Poller.Sweep(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := len(r.Slack.Messages()); n != 1 || counted.reads != 1 {
		t.Errorf("%d reports, %d reads; want one of each", n, counted.reads)
	}
}

// TestSweepDeadlineDuringCheck: a sweep whose deadline comes while it reads
// a pending success's files records the check as not verified in time, and
// the next sweep reports it without reading again.
func TestSweepDeadlineDuringCheck(t *testing.T) {
	reader := newContentReader(t)
	reader.set(fullExport)
	counted := &countingReader{ContentReader: slowReader{reader, time.Minute}}
	r := &rig{testrig.New(t, 5, func(c *poller.Config) {
		c.Content = counted
		c.StopGrace = 10 * time.Millisecond
	})}
	rec := r.start(t, adminfake.Successful(4, 100))
	pctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := r.Poller.Poll(pctx, rec.Name); err == nil {
		t.Fatal("Poll whose check ran past its deadline: no error; want the report pending")
	}
	if _, err := r.Poller.Sweep(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	got := text(r.Slack.Only(t))
	if !strings.Contains(got, "not verified: reading the files took longer than the request that checked them allowed") || counted.reads != 1 {
		t.Errorf("after %d reads the report says:\n%s\nwant not verified in time, after one read", counted.reads, got)
	}
}
