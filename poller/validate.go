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

// ValidateProject checks a project ID against the grammar operation names use.
func ValidateProject(project string) error {
	if project == "" {
		return fmt.Errorf("project is empty")
	}
	if len(project) > 100 || !projectRE.MatchString(project) {
		return fmt.Errorf("project %q is not a valid project ID", project)
	}
	return nil
}

// ValidatePrefix checks an output URL prefix: gs:// and a valid bucket name,
// optionally followed by a path.
func ValidatePrefix(prefix string) error {
	rest, ok := strings.CutPrefix(prefix, "gs://")
	if !ok {
		return fmt.Errorf("output prefix %q must start with gs://", prefix)
	}
	bucket, path, _ := strings.Cut(rest, "/")
	if err := validateBucket(bucket); err != nil {
		return fmt.Errorf("output prefix %q: %w", prefix, err)
	}
	if strings.ContainsAny(path, "#?[]*") || strings.Contains("/"+path, "//") {
		return fmt.Errorf("output prefix %q: the path may not contain //, #, ?, [, ] or *", prefix)
	}
	if !utf8.ValidString(path) || strings.ContainsFunc(path, unicode.IsControl) {
		return fmt.Errorf("output prefix %q: the path may not contain control characters or invalid UTF-8", prefix)
	}
	return nil
}

// validateBucket follows Cloud Storage's bucket naming rules.
func validateBucket(b string) error {
	switch {
	case b == "":
		return fmt.Errorf("bucket name is empty")
	case len(b) < 3 || len(b) > 222:
		return fmt.Errorf("bucket name %q must be 3 to 222 characters", b)
	case !bucketRE.MatchString(b):
		return fmt.Errorf("bucket name %q may hold only lower-case letters, digits, -, _ and ., and must start and end with a letter or digit", b)
	case strings.HasPrefix(b, "goog") || strings.Contains(b, "google"):
		return fmt.Errorf("bucket name %q may not start with goog or contain google", b)
	case net.ParseIP(b) != nil:
		return fmt.Errorf("bucket name %q may not be an IP address", b)
	case strings.Contains(b, ".."):
		return fmt.Errorf("bucket name %q may not contain ..", b)
	}
	for _, part := range strings.Split(b, ".") {
		if len(part) > 63 {
			return fmt.Errorf("bucket name %q has a part over 63 characters", b)
		}
	}
	if !strings.Contains(b, ".") && len(b) > 63 {
		return fmt.Errorf("bucket name %q must be at most 63 characters", b)
	}
	return nil
}

// ValidateExport checks an export request before anything is sent. Each
// message names the field at fault as the HTTP body and the flags call it.
func ValidateExport(req ExportRequest) error {
	if err := ValidateProject(req.Project); err != nil {
		return fmt.Errorf("project: %w", err)
	}
	if err := ValidatePrefix(req.OutputURLPrefix); err != nil {
		return fmt.Errorf("outputUrlPrefix: %w", err)
	}
	return ValidateFilter(req.Kinds, req.Namespaces)
}

// ValidateFilter checks an entity filter: no empty or reserved kinds, no
// reserved namespaces, at most MaxFilterCombinations kind × namespace pairs.
func ValidateFilter(kinds, namespaces []string) error {
	for _, k := range kinds {
		switch {
		case k == "":
			return fmt.Errorf("kinds: a kind may not be empty")
		case strings.HasPrefix(k, "__") && strings.HasSuffix(k, "__"):
			return fmt.Errorf("kinds: %q is a reserved kind and cannot be exported", k)
		case len(k) > 1500:
			return fmt.Errorf("kinds: a kind may be at most 1500 bytes")
		case !utf8.ValidString(k) || strings.ContainsFunc(k, unicode.IsControl):
			return fmt.Errorf("kinds: %q has control characters or invalid UTF-8", k)
		}
	}
	for _, ns := range namespaces {
		if strings.HasPrefix(ns, "__") && strings.HasSuffix(ns, "__") {
			return fmt.Errorf("namespaces: %q is a reserved namespace", ns)
		}
		if !namespaceRE.MatchString(ns) {
			return fmt.Errorf("namespaces: %q is not a namespace: at most 100 of letters, digits, '.', '_' and '-'", ns)
		}
	}
	// An empty list means all, which counts as one for the limit.
	if n := max(len(kinds), 1) * max(len(namespaces), 1); n > MaxFilterCombinations {
		return fmt.Errorf("kinds × namespaces: %d combinations; the Admin API takes at most %d", n, MaxFilterCombinations)
	}
	return nil
}
