package poller

import (
	"fmt"
	"net"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxFilterCombinations is the Admin API's limit of kind × namespace
// combinations in one export request.
const MaxFilterCombinations = 100

var (
	// namespaceRE is Datastore's namespace grammar; "" is the default namespace.
	namespaceRE = regexp.MustCompile(`^[0-9A-Za-z._-]{0,100}$`)
	projectRE   = regexp.MustCompile(`^` + projectPattern + `$`)
	bucketRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*[a-z0-9]$`)
)

// FieldError is a mistake in one field of an export request. Field is the
// field's name in the HTTP API's JSON (project, outputUrlPrefix, kinds,
// namespaces, or "kinds × namespaces" for the two together), so the server
// can show the error as it is and the command line can name the variable or
// flag the value came from instead.
type FieldError struct {
	Field string
	Err   error
}

// Error is "field: message", the body of the HTTP 400 answer.
func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

func (e *FieldError) Unwrap() error { return e.Err }

func fieldErrorf(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}

// ValidateProject checks a project ID against the grammar operation names use.
func ValidateProject(project string) error {
	if project == "" {
		return fieldErrorf("project", "project is empty")
	}
	if len(project) > 100 || !projectRE.MatchString(project) {
		return fieldErrorf("project", "project %s is not a valid project ID", quote(project))
	}
	return nil
}

// ValidatePrefix checks an output URL prefix: gs:// and a valid bucket name,
// optionally followed by a path of at most MaxObjectName bytes, Cloud
// Storage's limit on an object name. The export's objects are named the
// path and more (a timestamped folder, the kind and namespace names), so a
// path near the limit may still be refused by the Admin API; a longer one
// never can be written.
func ValidatePrefix(prefix string) error {
	const field = "outputUrlPrefix"
	q := quote(prefix)
	rest, ok := strings.CutPrefix(prefix, "gs://")
	if !ok {
		return fieldErrorf(field, "output prefix %s must start with gs://", q)
	}
	bucket, path, _ := strings.Cut(rest, "/")
	if err := validateBucket(bucket); err != nil {
		return fieldErrorf(field, "output prefix %s: %w", q, err)
	}
	if len(path) > MaxObjectName {
		return fieldErrorf(field, "output prefix %s: the path has %d bytes; Cloud Storage object names hold at most %d", q, len(path), MaxObjectName)
	}
	if strings.ContainsAny(path, "#?[]*") || strings.Contains("/"+path, "//") {
		return fieldErrorf(field, "output prefix %s: the path may not contain //, #, ?, [, ] or *", q)
	}
	if !utf8.ValidString(path) || strings.ContainsFunc(path, unicode.IsControl) {
		return fieldErrorf(field, "output prefix %s: the path may not contain control characters or invalid UTF-8", q)
	}
	return nil
}

// validateBucket follows Cloud Storage's bucket naming rules.
func validateBucket(b string) error {
	switch {
	case b == "":
		return fmt.Errorf("bucket name is empty")
	case len(b) < 3 || len(b) > 222:
		return fmt.Errorf("bucket name %s must be 3 to 222 characters", quote(b))
	case !bucketRE.MatchString(b):
		return fmt.Errorf("bucket name %s may hold only lower-case letters, digits, -, _ and ., and must start and end with a letter or digit", quote(b))
	case strings.HasPrefix(b, "goog") || strings.Contains(b, "google"):
		return fmt.Errorf("bucket name %s may not start with goog or contain google", quote(b))
	case net.ParseIP(b) != nil:
		return fmt.Errorf("bucket name %s may not be an IP address", quote(b))
	case strings.Contains(b, ".."):
		return fmt.Errorf("bucket name %s may not contain ..", quote(b))
	}
	for _, part := range strings.Split(b, ".") {
		if len(part) > 63 {
			return fmt.Errorf("bucket name %s has a part over 63 characters", quote(b))
		}
	}
	if !strings.Contains(b, ".") && len(b) > 63 {
		return fmt.Errorf("bucket name %s must be at most 63 characters", quote(b))
	}
	return nil
}

// ValidateExport checks an export request before anything is sent. Its
// error is a *FieldError naming the field at fault.
func ValidateExport(req ExportRequest) error {
	if err := ValidateProject(req.Project); err != nil {
		return err
	}
	if err := ValidateDatabase(req.Database); err != nil {
		return err
	}
	if req.Consistent && IsDefaultDatabase(req.Database) && !req.Firestore {
		return fieldErrorf("consistent", "a consistent export (one snapshot time) goes through the Firestore Admin API: the Datastore Admin API export of (default) has no snapshot time")
	}
	if err := ValidatePrefix(req.OutputURLPrefix); err != nil {
		return err
	}
	return ValidateFilter(req.Kinds, req.Namespaces)
}

// ValidateFilter checks an entity filter: no empty or reserved kinds, no
// reserved namespaces, at most MaxFilterCombinations kind × namespace pairs.
func ValidateFilter(kinds, namespaces []string) error {
	for _, k := range kinds {
		switch {
		case k == "":
			return fieldErrorf("kinds", "a kind may not be empty")
		case strings.HasPrefix(k, "__") && strings.HasSuffix(k, "__"):
			return fieldErrorf("kinds", "%s is a reserved kind and cannot be exported", quote(k))
		case len(k) > 1500:
			return fieldErrorf("kinds", "a kind may be at most 1500 bytes")
		case !utf8.ValidString(k) || strings.ContainsFunc(k, unicode.IsControl):
			return fieldErrorf("kinds", "%s has control characters or invalid UTF-8", quote(k))
		}
	}
	for _, ns := range namespaces {
		if strings.HasPrefix(ns, "__") && strings.HasSuffix(ns, "__") {
			return fieldErrorf("namespaces", "%s is a reserved namespace", quote(ns))
		}
		if !namespaceRE.MatchString(ns) {
			return fieldErrorf("namespaces", "%s is not a namespace: at most 100 of letters, digits, '.', '_' and '-'", quote(ns))
		}
	}
	// An empty list means all, which counts as one for the limit.
	if n := max(len(kinds), 1) * max(len(namespaces), 1); n > MaxFilterCombinations {
		return fieldErrorf("kinds × namespaces", "%d combinations; the Admin API takes at most %d", n, MaxFilterCombinations)
	}
	return nil
}
