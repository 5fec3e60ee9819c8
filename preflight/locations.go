package preflight

import (
	"regexp"
	"strings"
)

// Where the data of a Firestore location lives, and which Cloud Storage
// locations hold it. Sources: Firestore locations,
// https://cloud.google.com/firestore/docs/locations (nam5: us-central1 and
// us-central2; nam7: us-central1 and us-east4; eur3: europe-west1 and
// europe-west4), and Cloud Storage locations,
// https://cloud.google.com/storage/docs/locations (the US, EU and ASIA
// multi-regions; the predefined dual-regions below). A pair the tables do
// not know is a warning, never a failure.

// firestoreMultiRegions are the Firestore multi-regions, with the Cloud
// Storage locations (upper case, as buckets report them) that hold them.
var firestoreMultiRegions = map[string][]string{
	"nam5": {"US", "US-CENTRAL1"},
	"nam7": {"US", "US-CENTRAL1", "US-EAST4"},
	"eur3": {"EU", "EUROPE-WEST1", "EUROPE-WEST4"},
}

// dualRegions are Cloud Storage's predefined dual-regions and their regions.
var dualRegions = map[string][]string{
	"NAM4":  {"us-central1", "us-east1"},
	"EUR4":  {"europe-north1", "europe-west4"},
	"EUR5":  {"europe-west1", "europe-west2"},
	"EUR7":  {"europe-west2", "europe-west3"},
	"EUR8":  {"europe-west3", "europe-west6"},
	"ASIA1": {"asia-northeast1", "asia-northeast2"},
}

// euRegions are the regions in the EU multi-region (member states of the
// European Union: not London, Zurich, …).
var euRegions = map[string]bool{
	"europe-central2": true, "europe-north1": true, "europe-southwest1": true,
	"europe-west1": true, "europe-west3": true, "europe-west4": true,
	"europe-west8": true, "europe-west9": true, "europe-west10": true, "europe-west12": true,
}

// Compatibility is what the tables say of a bucket's location for a
// database's.
type Compatibility int

// The answers of Compatible.
const (
	Unknown Compatibility = iota
	Same
	Different
)

// Compatible tells whether a bucket in bucketLoc (as Cloud Storage reports
// it: "US", "EU", "NAM4", "US-CENTRAL1") holds the data of a database in
// dbLoc (its locationId: "nam5", "europe-west3"): the same region, or a
// multi-region or dual-region that contains the database's region(s).
func Compatible(dbLoc, bucketLoc string) Compatibility {
	db := strings.ToLower(strings.TrimSpace(dbLoc))
	b := strings.ToUpper(strings.TrimSpace(bucketLoc))
	if db == "" || b == "" {
		return Unknown
	}
	if locs, ok := firestoreMultiRegions[db]; ok {
		for _, l := range locs {
			if l == b {
				return Same
			}
		}
		if known(b) {
			return Different
		}
		return Unknown
	}
	if !strings.Contains(db, "-") {
		return Unknown // a Firestore multi-region the table does not know
	}
	if strings.EqualFold(db, b) {
		return Same
	}
	if contains(b, db) {
		return Same
	}
	if known(b) {
		return Different
	}
	return Unknown
}

// contains tells whether the multi- or dual-region b holds region.
func contains(b, region string) bool {
	switch b {
	case "US":
		return strings.HasPrefix(region, "us-")
	case "EU":
		return euRegions[region]
	case "ASIA":
		return strings.HasPrefix(region, "asia-")
	}
	for _, r := range dualRegions[b] {
		if r == region {
			return true
		}
	}
	return false
}

// known tells whether the tables can say what b holds: a multi-region, a
// predefined dual-region, or a region (which holds only itself).
func known(b string) bool {
	switch b {
	case "US", "EU", "ASIA":
		return true
	}
	if _, ok := dualRegions[b]; ok {
		return true
	}
	return regionRE.MatchString(b)
}

// regionRE is a Cloud Storage region as buckets report it (US-EAST1).
var regionRE = regexp.MustCompile(`^[A-Z]+-[A-Z]+[0-9]+$`)
