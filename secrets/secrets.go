// Package secrets reads secrets such as the Slack token from Secret Manager,
// so that they need not sit in app.yaml or a Cloud Run service's environment.
package secrets

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"regexp"
	"strings"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// shape is the form a secret version name must have, as error messages show it.
const shape = "projects/PROJECT/secrets/SECRET/versions/VERSION (VERSION a number or \"latest\")"

// versionRE matches a secret version name: a project id (optionally
// domain-scoped, "example.com:my-project") or number, a secret id as Secret
// Manager allows them, and a version number or "latest". Regional secrets
// (projects/P/locations/L/...) are not accepted, because they are served by
// regional endpoints this package does not dial.
var versionRE = regexp.MustCompile(`^projects/` +
	`(?:[0-9]{1,20}|(?:[a-z0-9][a-z0-9.-]*:)?[a-z][a-z0-9-]{4,28}[a-z0-9])` +
	`/secrets/[A-Za-z0-9_-]{1,255}` +
	`/versions/(?:[1-9][0-9]{0,19}|latest)$`)

// Source reads secret versions from Secret Manager.
type Source struct {
	client *secretmanager.Client
}

// New connects to Secret Manager. An empty endpoint means Google's, with
// Application Default Credentials (the service account of the App Engine app
// or Cloud Run service). A non-empty endpoint is a host:port dialled without
// TLS or credentials, which is what a test's fake server needs; opts are
// applied after these defaults and may override them.
func New(ctx context.Context, endpoint string, opts ...option.ClientOption) (*Source, error) {
	var all []option.ClientOption
	if endpoint != "" {
		all = append(all,
			option.WithEndpoint(endpoint),
			option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
		)
	}
	all = append(all, opts...)
	client, err := secretmanager.NewClient(ctx, all...)
	if err != nil {
		if endpoint != "" {
			return nil, fmt.Errorf("connect to Secret Manager at %s: %w", endpoint, err)
		}
		return nil, fmt.Errorf("connect to Secret Manager: %w", err)
	}
	return &Source{client: client}, nil
}

// Close closes the connection to Secret Manager.
func (s *Source) Close() error { return s.client.Close() }

// Get returns the payload of the secret version named version, which must
// have the form projects/P/secrets/S/versions/V, V a number or "latest". One
// trailing newline is removed, because secrets are commonly created with
// `echo token | gcloud secrets create`, and an empty payload is an error,
// because an empty token would only fail later and less clearly. Errors name
// the version but never contain the payload.
func (s *Source) Get(ctx context.Context, version string) (string, error) {
	if err := CheckVersion(version); err != nil {
		return "", err
	}
	resp, err := s.client.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: version})
	if err != nil {
		return "", fmt.Errorf("read secret %s: %s%w", version, hint(err), err)
	}
	payload := resp.GetPayload()
	data := payload.GetData()
	// The checksum guards against a payload corrupted on the way; it is
	// checked only when present because older servers and fakes omit it.
	if payload.DataCrc32C != nil {
		got := int64(crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)))
		if want := payload.GetDataCrc32C(); got != want {
			return "", fmt.Errorf("read secret %s: payload is corrupt: its CRC32C checksum is %d, Secret Manager sent %d", version, got, want)
		}
	}
	value := string(data)
	if v, ok := strings.CutSuffix(value, "\n"); ok {
		value = strings.TrimSuffix(v, "\r")
	}
	if value == "" {
		return "", fmt.Errorf("read secret %s: the secret version is empty", version)
	}
	return value, nil
}

// CheckVersion reports whether version is a secret version name Get accepts,
// so that a configuration mistake is caught at start-up rather than at the
// first read. A value that does not start with "projects/" is not quoted in the error,
// because it may be a token pasted into the wrong variable.
func CheckVersion(version string) error {
	if versionRE.MatchString(version) {
		return nil
	}
	if !strings.HasPrefix(version, "projects/") {
		return fmt.Errorf("secret version name (%d characters, not starting with \"projects/\") is not of the form %s", len(version), shape)
	}
	return fmt.Errorf("secret version name %q is not of the form %s", version, shape)
}

// hint turns the Secret Manager errors an operator is most likely to meet
// into a sentence saying what to do about them; it returns "" for the rest.
func hint(err error) string {
	var code codes.Code
	if st, ok := status.FromError(err); ok {
		code = st.Code()
	}
	// A context error is reported as such rather than as a gRPC code, so
	// that a deadline set by the caller is recognisable.
	switch {
	case errors.Is(err, context.DeadlineExceeded) || code == codes.DeadlineExceeded:
		return "Secret Manager did not answer in time: "
	case code == codes.NotFound:
		return "no such secret or version in Secret Manager (check the project, secret name and version number): "
	case code == codes.PermissionDenied:
		return "permission denied: the service account needs roles/secretmanager.secretAccessor on it (and the Secret Manager API must be enabled in the project): "
	case code == codes.FailedPrecondition:
		return "the version is disabled or destroyed: enable it or name another version: "
	case code == codes.Unauthenticated:
		return "no valid credentials (Application Default Credentials): "
	}
	return ""
}
