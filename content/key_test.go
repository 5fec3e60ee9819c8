package content

import (
	"os"
	"testing"

	"bytes"
	"github.com/syndtr/goleveldb/leveldb/journal"
	"io"
)

// records are the records of the committed full export's output file.
func records(t testing.TB) [][]byte {
	b, err := os.ReadFile("testdata/export/testdata/full/2026-12-02T073300_726/all_namespaces/all_kinds/output-0")
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	jr := journal.NewReader(bytes.NewReader(b), nil, true, true)
	for {
		r, err := jr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		rec, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
}

func TestParseEntityKeyDatabase(t *testing.T) {
	want := []key{
		{app: "content-testdata", kind: "Line"},
		{app: "content-testdata", kind: "Order"},
		{app: "content-testdata", kind: "Order"},
		{app: "content-testdata", namespace: "ns2", kind: "Order"},
		{app: "content-testdata", database: "other", kind: "Ghost"},
	}
	recs := records(t)
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d", len(recs), len(want))
	}
	for i, rec := range recs {
		k, err := parseEntityKey(rec)
		if err != nil {
			t.Fatalf("record %d: %v", i+1, err)
		}
		if k != want[i] {
			t.Errorf("record %d: key %+v, want %+v", i+1, k, want[i])
		}
	}
}

// FuzzParseEntityKey: any bytes give a key or an error, never a panic.
func FuzzParseEntityKey(f *testing.F) {
	for _, rec := range records(f) {
		f.Add(rec)
		f.Add(rec[:len(rec)/2])
	}
	f.Add([]byte{0x6a, 0x02, 0x72, 0x00})
	f.Add([]byte{0x6a, 0x04, 0x72, 0x02, 0x0b, 0x0c})
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := parseEntityKey(b)
		if err == nil && k.kind == "" {
			t.Fatalf("key %+v without a kind and no error", k)
		}
	})
}
