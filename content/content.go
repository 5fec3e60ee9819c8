// Package content reads a finished Datastore export from Cloud Storage (or,
// for the Datastore emulator's exports, from the local filesystem) and
// says what it holds, measured from the files themselves: the export's
// metadata object, its objects and their size, and per namespace and kind the
// entities in its output files' records (LevelDB log files whose records are
// App Engine EntityProtos; only each record's key is read).
//
// It is an adapter, as admin/ is: the result is the domain's poller.Content,
// which poller.CheckContent compares with what the export should hold.
// The storage client honours STORAGE_EMULATOR_HOST (a local Cloud Storage
// such as fake-gcs-server).
package content

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"sort"
	"strings"

	"cloud.google.com/go/storage"
	"github.com/dsexport/dsexport/poller"
	"github.com/syndtr/goleveldb/leveldb/journal"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
)

// The bounds of a read. An export is large but its shape is not: these keep
// a broken or hostile bucket from taking unbounded time or memory.
const (
	// MaxObjects is the most objects listed under an export's folder: an
	// export writes a few files per kind and namespace and one per output
	// shard. More is an error, not a partial count.
	MaxObjects = 100_000
	// MaxKinds is the most (namespace, kind) pairs counted one by one; the
	// entities of the others are summed under poller.CutKind.
	MaxKinds = 10_000
	// MaxRecord bounds one record of an output file: an entity holds at most
	// 1 MiB, its key and property names a little more.
	MaxRecord = 4 << 20
	// MaxMetadata bounds the .overall_export_metadata object, which lists
	// the export's kinds and namespaces (a few hundred bytes each).
	MaxMetadata = 64 << 20
)

// MetadataSuffix ends the name of an export's overall metadata object,
// FOLDER/FOLDER.overall_export_metadata.
const MetadataSuffix = ".overall_export_metadata"

// Reader reads exports through one Cloud Storage client, and in local mode
// (NewLocal) from the local filesystem too.
type Reader struct {
	client *storage.Client
	own    bool
	// local lets Read take an absolute local path: the Datastore emulator
	// writes its exports to its directory, not to Cloud Storage. Off in
	// production, which never reads local files.
	local bool
}

// New returns a Reader on a new storage client made with opts (credentials,
// endpoint); STORAGE_EMULATOR_HOST points it at a local Cloud Storage.
// It reads gs:// URLs only. Close it when done.
func New(ctx context.Context, opts ...option.ClientOption) (*Reader, error) {
	c, err := storage.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("content: storage client: %w", err)
	}
	return &Reader{client: c, own: true}, nil
}

// NewLocal is New for a Reader that also reads an export from the local
// filesystem when given an absolute path instead of a gs:// URL: the
// outputUrl of the Datastore emulator's export operation is a path under
// its directory. gs:// URLs are still read through the client. Without
// credentials or STORAGE_EMULATOR_HOST, pass option.WithoutAuthentication().
func NewLocal(ctx context.Context, opts ...option.ClientOption) (*Reader, error) {
	r, err := New(ctx, opts...)
	if err != nil {
		return nil, err
	}
	r.local = true
	return r, nil
}

// NewFromClient returns a Reader on a client made elsewhere; Close leaves it
// open.
func NewFromClient(c *storage.Client) *Reader { return &Reader{client: c} }

// Close closes the client New made.
func (r *Reader) Close() error {
	if r.own {
		return r.client.Close()
	}
	return nil
}

// Read reads the export of the default database at outputURL: its
// .overall_export_metadata object (gs://b/p/FOLDER/FOLDER.overall_export_metadata,
// a Datastore Admin export's outputUrl) or its folder (gs://b/p/FOLDER, a
// Firestore Admin export's outputUriPrefix). A Reader made by NewLocal also
// takes the absolute local path of either, /d/FOLDER/FOLDER.overall_export_metadata
// or /d/FOLDER.
func (r *Reader) Read(ctx context.Context, outputURL string) (poller.Content, error) {
	return r.ReadDatabase(ctx, outputURL, poller.DefaultDatabase)
}

// ReadDatabase is Read for the export of database ("" or "(default)": the
// default one). Records of other databases are counted apart, in
// OtherDatabases.
//
// The errors name the object (or file), and for a corrupt or truncated
// output file the record and the 32 KiB block where reading stopped.
func (r *Reader) ReadDatabase(ctx context.Context, outputURL, database string) (poller.Content, error) {
	if database == "" {
		database = poller.DefaultDatabase
	}
	var src source
	var folder, metadata string
	if r.local && !strings.HasPrefix(outputURL, "gs://") {
		var err error
		if folder, metadata, err = parsePath(outputURL); err != nil {
			return poller.Content{}, err
		}
		src = localSource{}
	} else {
		bucket, f, m, err := ParseURL(outputURL)
		if err != nil {
			return poller.Content{}, err
		}
		folder, metadata = f, m
		src = bucketSource{b: r.client.Bucket(bucket), bucket: bucket}
	}
	return read(ctx, src, folder, metadata, database)
}

// source is where an export's files are: a Cloud Storage bucket
// (bucketSource) or the local filesystem (localSource). Names are object
// names in a bucket, absolute paths on the filesystem.
type source interface {
	// url is name as the errors and Content.MetadataURL say it.
	url(name string) string
	// open opens the object or file named.
	open(ctx context.Context, name string) (io.ReadCloser, error)
	// list calls f with each object under folder: its name, its name
	// relative to folder ("/"-separated) and its size. An error of f stops
	// the listing and is returned as it is.
	list(ctx context.Context, folder string, f func(name, rel string, size int64) error) error
}

// read reads the export in src whose folder and metadata are named: the
// counting and the bounds of both sources.
func read(ctx context.Context, src source, folder, metadata, database string) (poller.Content, error) {
	c := poller.Content{MetadataURL: src.url(metadata), Database: database}
	if err := readMetadata(ctx, src, metadata); err != nil {
		return c, err
	}

	var outputs []string
	err := src.list(ctx, folder, func(name, rel string, size int64) error {
		if c.Objects == MaxObjects {
			return fmt.Errorf("content: more than %d objects under %s/: not counted", MaxObjects, src.url(folder))
		}
		c.Objects++
		c.Bytes += size
		if IsOutputFile(rel) {
			outputs = append(outputs, name)
		}
		return nil
	})
	if err != nil {
		return c, err
	}
	c.Files = len(outputs)

	n := newCounter(database)
	for _, name := range outputs {
		if err := countObject(ctx, src, name, n); err != nil {
			return c, err
		}
	}
	c.Kinds, c.KindsCut, c.Entities, c.OtherDatabases = n.result()
	return c, nil
}

// bucketSource is an export's bucket in Cloud Storage.
type bucketSource struct {
	b      *storage.BucketHandle
	bucket string
}

func (s bucketSource) url(name string) string {
	return "gs://" + s.bucket + "/" + poller.BoundText(name, poller.MaxObjectName)
}

func (s bucketSource) open(ctx context.Context, name string) (io.ReadCloser, error) {
	return s.b.Object(name).NewReader(ctx)
}

func (s bucketSource) list(ctx context.Context, folder string, f func(name, rel string, size int64) error) error {
	q := &storage.Query{Prefix: folder + "/"}
	if err := q.SetAttrSelection([]string{"Name", "Size"}); err != nil {
		return fmt.Errorf("content: %w", err)
	}
	it := s.b.Objects(ctx, q)
	for {
		attrs, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("content: list %s/: %w", s.url(folder), err)
		}
		if err := f(attrs.Name, strings.TrimPrefix(attrs.Name, folder+"/"), attrs.Size); err != nil {
			return err
		}
	}
}

// ParseURL splits an export's outputURL into its bucket, its folder and its
// metadata object's name.
func ParseURL(outputURL string) (bucket, folder, metadata string, err error) {
	bad := func(why string) error {
		return fmt.Errorf("content: output URL %q: %s", poller.BoundText(outputURL, 256), why)
	}
	if len(outputURL) > poller.MaxURL {
		return "", "", "", bad(fmt.Sprintf("longer than %d bytes", poller.MaxURL))
	}
	rest, ok := strings.CutPrefix(outputURL, "gs://")
	if !ok {
		return "", "", "", bad("not a gs:// URL")
	}
	bucket, object, _ := strings.Cut(rest, "/")
	object = strings.TrimRight(object, "/")
	if bucket == "" || object == "" {
		return "", "", "", bad("want gs://BUCKET/FOLDER or gs://BUCKET/FOLDER/FOLDER" + MetadataSuffix)
	}
	if strings.HasSuffix(object, MetadataSuffix) {
		folder = path.Dir(object)
		if folder == "." {
			return "", "", "", bad("the metadata object is not in an export's folder")
		}
		return bucket, folder, object, nil
	}
	return bucket, object, object + "/" + path.Base(object) + MetadataSuffix, nil
}

// outputFile is the name of an output file relative to the export's folder:
// NAMESPACES/KINDS/output-N, NAMESPACES all_namespaces, default_namespace or
// namespace_NS, KINDS all_kinds or kind_KIND.
var outputFile = regexp.MustCompile(`^(all_namespaces|default_namespace|namespace_[^/]*)/(all_kinds|kind_[^/]*)/output-[0-9]+$`)

// IsOutputFile says whether rel, an object's name relative to an export's
// folder, is one of its output files.
func IsOutputFile(rel string) bool { return outputFile.MatchString(rel) }

// readMetadata checks that the metadata object exists and is readable to
// its end.
func readMetadata(ctx context.Context, src source, name string) error {
	url := src.url(name)
	or, err := src.open(ctx, name)
	if err != nil {
		return fmt.Errorf("content: export metadata %s: %w", url, err)
	}
	defer or.Close()
	n, err := io.Copy(io.Discard, io.LimitReader(or, MaxMetadata+1))
	if err != nil {
		return fmt.Errorf("content: export metadata %s: read: %w", url, err)
	}
	if n > MaxMetadata {
		return fmt.Errorf("content: export metadata %s: larger than %d bytes", url, MaxMetadata)
	}
	if n == 0 {
		return fmt.Errorf("content: export metadata %s: empty", url)
	}
	return nil
}

// countObject streams one output file through the LevelDB log reader and
// counts its records' keys.
func countObject(ctx context.Context, src source, name string, n *counter) error {
	url := src.url(name)
	or, err := src.open(ctx, name)
	if err != nil {
		return fmt.Errorf("content: output file %s: %w", url, err)
	}
	defer or.Close()
	if err := count(or, n); err != nil {
		return fmt.Errorf("content: output file %s: %w", url, err)
	}
	return nil
}

// blockSize is the LevelDB log's block size.
const blockSize = 32 << 10

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// count reads the LevelDB log in r, checksums checked, and counts each
// record's key in n. Errors name the record (from 1) and the block read.
func count(r io.Reader, n *counter) error {
	cr := &countingReader{r: r}
	jr := journal.NewReader(cr, nil, true, true)
	where := func(record int) string {
		block := int64(0)
		if cr.n > 0 {
			block = (cr.n - 1) / blockSize * blockSize
		}
		return fmt.Sprintf("record %d (in the block at byte %d)", record, block)
	}
	for record := 1; ; record++ {
		rr, err := jr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", where(record), err)
		}
		data, err := io.ReadAll(io.LimitReader(rr, MaxRecord+1))
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				err = fmt.Errorf("truncated: %w", err)
			}
			return fmt.Errorf("%s: %w", where(record), err)
		}
		if len(data) > MaxRecord {
			return fmt.Errorf("%s: larger than %d bytes", where(record), MaxRecord)
		}
		k, err := parseEntityKey(data)
		if err != nil {
			return fmt.Errorf("%s: not an entity: %w", where(record), err)
		}
		n.add(k)
	}
}

// counter counts entities per namespace and kind, at most MaxKinds pairs.
type counter struct {
	database string
	kinds    map[nsKind]int64
	cut      int64
	cutAny   bool
	other    int64
	max      int
}

type nsKind struct{ namespace, kind string }

func newCounter(database string) *counter {
	return &counter{database: database, kinds: map[nsKind]int64{}, max: MaxKinds}
}

func (c *counter) add(k key) {
	// A key without a database id is of the database exported: an export
	// is of one database, and Google's may leave the id out. (The Datastore
	// emulator's export of (default) holds the other databases' entities
	// too, with their ids.)
	db := k.database
	if db == "" {
		db = c.database
	}
	if db != c.database {
		c.other++
		return
	}
	nk := nsKind{poller.BoundText(k.namespace, poller.MaxNamespace), poller.BoundText(k.kind, poller.MaxKind)}
	if _, ok := c.kinds[nk]; !ok && len(c.kinds) >= c.max {
		c.cut++
		c.cutAny = true
		return
	}
	c.kinds[nk]++
}

func (c *counter) result() (kinds []poller.KindCount, cut bool, entities, other int64) {
	for nk, n := range c.kinds {
		kinds = append(kinds, poller.KindCount{Namespace: nk.namespace, Kind: nk.kind, Entities: n})
		entities += n
	}
	sort.Slice(kinds, func(i, j int) bool {
		if kinds[i].Namespace != kinds[j].Namespace {
			return kinds[i].Namespace < kinds[j].Namespace
		}
		return kinds[i].Kind < kinds[j].Kind
	})
	if c.cutAny {
		kinds = append(kinds, poller.KindCount{Kind: poller.CutKind, Entities: c.cut})
		entities += c.cut
	}
	return kinds, c.cutAny, entities, c.other
}
