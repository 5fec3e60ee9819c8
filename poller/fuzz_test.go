package poller_test

// Fuzz targets for what dsexport takes from configuration and requests:
// output URL prefixes and export requests. Each asserts properties of what
// is accepted, not only "no panic". Seed corpora: the f.Add calls below and
// testdata/fuzz/<Target>/. Run one with
//
//	go test ./poller -run '^$' -fuzz '^FuzzValidatePrefix$' -fuzztime 20s
//
// or all of them briefly with scripts/fuzz.sh (the operation parsing and
// name targets are in package admin).

import (
	"net/url"
	"strings"
	"testing"
	"unicode"

	"github.com/dsexport/dsexport/poller"
)

func FuzzValidatePrefix(f *testing.F) {
	for _, s := range []string{
		"gs://example-backups/daily",
		"gs://example-backups",
		"gs://example-backups/",
		"gs://backups.example.com/x/y",
		"gs://a_b-c.d/x",
		"gs://abc",
		"gs://" + strings.Repeat("a", 63),
		"gs://" + strings.Repeat("a", 64),
		"gs://" + strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("a", 30),
		"gs://ab",
		"gs:///x",
		"gs://",
		"gs:/example-backups",
		"GS://example-backups",
		"s3://example-backups/x",
		"https://evil.example/x",
		"gs://evil.example@example-backups/x",
		"gs://example-backups:443/x",
		"gs://Backups",
		"gs://-backups",
		"gs://backups-",
		"gs://back..ups",
		"gs://google-backups",
		"gs://goog-backups",
		"gs://192.168.1.1",
		"gs://example-backups//x",
		"gs://example-backups/a//b",
		"gs://example-backups/../other-bucket",
		"gs://example-backups/%2F..%2F",
		"gs://example-backups/a?b",
		"gs://example-backups/a#b",
		"gs://example-backups/a\nb",
		"gs://example-backups/a\rb",
		"gs://example-backups/a\tb",
		"gs://example-backups/a\x00b",
		"gs://example-backups/a\x7fb",
		"gs://example-backups/" + strings.Repeat("p", 1024),
		"gs://example-backups/" + strings.Repeat("p", 1025),
		"gs://example-backups/a\u0085b",
		"gs://example-backups/ünïcode",
		"gs://exämple-backups/x",
		"gs://example-backups/[x]*",
		"gs://example-backups/\xff",
		"gs://example-backups\n/x",
		" gs://example-backups",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, prefix string) {
		err := poller.ValidatePrefix(prefix)
		// ValidateExport checks the prefix the same way.
		exportErr := poller.ValidateExport(poller.ExportRequest{Project: "example-proj", OutputURLPrefix: prefix})
		if (err == nil) != (exportErr == nil) {
			t.Fatalf("ValidatePrefix(%q) = %v but ValidateExport with it = %v", prefix, err, exportErr)
		}
		if err != nil {
			if !strings.HasPrefix(exportErr.Error(), "outputUrlPrefix:") {
				t.Fatalf("ValidateExport with prefix %q = %q; want it to name outputUrlPrefix", prefix, exportErr)
			}
			return
		}
		rest, ok := strings.CutPrefix(prefix, "gs://")
		if !ok {
			t.Fatalf("ValidatePrefix accepted %q, which does not start with gs://", prefix)
		}
		bucket, path, _ := strings.Cut(rest, "/")
		if len(path) > poller.MaxObjectName {
			t.Fatalf("ValidatePrefix accepted %q, whose path has %d bytes, more than an object name holds", prefix, len(path))
		}
		if n := len(bucket); n < 3 || n > 222 {
			t.Fatalf("ValidatePrefix accepted %q, whose bucket %q has %d characters", prefix, bucket, n)
		}
		for _, r := range bucket {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
				t.Fatalf("ValidatePrefix accepted %q, whose bucket %q holds %q", prefix, bucket, r)
			}
		}
		alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
		if !alnum(bucket[0]) || !alnum(bucket[len(bucket)-1]) {
			t.Fatalf("ValidatePrefix accepted %q, whose bucket %q does not start and end with a letter or digit", prefix, bucket)
		}
		if strings.Contains(bucket, "..") {
			t.Fatalf("ValidatePrefix accepted %q, whose bucket %q contains ..", prefix, bucket)
		}
		if strings.HasPrefix(bucket, "goog") || strings.Contains(bucket, "google") {
			t.Fatalf("ValidatePrefix accepted %q, whose bucket %q is reserved to Google", prefix, bucket)
		}
		for _, part := range strings.Split(bucket, ".") {
			if len(part) > 63 {
				t.Fatalf("ValidatePrefix accepted %q, whose bucket %q has a part over 63 characters", prefix, bucket)
			}
		}
		if !strings.Contains(bucket, ".") && len(bucket) > 63 {
			t.Fatalf("ValidatePrefix accepted %q, whose undotted bucket %q is over 63 characters", prefix, bucket)
		}
		for _, bad := range []string{"#", "?", "//"} {
			if strings.Contains(rest, bad) {
				t.Fatalf("ValidatePrefix accepted %q, which contains %q after gs://", prefix, bad)
			}
		}
		for _, r := range prefix {
			if unicode.IsControl(r) {
				t.Fatalf("ValidatePrefix accepted %q, which contains the control character %U", prefix, r)
			}
		}
		// The bucket is the URL's host: nothing in the prefix can name another.
		// (A path may hold a % that is no URL escape: url.Parse need not take it.)
		if u, err := url.Parse(prefix); err == nil && (u.Scheme != "gs" || u.Host != bucket || u.User != nil) {
			t.Fatalf("ValidatePrefix accepted %q, which parses as scheme %q host %q user %v; want gs and %q", prefix, u.Scheme, u.Host, u.User, bucket)
		}
	})
}
