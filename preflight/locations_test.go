package preflight

import "testing"

func TestCompatible(t *testing.T) {
	for _, c := range []struct {
		db, bucket string
		want       Compatibility
	}{
		{"nam5", "US", Same},
		{"nam5", "us-central1", Same},
		{"nam5", "EU", Different},
		{"nam5", "US-EAST1", Different},
		{"eur3", "EU", Same},
		{"eur3", "US", Different},
		{"europe-west3", "EUROPE-WEST3", Same},
		{"europe-west3", "EU", Same},
		{"europe-west2", "EU", Different},
		{"europe-west2", "EUR5", Same},
		{"us-east1", "NAM4", Same},
		{"us-east4", "NAM4", Different},
		{"asia-northeast1", "ASIA", Same},
		{"us-west1", "US-EAST1", Different},
		{"nam9", "US", Unknown},
		{"us-east1", "MARS", Unknown},
		{"", "US", Unknown},
	} {
		if got := Compatible(c.db, c.bucket); got != c.want {
			t.Errorf("Compatible(%q, %q) = %v, want %v", c.db, c.bucket, got, c.want)
		}
	}
}
