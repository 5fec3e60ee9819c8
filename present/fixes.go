package present

import (
	"fmt"
	"regexp"
	"strings"
)

// The refusals of the Admin APIs and Cloud Storage that dsexport doctor
// checks for ahead of time, with the same fix commands (preflight makes
// them for its checks; its tests hold both to the same text).
var (
	// "service-123@gcp-sa-firestore.iam.gserviceaccount.com does not have
	// storage.objects.create access to the Google Cloud Storage object."
	noAccessRE = regexp.MustCompile(`(?i)(?:([a-z0-9._-]+@[a-z0-9.-]+\.gserviceaccount\.com)\s+)?does not have (storage\.[a-z]+\.[a-z]+) access`)
	// "The specified bucket does not exist.", "Bucket b does not exist."
	noBucketRE = regexp.MustCompile(`(?i)\bbucket\b[^.]{0,300}?\bdoes not exist|\bno such bucket\b`)
	// "Bucket is a requester pays bucket but no user project provided."
	requesterPaysRE = regexp.MustCompile(`(?i)requester[ -]pays`)
	// A bucket in a location the database cannot export to.
	locationRE = regexp.MustCompile(`(?i)\blocation\b[^.]{0,300}?\b(?:mismatch|incompatible|not compatible|does not match|must be in|must match)\b`)
)

// FixFor is the command that fixes the refusal errorMessage describes,
// when it is a known one: a missing storage permission (the role binding on
// the bucket for the account the message names, the Firestore service agent
// otherwise), a bucket that does not exist, a Requester Pays bucket, a
// bucket in another location than the database. BUCKET, PROJECT_NUMBER and
// LOCATION stand for what the message does not say (FixForExport fills in
// the bucket).
func FixFor(errorMessage string) (fix string, ok bool) { return FixForExport(errorMessage, "") }

// FixForExport is FixFor for an export to prefix (gs://bucket/path), whose
// bucket the command names.
func FixForExport(errorMessage, prefix string) (string, bool) {
	bucket := "BUCKET"
	if rest, ok := strings.CutPrefix(prefix, "gs://"); ok {
		if b, _, _ := strings.Cut(rest, "/"); b != "" {
			bucket = b
		}
	}
	switch {
	case noAccessRE.MatchString(errorMessage):
		m := noAccessRE.FindStringSubmatch(errorMessage)
		member := strings.ToLower(m[1])
		if member == "" {
			member = "service-PROJECT_NUMBER@gcp-sa-firestore.iam.gserviceaccount.com"
		}
		role := "roles/storage.objectAdmin"
		if strings.HasPrefix(strings.ToLower(m[2]), "storage.buckets.") {
			role = "roles/storage.legacyBucketReader"
		}
		return fmt.Sprintf("gcloud storage buckets add-iam-policy-binding gs://%s --member=serviceAccount:%s --role=%s", bucket, member, role), true
	case requesterPaysRE.MatchString(errorMessage):
		return fmt.Sprintf("gcloud storage buckets update gs://%s --no-requester-pays", bucket), true
	case noBucketRE.MatchString(errorMessage):
		return fmt.Sprintf("gcloud storage buckets create gs://%s --location=LOCATION", bucket), true
	case locationRE.MatchString(errorMessage):
		return fmt.Sprintf("gcloud storage buckets create gs://%s-LOCATION --location=LOCATION", bucket), true
	}
	return "", false
}
