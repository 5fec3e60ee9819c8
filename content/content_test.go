package content_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dsexport/dsexport/content"
	"github.com/dsexport/dsexport/content/contenttest"
	"github.com/dsexport/dsexport/internal/emulatortest"
	"github.com/dsexport/dsexport/poller"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/syndtr/goleveldb/leveldb/journal"
	"google.golang.org/protobuf/encoding/protowire"
)

func TestMain(m *testing.M) { os.Exit(emulatortest.Main(m)) }

// The committed exports, made by the Datastore emulator's own export (see
// testdata/README.md): project content-testdata, entities Order o1 and o2
// and Line 7 (child of o1) in the default namespace, Order o9 in ns2, and
// Ghost g in the database "other".
const (
	fullFolder   = "full/2026-12-02T073300_726"
	fullMetadata = "gs://testdata/" + fullFolder + "/2026-12-02T073300_726.overall_export_metadata"
	fullOutput   = "gs://testdata/" + fullFolder + "/all_namespaces/all_kinds/output-0"
	orderFolder  = "orders/2026-12-02T073301_754"
	orderMeta    = "gs://testdata/" + orderFolder + "/2026-12-02T073301_754.overall_export_metadata"
)

// loadDir returns the files under root as Cloud Storage objects.
func loadDir(t *testing.T, root string) []fakestorage.Object { return contenttest.LoadDir(t, root) }

// serve holds objs in an in-process fake-gcs-server and returns a Reader
// made by content.New, as the binary makes it.
func serve(t *testing.T, objs []fakestorage.Object) *content.Reader {
	t.Helper()
	contenttest.Serve(t, objs)
	r, err := content.New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func kc(namespace, kind string, n int64) poller.KindCount {
	return poller.KindCount{Namespace: namespace, Kind: kind, Entities: n}
}

// size is the total size of the files under dir.
func size(t *testing.T, dir string) (n int64, files int) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			info, _ := d.Info()
			n += info.Size()
			files++
		}
		return nil
	})
	return n, files
}

// committedCase is a read of the committed exports and what it finds.
type committedCase struct {
	name, url, database string
	want                poller.Content
}

// committedCases are the reads of the committed exports, at the metadata
// object of the full export (fullMeta), its folder (fullFolderURL, with a
// trailing slash) and the metadata object of the Order export (orderMeta):
// gs:// URLs or local paths, found the same.
func committedCases(t *testing.T, fullMeta, fullFolderURL, orderMeta string) []committedCase {
	bytesFull, objsFull := size(t, "testdata/export/testdata/"+fullFolder)
	bytesOrder, objsOrder := size(t, "testdata/export/testdata/"+orderFolder)
	return []committedCase{
		{"metadata URL, default database", fullMeta, "", poller.Content{
			MetadataURL: fullMeta, Database: "(default)", Objects: objsFull, Files: 1, Bytes: bytesFull,
			Kinds:    []poller.KindCount{kc("", "Line", 1), kc("", "Order", 2), kc("ns2", "Order", 1)},
			Entities: 4, OtherDatabases: 1}},
		{"folder URL (Firestore Admin), trailing slash", fullFolderURL, "(default)", poller.Content{
			MetadataURL: fullMeta, Database: "(default)", Objects: objsFull, Files: 1, Bytes: bytesFull,
			Kinds:    []poller.KindCount{kc("", "Line", 1), kc("", "Order", 2), kc("ns2", "Order", 1)},
			Entities: 4, OtherDatabases: 1}},
		// Read as an export of "other": the keys without a database id are
		// taken as the exported database's (Google's keys may leave it out),
		// Ghost by its id. Only (default) is ever read of this export.
		{"the other database", fullMeta, "other", poller.Content{
			MetadataURL: fullMeta, Database: "other", Objects: objsFull, Files: 1, Bytes: bytesFull,
			Kinds: []poller.KindCount{kc("", "Ghost", 1), kc("", "Line", 1), kc("", "Order", 2), kc("ns2", "Order", 1)}, Entities: 5}},
		{"kinds filter: kind_Order folder", orderMeta, "", poller.Content{
			MetadataURL: orderMeta, Database: "(default)", Objects: objsOrder, Files: 1, Bytes: bytesOrder,
			Kinds: []poller.KindCount{kc("", "Order", 2), kc("ns2", "Order", 1)}, Entities: 3}},
	}
}

// testCommitted runs the reads of tests through r.
func testCommitted(t *testing.T, r *content.Reader, tests []committedCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got poller.Content
			var err error
			if tt.database == "" {
				got, err = r.Read(context.Background(), tt.url)
			} else {
				got, err = r.ReadDatabase(context.Background(), tt.url, tt.database)
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Read(%s)\n got %+v\nwant %+v", tt.url, got, tt.want)
			}
		})
	}
}

func TestReadCommittedExport(t *testing.T) {
	r := serve(t, loadDir(t, "testdata/export"))
	testCommitted(t, r, committedCases(t, fullMetadata, "gs://testdata/"+fullFolder+"/", orderMeta))
}

// edit returns objs without the one named (change nil), or with its
// content changed.
func edit(objs []fakestorage.Object, url string, change func([]byte) []byte) []fakestorage.Object {
	var out []fakestorage.Object
	for _, o := range objs {
		if "gs://"+o.BucketName+"/"+o.Name == url {
			if change == nil {
				continue
			}
			o.Content = change(bytes.Clone(o.Content))
		}
		out = append(out, o)
	}
	return out
}

func TestReadBrokenExport(t *testing.T) {
	objs := loadDir(t, "testdata/export")
	tests := []struct {
		name string
		objs []fakestorage.Object
		url  string
		want []string // all in the error
	}{
		{"no metadata object", edit(objs, fullMetadata, nil), fullMetadata,
			[]string{"export metadata " + fullMetadata, "doesn't exist"}},
		{"empty metadata object", edit(objs, fullMetadata, func([]byte) []byte { return nil }), fullMetadata,
			[]string{"export metadata " + fullMetadata, "empty"}},
		{"a flipped byte in an output file", edit(objs, fullOutput, func(b []byte) []byte { b[len(b)/2] ^= 0x20; return b }), fullMetadata,
			[]string{"output file " + fullOutput, "record ", "checksum mismatch"}},
		{"a truncated output file", edit(objs, fullOutput, func(b []byte) []byte { return b[:len(b)-10] }), fullMetadata,
			[]string{"output file " + fullOutput, "record 5 (in the block at byte 0)", "corrupted"}},
		{"a record that is not an entity", edit(objs, fullOutput, func([]byte) []byte { return logOf(t, []byte{0xff, 0xff, 0xff}) }), fullMetadata,
			[]string{"output file " + fullOutput, "record 1", "not an entity"}},
		{"a record without a key", edit(objs, fullOutput, func([]byte) []byte {
			return logOf(t, protowire.AppendVarint(protowire.AppendTag(nil, 4, protowire.VarintType), 1))
		}), fullMetadata,
			[]string{"output file " + fullOutput, "record 1", "no key"}},
		{"not a gs:// URL", objs, "/tmp/x/y.overall_export_metadata", []string{"not a gs:// URL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := serve(t, tt.objs)
			_, err := r.Read(context.Background(), tt.url)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// logOf is a LevelDB log holding records.
func logOf(t *testing.T, records ...[]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := journal.NewWriter(&buf)
	for _, rec := range records {
		rw, err := w.Next()
		if err != nil {
			t.Fatal(err)
		}
		rw.Write(rec)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// entity is an EntityProto with a key of kind in namespace.
func entity(namespace, kind string) []byte {
	var el []byte
	el = protowire.AppendTag(el, 2, protowire.BytesType)
	el = protowire.AppendString(el, kind)
	el = protowire.AppendTag(el, 4, protowire.BytesType)
	el = protowire.AppendString(el, "n")
	var path []byte
	path = protowire.AppendTag(path, 1, protowire.StartGroupType)
	path = append(path, el...)
	path = protowire.AppendTag(path, 1, protowire.EndGroupType)
	var ref []byte
	ref = protowire.AppendTag(ref, 13, protowire.BytesType)
	ref = protowire.AppendString(ref, "p")
	ref = protowire.AppendTag(ref, 14, protowire.BytesType)
	ref = protowire.AppendBytes(ref, path)
	if namespace != "" {
		ref = protowire.AppendTag(ref, 20, protowire.BytesType)
		ref = protowire.AppendString(ref, namespace)
	}
	var e []byte
	e = protowire.AppendTag(e, 13, protowire.BytesType)
	e = protowire.AppendBytes(e, ref)
	return e
}

func TestReadBoundsKindsAndNames(t *testing.T) {
	var recs [][]byte
	for i := range content.MaxKinds + 2 {
		recs = append(recs, entity("", fmt.Sprintf("K%05d", i)))
	}
	long := strings.Repeat("é", 2000) // 4,000 bytes: over Datastore's 1,500
	recs = append(recs, entity("", "K00000"), entity(long, "K00001"))
	objs := []fakestorage.Object{
		{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "b", Name: "p/F/F.overall_export_metadata"}, Content: []byte("x")},
		{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "b", Name: "p/F/all_namespaces/all_kinds/output-0"}, Content: logOf(t, recs...)},
		// Not output files: not read.
		{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "b", Name: "p/F/all_namespaces/all_kinds/output-0.bak"}, Content: []byte("junk")},
		{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "b", Name: "p/F/output-1"}, Content: []byte("junk")},
	}
	got, err := serve(t, objs).Read(context.Background(), "gs://b/p/F")
	if err != nil {
		t.Fatal(err)
	}
	if got.Files != 1 || got.Objects != 4 || !got.KindsCut || got.Entities != int64(len(recs)) {
		t.Fatalf("files %d objects %d cut %v entities %d; want 1, 4, true, %d", got.Files, got.Objects, got.KindsCut, got.Entities, len(recs))
	}
	if len(got.Kinds) != content.MaxKinds+1 {
		t.Fatalf("%d kinds kept, want %d and the cut entry", len(got.Kinds), content.MaxKinds)
	}
	last := got.Kinds[len(got.Kinds)-1]
	if last.Kind != poller.CutKind || last.Entities != 3 {
		t.Errorf("cut entry %+v, want %s with 3 entities (K10000, K10001, the long namespace)", last, poller.CutKind)
	}
	if got.Kinds[0] != (poller.KindCount{Kind: "K00000", Entities: 2}) {
		t.Errorf("first kind %+v, want K00000 twice", got.Kinds[0])
	}
	for _, k := range got.Kinds {
		if len(k.Namespace) > poller.MaxNamespace || len(k.Kind) > poller.MaxKind {
			t.Fatalf("unbounded name %.40q/%.40q", k.Namespace, k.Kind)
		}
	}
}

func TestReadBoundsLongNames(t *testing.T) {
	long := strings.Repeat("é", 2000)
	objs := []fakestorage.Object{
		{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "b", Name: "p/F/F.overall_export_metadata"}, Content: []byte("x")},
		{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "b", Name: "p/F/namespace_x/kind_y/output-3"}, Content: logOf(t, entity(long, long))},
	}
	got, err := serve(t, objs).Read(context.Background(), "gs://b/p/F/F.overall_export_metadata")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Kinds) != 1 || got.Entities != 1 {
		t.Fatalf("kinds %d entities %d, want 1 and 1", len(got.Kinds), got.Entities)
	}
	k := got.Kinds[0]
	if len(k.Namespace) > poller.MaxNamespace || len(k.Kind) > poller.MaxKind || !strings.Contains(k.Kind, "[cut: 4000 bytes in all]") {
		t.Errorf("names not bounded: %d and %d bytes, kind ends %q", len(k.Namespace), len(k.Kind), k.Kind[len(k.Kind)-30:])
	}
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		url, bucket, folder, metadata, err string
	}{
		{url: "gs://b/p/F/F.overall_export_metadata", bucket: "b", folder: "p/F", metadata: "p/F/F.overall_export_metadata"},
		{url: "gs://b/F", bucket: "b", folder: "F", metadata: "F/F.overall_export_metadata"},
		{url: "gs://b/p/F//", bucket: "b", folder: "p/F", metadata: "p/F/F.overall_export_metadata"},
		{url: "gs://b/F.overall_export_metadata", err: "not in an export's folder"},
		{url: "gs://b", err: "want gs://BUCKET/FOLDER"},
		{url: "gs:///p/F", err: "want gs://BUCKET/FOLDER"},
		{url: "s3://b/p", err: "not a gs:// URL"},
		{url: "gs://b/" + strings.Repeat("x", poller.MaxURL), err: "longer than"},
	}
	for _, tt := range tests {
		b, f, m, err := content.ParseURL(tt.url)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || len(err.Error()) > 400 {
				t.Errorf("ParseURL(%.60s): error %v, want one saying %q, short", tt.url, err, tt.err)
			}
			continue
		}
		if err != nil || b != tt.bucket || f != tt.folder || m != tt.metadata {
			t.Errorf("ParseURL(%s) = %q %q %q %v, want %q %q %q", tt.url, b, f, m, err, tt.bucket, tt.folder, tt.metadata)
		}
	}
}

func TestIsOutputFile(t *testing.T) {
	for rel, want := range map[string]bool{
		"all_namespaces/all_kinds/output-0":      true,
		"all_namespaces/kind_Order/output-12":    true,
		"namespace_ns2/kind_Order/output-1":      true,
		"default_namespace/kind_Order/output-0":  true,
		"all_namespaces/all_kinds/output-":       false,
		"all_namespaces/all_kinds/x.output-0":    false,
		"all_namespaces/all_kinds/output-0/x":    false,
		"output-0":                               false,
		"other/all_kinds/output-0":               false,
		"all_namespaces/all_kinds/all.metadata":  false,
		"all_namespaces/all_kinds/output-0.temp": false,
	} {
		if got := content.IsOutputFile(rel); got != want {
			t.Errorf("IsOutputFile(%s) = %v, want %v", rel, got, want)
		}
	}
}
