// Command bigread measures the content check's read of one large export
// (content.Reader.ReadDatabase), once: its entities/s, MiB/s and the peak
// RSS of the process that reads. The export is generated on disk first, of
// the shape content/bench_test.go's benchmarks read (entities of about
// 1 KiB, 3 kinds, 2 namespaces, the same records), so that generating it
// is no part of the reader's memory:
//
//	go run ./internal/capacity/bigread -gen -dir /tmp/bigread            # about 1 GiB
//	go build -o /tmp/bigread ./internal/capacity/bigread
//	/usr/bin/time -v /tmp/bigread -read local -dir /tmp/bigread
//	/tmp/bigread -read gcs -dir /tmp/bigread
//
// -read gcs serves the files from fake-gcs-server in a child process (this
// binary with -serve), on a loopback port, and reads them through the
// storage client: the child holds the whole export in memory, so the
// reader's peak is its own VmHWM, printed at the end (/usr/bin/time -v
// would report the child's). BENCHMARKS.md ("Content check and drills")
// has the figures.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/dsexport/dsexport/content"
	"github.com/dsexport/dsexport/content/contenttest"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/syndtr/goleveldb/leveldb/journal"
	"google.golang.org/api/option"
)

const (
	benchBucket   = "bench"
	benchFolder   = "backups/2026-12-02T080000_1"
	benchMetadata = benchFolder + "/2026-12-02T080000_1" + content.MetadataSuffix
)

func main() {
	dir := flag.String("dir", "/tmp/bigread", "`directory` of the export: DIR/BUCKET/FOLDER/...")
	gen := flag.Bool("gen", false, "generate the export in -dir")
	entities := flag.Int("entities", 1_000_000, "entities to generate (about 1,090 bytes each in the files)")
	files := flag.Int("files", 16, "output files to generate")
	read := flag.String("read", "", "read the export once: `local` (content.NewLocal, from -dir) or gcs (fake-gcs-server in a child process)")
	serve := flag.Bool("serve", false, "serve -dir from fake-gcs-server, print its host, stop when stdin closes (for -read gcs)")
	flag.Parse()
	log.SetFlags(0)
	switch {
	case *gen:
		generate(*dir, *entities, *files)
	case *serve:
		serveFake(*dir)
	case *read == "local":
		readExport(filepath.Join(*dir, benchBucket, filepath.FromSlash(benchMetadata)), "local", *entities)
	case *read == "gcs":
		stop := startFake(*dir)
		readExport("gs://"+benchBucket+"/"+benchMetadata, "gcs", *entities)
		stop()
	default:
		flag.Usage()
		os.Exit(2)
	}
}

// generate writes the export: the two metadata objects and entities
// records in files output files, each a contiguous range of them.
func generate(dir string, entities, files int) {
	root := filepath.Join(dir, benchBucket)
	if err := os.RemoveAll(root); err != nil {
		log.Fatal(err)
	}
	write := func(name string, f func(w io.Writer) error) {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			log.Fatal(err)
		}
		out, err := os.Create(p)
		if err != nil {
			log.Fatal(err)
		}
		bw := bufio.NewWriterSize(out, 1<<20)
		if err := f(bw); err != nil {
			log.Fatal(err)
		}
		if err := bw.Flush(); err != nil {
			log.Fatal(err)
		}
		if err := out.Close(); err != nil {
			log.Fatal(err)
		}
	}
	fill := func(c string, n int) func(io.Writer) error {
		return func(w io.Writer) error { _, err := io.WriteString(w, strings.Repeat(c, n)); return err }
	}
	write(benchMetadata, fill("m", 300))
	write(benchFolder+"/all_namespaces/all_kinds/all_namespaces_all_kinds.export_metadata", fill("k", 2000))
	per := (entities + files - 1) / files
	for f := range files {
		write(fmt.Sprintf("%s/all_namespaces/all_kinds/output-%d", benchFolder, f), func(w io.Writer) error {
			jw := journal.NewWriter(w)
			for i := f * per; i < min((f+1)*per, entities); i++ {
				rw, err := jw.Next()
				if err != nil {
					return err
				}
				if _, err := rw.Write(contenttest.Entity(i)); err != nil {
					return err
				}
			}
			return jw.Close()
		})
	}
	n, objs := size(root)
	fmt.Printf("bigread: generated %d entities in %d output files, %d objects, %d bytes (%.2f GiB) under %s\n",
		entities, files, objs, n, float64(n)/(1<<30), root)
}

// size is the total size of the files under root.
func size(root string) (n int64, files int) {
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			info, _ := d.Info()
			n += info.Size()
			files++
		}
		return nil
	})
	return n, files
}

// readExport reads the export at url once and prints what it took.
func readExport(url, mode string, entities int) {
	ctx := context.Background()
	var opts []option.ClientOption
	if mode == "local" {
		opts = append(opts, option.WithoutAuthentication())
	}
	r, err := content.NewLocal(ctx, opts...)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	start := time.Now()
	c, err := r.ReadDatabase(ctx, url, "")
	took := time.Since(start)
	if err != nil {
		log.Fatal(err)
	}
	if c.Entities != int64(entities) {
		log.Fatalf("bigread: read %d entities, want %d", c.Entities, entities)
	}
	mib := float64(c.Bytes) / (1 << 20)
	fmt.Printf("bigread: %s read %d entities in %d kinds, %d files, %d bytes (%.0f MiB) in %s: %.0f entities/s, %.1f MiB/s (%.1f MB/s)\n",
		mode, c.Entities, len(c.Kinds), c.Files, c.Bytes, mib, took.Round(time.Millisecond),
		float64(c.Entities)/took.Seconds(), mib/took.Seconds(), float64(c.Bytes)/1e6/took.Seconds())
	fmt.Printf("bigread: %s peak RSS of the reading process %s (VmHWM)\n", mode, vmHWM())
}

// vmHWM is this process's peak RSS as /proc/self/status says it.
func vmHWM() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown: " + err.Error()
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb float64
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &kb)
			return fmt.Sprintf("%.1f MiB (%.1f MB)", kb/1024, kb*1024/1e6)
		}
	}
	return "unknown"
}

// startFake runs this binary with -serve in a child process and points
// STORAGE_EMULATOR_HOST at it; stop ends it.
func startFake(dir string) (stop func()) {
	exe, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	cmd := exec.Command(exe, "-serve", "-dir", dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		log.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		log.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	host, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		log.Fatalf("bigread: the fake did not start: %v", err)
	}
	os.Setenv("STORAGE_EMULATOR_HOST", strings.TrimSpace(host))
	return func() {
		stdin.Close()
		cmd.Wait()
	}
}

// serveFake serves the files under dir from fake-gcs-server, as
// content/contenttest.Serve does, until stdin closes.
func serveFake(dir string) {
	objs, err := contenttest.Objects(dir)
	if err != nil {
		log.Fatal(err)
	}
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		InitialObjects: objs, Scheme: "http", Host: "127.0.0.1", PublicHost: "127.0.0.1", Writer: io.Discard})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Stop()
	fmt.Println(strings.TrimPrefix(srv.URL(), "http://"))
	io.Copy(io.Discard, os.Stdin)
}
