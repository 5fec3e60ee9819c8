package content_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/dsexport/dsexport/content"
	"github.com/dsexport/dsexport/content/contenttest"
	"github.com/dsexport/dsexport/poller"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/syndtr/goleveldb/leveldb/journal"
	"google.golang.org/api/option"
	"google.golang.org/protobuf/encoding/protowire"
)

// The export the benchmarks read: of the shape a Datastore managed export
// of all kinds and namespaces writes (FOLDER/FOLDER.overall_export_metadata,
// all_namespaces/all_kinds/all_namespaces_all_kinds.export_metadata and the
// output files beside it), with benchEntities entities of about 1 KiB in
// 3 kinds and 2 namespaces over benchFiles output files. BENCHMARKS.md
// ("Content check and drills") has what they measure.
const (
	benchEntities = 100_000
	benchFiles    = 4
	benchBucket   = "bench"
	benchFolder   = "backups/2026-12-02T080000_1"
	benchMetadata = benchFolder + "/2026-12-02T080000_1" + content.MetadataSuffix
)

var (
	benchKinds      = []string{"Order", "Line", "Customer"}
	benchNamespaces = []string{"", "tenant-b"}
)

// benchExport is the generated export, made once for every benchmark of
// the run: its objects and their total size.
var benchExport = sync.OnceValues(func() ([]fakestorage.Object, int64) {
	objs := generateExport(benchEntities, benchFiles)
	var n int64
	for _, o := range objs {
		n += int64(len(o.Content))
	}
	return objs, n
})

// generateExport writes entities records into files output files, each
// file a contiguous range of them (an export's shards are key ranges),
// kinds and namespaces interleaved.
func generateExport(entities, files int) []fakestorage.Object {
	obj := func(name string, b []byte) fakestorage.Object {
		return fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: benchBucket, Name: name}, Content: b}
	}
	// The metadata objects are opaque to the reader, which only checks that
	// the overall one is there and not empty; these are about their size.
	objs := []fakestorage.Object{
		obj(benchMetadata, bytes.Repeat([]byte("m"), 300)),
		obj(benchFolder+"/all_namespaces/all_kinds/all_namespaces_all_kinds.export_metadata", bytes.Repeat([]byte("k"), 2000)),
	}
	per := (entities + files - 1) / files
	for f := range files {
		var buf bytes.Buffer
		w := journal.NewWriter(&buf)
		for i := f * per; i < min((f+1)*per, entities); i++ {
			rw, err := w.Next()
			if err != nil {
				panic(err)
			}
			rw.Write(benchEntity(i))
		}
		if err := w.Close(); err != nil {
			panic(err)
		}
		objs = append(objs, obj(fmt.Sprintf("%s/all_namespaces/all_kinds/output-%d", benchFolder, f), buf.Bytes()))
	}
	return objs
}

// benchKind and benchNamespace are those of entity i.
func benchKind(i int) string      { return benchKinds[i%len(benchKinds)] }
func benchNamespace(i int) string { return benchNamespaces[(i/len(benchKinds))%len(benchNamespaces)] }

// benchEntity is entity i as an EntityProto of about 1 KiB: its key (an
// id), its entity group, three indexed properties (an integer, a short
// string, a timestamp) and an unindexed text of about 900 bytes, the
// fields Datastore writes (datastore_v3.proto: EntityProto.key 13,
// entity_group 16, property 14, raw_property 15; Property.name 3,
// multiple 4, value 5, meaning 1; PropertyValue.int64Value 1,
// stringValue 3).
func benchEntity(i int) []byte {
	kind, ns := benchKind(i), benchNamespace(i)
	var el []byte
	el = protowire.AppendTag(el, 2, protowire.BytesType)
	el = protowire.AppendString(el, kind)
	el = protowire.AppendTag(el, 3, protowire.VarintType)
	el = protowire.AppendVarint(el, uint64(5_000_000_000+i))
	var path []byte
	path = protowire.AppendTag(path, 1, protowire.StartGroupType)
	path = append(path, el...)
	path = protowire.AppendTag(path, 1, protowire.EndGroupType)
	var ref []byte
	ref = protowire.AppendTag(ref, 13, protowire.BytesType)
	ref = protowire.AppendString(ref, "s~bench-project")
	if ns != "" {
		ref = protowire.AppendTag(ref, 20, protowire.BytesType)
		ref = protowire.AppendString(ref, ns)
	}
	ref = protowire.AppendTag(ref, 14, protowire.BytesType)
	ref = protowire.AppendBytes(ref, path)

	property := func(field protowire.Number, name string, meaning uint64, value []byte) []byte {
		var p []byte
		if meaning != 0 {
			p = protowire.AppendTag(p, 1, protowire.VarintType)
			p = protowire.AppendVarint(p, meaning)
		}
		p = protowire.AppendTag(p, 3, protowire.BytesType)
		p = protowire.AppendString(p, name)
		p = protowire.AppendTag(p, 4, protowire.VarintType)
		p = protowire.AppendVarint(p, 0)
		p = protowire.AppendTag(p, 5, protowire.BytesType)
		p = protowire.AppendBytes(p, value)
		var e []byte
		e = protowire.AppendTag(e, field, protowire.BytesType)
		return protowire.AppendBytes(e, p)
	}
	integer := func(v uint64) []byte {
		return protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), v)
	}
	text := func(s string) []byte {
		return protowire.AppendString(protowire.AppendTag(nil, 3, protowire.BytesType), s)
	}

	var e []byte
	e = protowire.AppendTag(e, 13, protowire.BytesType)
	e = protowire.AppendBytes(e, ref)
	e = protowire.AppendTag(e, 16, protowire.BytesType)
	e = protowire.AppendBytes(e, path)
	e = append(e, property(14, "total", 0, integer(uint64(i%10_000)*100))...)
	e = append(e, property(14, "status", 0, text([]string{"open", "paid", "shipped"}[i%3]))...)
	e = append(e, property(14, "created", 7, integer(1_764_000_000_000_000+uint64(i)*1_000_000))...) // GD_WHEN: µs
	// TEXT (15): unindexed, the bulk of a typical entity.
	desc := fmt.Sprintf("entity %d: ", i) + strings.Repeat("lorem ipsum dolor sit amet ", 34)
	e = append(e, property(15, "description", 15, text(desc))...)
	return e
}

// checkBench fails b unless c holds the generated export's entities, in
// each (namespace, kind) pair: a benchmark of a read that went wrong
// measures nothing.
func checkBench(b *testing.B, c poller.Content) {
	pairs := len(benchKinds) * len(benchNamespaces)
	if c.Entities != benchEntities || c.Files != benchFiles || len(c.Kinds) != pairs || c.KindsCut {
		b.Fatalf("read %d entities in %d files, %d kinds (cut %v); want %d in %d, %d kinds",
			c.Entities, c.Files, len(c.Kinds), c.KindsCut, benchEntities, benchFiles, pairs)
	}
}

// BenchmarkReadDatabase reads the generated export over fake-gcs-server on
// a loopback port, through the storage client, as the service reads an
// export in Cloud Storage. The MB/s are of every object of the export.
func BenchmarkReadDatabase(b *testing.B) {
	objs, size := benchExport()
	contenttest.Serve(b, objs)
	r, err := content.New(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	url := "gs://" + benchBucket + "/" + benchMetadata
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		c, err := r.ReadDatabase(context.Background(), url, "")
		if err != nil {
			b.Fatal(err)
		}
		checkBench(b, c)
	}
	b.ReportMetric(float64(benchEntities)*float64(b.N)/b.Elapsed().Seconds(), "entities/s")
}

// BenchmarkReadDatabaseLocal reads the same export from a temporary
// directory through a Reader made by content.NewLocal, as for the Datastore
// emulator's exports: the reader's own cost, without HTTP.
func BenchmarkReadDatabaseLocal(b *testing.B) {
	objs, size := benchExport()
	root := filepath.Join(b.TempDir(), "gs:", benchBucket)
	for _, o := range objs {
		p := filepath.Join(root, filepath.FromSlash(o.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, o.Content, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	r, err := content.NewLocal(context.Background(), option.WithoutAuthentication())
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	path := filepath.Join(root, filepath.FromSlash(benchMetadata))
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		c, err := r.ReadDatabase(context.Background(), path, "")
		if err != nil {
			b.Fatal(err)
		}
		checkBench(b, c)
	}
	b.ReportMetric(float64(benchEntities)*float64(b.N)/b.Elapsed().Seconds(), "entities/s")
}
