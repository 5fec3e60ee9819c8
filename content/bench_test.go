package content_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/dsexport/dsexport/content"
	"github.com/dsexport/dsexport/content/contenttest"
	"github.com/dsexport/dsexport/poller"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/syndtr/goleveldb/leveldb/journal"
	"google.golang.org/api/option"
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
			rw.Write(contenttest.Entity(i))
		}
		if err := w.Close(); err != nil {
			panic(err)
		}
		objs = append(objs, obj(fmt.Sprintf("%s/all_namespaces/all_kinds/output-%d", benchFolder, f), buf.Bytes()))
	}
	return objs
}

// checkBench fails b unless c holds the generated export's entities, in
// each (namespace, kind) pair: a benchmark of a read that went wrong
// measures nothing.
func checkBench(b *testing.B, c poller.Content) {
	pairs := len(contenttest.Kinds) * len(contenttest.Namespaces)
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
