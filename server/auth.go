package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path"
	"strings"
	"time"

	"google.golang.org/api/idtoken"
)

// Platform is where the service runs. It decides which credentials can be
// trusted: a header that App Engine strips from outside requests proves
// something on App Engine and nothing anywhere else.
type Platform int

const (
	// Local is anywhere that is neither App Engine nor Cloud Run: a laptop,
	// a CI runner, a container on some host.
	Local Platform = iota
	// AppEngine is the App Engine standard environment (GAE_ENV=standard).
	AppEngine
	// CloudRun is a Cloud Run service (K_SERVICE is set).
	CloudRun
)

func (p Platform) String() string {
	switch p {
	case Local:
		return "local"
	case AppEngine:
		return "App Engine"
	case CloudRun:
		return "Cloud Run"
	}
	return fmt.Sprintf("Platform(%d)", int(p))
}

// DetectPlatform tells the platform from the variables the runtimes set:
// GAE_ENV=standard on App Engine standard, K_SERVICE on Cloud Run.
func DetectPlatform(getenv func(string) string) Platform {
	switch {
	case getenv("GAE_ENV") == "standard":
		return AppEngine
	case getenv("K_SERVICE") != "":
		return CloudRun
	}
	return Local
}

// Validator checks a Google-signed JWT's signature, expiry and audience. It
// is the subset of *idtoken.Validator that Authenticate calls; tests give it
// the real one with an HTTP client that serves their own keys.
type Validator interface {
	Validate(ctx context.Context, token, audience string) (*idtoken.Payload, error)
}

// AuthConfig is what Authenticate needs to decide who may call the service.
type AuthConfig struct {
	// Platform decides which credentials are trusted (see policy).
	Platform Platform
	// Audience is the aud that Google-signed ID tokens must carry
	// (DSEXPORT_AUDIENCE), e.g. the Cloud Run service URL. Without it no ID
	// token is accepted: idtoken skips the audience check for an empty one.
	Audience string
	// Invokers are the emails allowed to call with an ID token or an IAP JWT
	// (DSEXPORT_INVOKERS), compared case-insensitively. Blank entries are
	// ignored, so a plain strings.Split of the variable will do.
	Invokers []string
	// IAPAudience is the aud of IAP JWTs on App Engine
	// (DSEXPORT_IAP_AUDIENCE, "/projects/NUMBER/apps/PROJECT_ID"); empty
	// means IAP JWTs are not accepted.
	IAPAudience string
	// CloudRunIAM says the Cloud Run service is deployed with
	// --no-allow-unauthenticated (DSEXPORT_CLOUD_RUN_IAM=true). Cloud Run
	// then verifies the ID token's signature, audience and the caller's
	// run.invoker role itself, and hands the token to the container with its
	// signature replaced by SIGNATURE_REMOVED_BY_GOOGLE, so it can no longer
	// be verified here. With CloudRunIAM such a token's claims are still
	// checked (audience, issuer, expiry, email); without it the token is
	// refused, because on a service that allows unauthenticated calls anyone
	// could write one.
	CloudRunIAM bool
	// Validator verifies ID tokens and IAP JWTs: in production
	// idtoken.NewValidator(ctx).
	Validator Validator
	// Logger receives a warning for each refused request.
	Logger *slog.Logger
}

// routeClass groups routes that share one authentication rule.
type routeClass int

const (
	// routeManual is POST /export, the status page, /api/..., and any path
	// not named below: a person or a script calling by hand.
	routeManual routeClass = iota
	// routeCron is /cron/...: the scheduler's calls.
	routeCron
	// routeTasks is /tasks/...: the task queue's calls.
	routeTasks
	// routeLifecycle is /_ah/start and /_ah/stop: App Engine's own calls.
	routeLifecycle
	// routeHealth is /healthz.
	routeHealth
)

func (c routeClass) String() string {
	switch c {
	case routeManual:
		return "manual"
	case routeCron:
		return "cron"
	case routeTasks:
		return "tasks"
	case routeLifecycle:
		return "lifecycle"
	case routeHealth:
		return "health"
	}
	return fmt.Sprintf("routeClass(%d)", int(c))
}

// classify names the class of a request path. It looks at the cleaned path,
// so that "/cron/../export" is judged as the /export the mux would send it to,
// and any path it does not know is a manual call, which needs the most.
func classify(p string) routeClass {
	p = path.Clean("/" + p)
	switch {
	case strings.HasPrefix(p, "/cron/"):
		return routeCron
	case strings.HasPrefix(p, "/tasks/"):
		return routeTasks
	case p == "/_ah/start" || p == "/_ah/stop":
		return routeLifecycle
	case p == "/healthz":
		return routeHealth
	}
	return routeManual
}

// means is a set of credentials a route accepts.
type means uint8

const (
	// viaCronHeader is X-Appengine-Cron: true, which App Engine strips from
	// outside requests and sets only on its cron service's calls.
	viaCronHeader means = 1 << iota
	// viaQueueHeader is X-AppEngine-QueueName, which App Engine strips from
	// outside requests and sets only on its task queues' calls.
	viaQueueHeader
	// viaPlatform is no check at all: the route is App Engine's own.
	viaPlatform
	// viaIDToken is Authorization: Bearer <Google-signed ID token> for
	// Audience, from one of Invokers.
	viaIDToken
	// viaIAP is X-Goog-IAP-JWT-Assertion for IAPAudience, from one of Invokers.
	viaIAP
	// viaLoopback is a client on this machine.
	viaLoopback
)

// policy is the whole authentication policy in one table: for each class of
// route, what each platform accepts. A platform or class missing from it
// accepts nothing. It is a function so that nothing can change it at run time.
//
//   - Locally only loopback clients are served, whatever they send: there is
//     no front end to vouch for a header, and no audience to check tokens
//     against.
//   - On App Engine the cron and queue headers are trusted on their own
//     routes, because App Engine strips them from outside requests; an ID
//     token or an IAP JWT is accepted too, so that a person can trigger a
//     cron or a task by hand. /_ah/start and /_ah/stop are App Engine's
//     lifecycle calls, which outside requests cannot reach; they only answer
//     204.
//   - On Cloud Run nothing is stripped, so every route, Cloud Scheduler's and
//     Cloud Tasks' included, needs an ID token.
//   - /healthz does no work and reveals nothing, but nothing may be callable
//     anonymously, so it needs what a manual call needs. Cloud Run's default
//     startup probe is TCP and App Engine standard has no HTTP health check,
//     so neither platform is hindered by this.
func policy() map[routeClass]map[Platform]means {
	return map[routeClass]map[Platform]means{
		routeCron: {
			Local:     viaLoopback,
			AppEngine: viaCronHeader | viaIDToken | viaIAP,
			CloudRun:  viaIDToken,
		},
		routeTasks: {
			Local:     viaLoopback,
			AppEngine: viaQueueHeader | viaIDToken | viaIAP,
			CloudRun:  viaIDToken,
		},
		routeLifecycle: {
			Local:     viaLoopback,
			AppEngine: viaPlatform,
			CloudRun:  viaIDToken,
		},
		routeHealth: {
			Local:     viaLoopback,
			AppEngine: viaIDToken | viaIAP,
			CloudRun:  viaIDToken,
		},
		routeManual: {
			Local:     viaLoopback,
			AppEngine: viaIDToken | viaIAP,
			CloudRun:  viaIDToken,
		},
	}
}

// The headers and claims the checks read.
const (
	cronHeader      = "X-Appengine-Cron"
	queueHeader     = "X-AppEngine-QueueName"
	iapHeader       = "X-Goog-IAP-JWT-Assertion"
	iapIssuer       = "https://cloud.google.com/iap"
	removedByGoogle = "SIGNATURE_REMOVED_BY_GOOGLE"
	// serverlessHeader is where a caller may put the token for Cloud Run's
	// IAM check, leaving Authorization to the application.
	serverlessHeader = "X-Serverless-Authorization"
)

// Check reports a configuration with which the service could not
// authenticate anyone it should, naming the variable to set, so that serve
// stops at start-up instead of refusing every request: CheckSettings, and
// an ID token validator on the cloud. Locally nothing is needed.
func (c AuthConfig) Check() error {
	err := c.CheckSettings()
	if c.Platform != Local && c.Validator == nil {
		err = errors.Join(err, fmt.Errorf("no ID token validator: requests on %v cannot be authenticated", c.Platform))
	}
	return err
}

// CheckSettings is Check of the configured settings alone (audiences,
// invokers), before the validator is built: a mistake there is the
// operator's, and the configuration reports it as such.
func (c AuthConfig) CheckSettings() error {
	if c.Platform == Local {
		return nil
	}
	if c.Platform != AppEngine && c.Platform != CloudRun {
		return fmt.Errorf("unknown platform %v", c.Platform)
	}
	var errs []error
	switch {
	case c.Platform == CloudRun && c.Audience == "":
		errs = append(errs, errors.New("DSEXPORT_AUDIENCE is not set: Cloud Run requests cannot be authenticated"))
	case c.Platform == AppEngine && c.Audience == "" && c.IAPAudience == "":
		errs = append(errs, errors.New("DSEXPORT_AUDIENCE is not set (nor DSEXPORT_IAP_AUDIENCE): manual requests on App Engine cannot be authenticated"))
	}
	n := 0
	for _, e := range c.Invokers {
		e = strings.TrimSpace(e)
		switch {
		case e == "":
			continue
		case strings.Contains(e, ":"):
			errs = append(errs, fmt.Errorf("DSEXPORT_INVOKERS entry %q: write the bare email, without an IAM prefix such as serviceAccount:", e))
		case !strings.Contains(e, "@"):
			errs = append(errs, fmt.Errorf("DSEXPORT_INVOKERS entry %q is not an email", e))
		}
		n++
	}
	if n == 0 {
		errs = append(errs, fmt.Errorf("DSEXPORT_INVOKERS is not set: no caller may use the service on %v", c.Platform))
	}
	if c.IAPAudience != "" && !validIAPAudience(c.IAPAudience) {
		errs = append(errs, fmt.Errorf("DSEXPORT_IAP_AUDIENCE %q is not of the form /projects/NUMBER/apps/PROJECT_ID", c.IAPAudience))
	}
	return errors.Join(errs...)
}

// validIAPAudience reports whether aud looks like App Engine's IAP audience,
// "/projects/NUMBER/apps/PROJECT_ID".
func validIAPAudience(aud string) bool {
	parts := strings.Split(aud, "/")
	if len(parts) != 5 || parts[0] != "" || parts[1] != "projects" || parts[3] != "apps" || parts[4] == "" || parts[2] == "" {
		return false
	}
	for _, r := range parts[2] {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// callerKey is the context key of the caller's identity.
type callerKey struct{}

// CallerFrom returns who made the request, as Authenticate established it:
// an email, "appengine-cron", "cloudtasks:QUEUE", "appengine" for App
// Engine's lifecycle calls, or "loopback"; empty outside Authenticate.
func CallerFrom(ctx context.Context) string {
	s, _ := ctx.Value(callerKey{}).(string)
	return s
}

// authenticator is the middleware Authenticate returns.
type authenticator struct {
	cfg      AuthConfig
	log      *slog.Logger
	invokers map[string]bool
	policy   map[routeClass]map[Platform]means
	next     http.Handler
}

// Authenticate returns next behind dsexport's one authentication middleware,
// for every route (see policy). A refused request gets 401 (no usable
// credentials) or 403 (a known caller who is not allowed) with a one-line
// reason as {"error": "..."}, is logged at WARN, and never reaches next. An
// accepted one reaches next with its caller in the context (CallerFrom).
func Authenticate(cfg AuthConfig, next http.Handler) http.Handler {
	a := &authenticator{cfg: cfg, log: cfg.Logger, invokers: map[string]bool{}, policy: policy(), next: next}
	if a.log == nil {
		a.log = slog.Default()
	}
	for _, e := range cfg.Invokers {
		if e = strings.ToLower(strings.TrimSpace(e)); e != "" {
			a.invokers[e] = true
		}
	}
	return a
}

// refusal is why a request is not served, and the status that says so.
type refusal struct {
	status int
	reason string
}

func unauthorized(format string, args ...any) *refusal {
	return &refusal{status: http.StatusUnauthorized, reason: fmt.Sprintf(format, args...)}
}

func forbidden(format string, args ...any) *refusal {
	return &refusal{status: http.StatusForbidden, reason: fmt.Sprintf(format, args...)}
}

func (a *authenticator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	class := classify(r.URL.Path)
	caller, ref := a.authenticate(r, class)
	if ref != nil {
		// The reason never holds a token: only what was wrong with it.
		a.log.LogAttrs(r.Context(), slog.LevelWarn, "request refused",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.String("route", class.String()), slog.Int("status", ref.status),
			slog.String("reason", ref.reason), slog.String("remote", r.RemoteAddr))
		if ref.status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="dsexport"`)
		}
		writeJSON(w, ref.status, map[string]string{"error": ref.reason})
		return
	}
	a.next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, caller)))
}

// authenticate returns the caller of r, or why r is refused. Each credential
// the route accepts is tried in turn and the first good one wins: behind IAP
// a request may carry an Authorization header meant for IAP beside a good IAP
// JWT. When none is good, a 403 (a caller we know, not allowed) is reported
// before a 401, and otherwise the first failure.
func (a *authenticator) authenticate(r *http.Request, class routeClass) (string, *refusal) {
	accepted := a.policy[class][a.cfg.Platform]
	if accepted&viaLoopback != 0 {
		if isLoopback(r.RemoteAddr) {
			return "loopback", nil
		}
		return "", forbidden("only clients on this machine may call dsexport when it runs locally (not on App Engine or Cloud Run)")
	}
	if accepted&viaPlatform != 0 {
		return "appengine", nil
	}
	if accepted&viaCronHeader != 0 && r.Header.Get(cronHeader) == "true" {
		return "appengine-cron", nil
	}
	if accepted&viaQueueHeader != 0 {
		if q := r.Header.Get(queueHeader); q != "" {
			return "cloudtasks:" + q, nil
		}
	}
	var failed *refusal
	fail := func(ref *refusal) {
		if failed == nil || (ref.status == http.StatusForbidden && failed.status != http.StatusForbidden) {
			failed = ref
		}
	}
	if jwt := r.Header.Get(iapHeader); accepted&viaIAP != 0 && jwt != "" {
		caller, ref := a.iap(r.Context(), jwt)
		if ref == nil {
			return caller, nil
		}
		fail(ref)
	}
	auth := r.Header.Values("Authorization")
	if xs := r.Header.Values(serverlessHeader); a.cfg.Platform == CloudRun && len(xs) > 0 {
		// Cloud Run checks this header instead of Authorization when it is
		// sent, and passes Authorization through as the caller wrote it:
		// only this one carries an identity Cloud Run verified.
		auth = xs
	}
	if accepted&viaIDToken != 0 && len(auth) > 0 {
		caller, ref := a.idToken(r.Context(), auth)
		if ref == nil {
			return caller, nil
		}
		fail(ref)
	}
	if failed != nil {
		return "", failed
	}
	return "", a.noCredentials(r, accepted)
}

// noCredentials says what the route would have accepted, and why an App
// Engine header the request carries does not count here: a caller who sent
// one off App Engine, or to the wrong route, deserves to know it was ignored.
func (a *authenticator) noCredentials(r *http.Request, accepted means) *refusal {
	var want []string
	if accepted&viaCronHeader != 0 {
		want = append(want, "App Engine cron's "+cronHeader)
	}
	if accepted&viaQueueHeader != 0 {
		want = append(want, "App Engine task queues' "+queueHeader)
	}
	if accepted&viaIAP != 0 && a.cfg.IAPAudience != "" {
		want = append(want, "an IAP JWT")
	}
	if accepted&viaIDToken != 0 {
		want = append(want, "Authorization: Bearer <Google-signed ID token>")
	}
	if len(want) == 0 {
		return forbidden("this route accepts no caller on %v", a.cfg.Platform)
	}
	reason := "no credentials: want " + strings.Join(want, " or ")
	for _, h := range []struct {
		name string
		via  means
	}{{cronHeader, viaCronHeader}, {queueHeader, viaQueueHeader}, {iapHeader, viaIAP}} {
		if r.Header.Get(h.name) == "" || accepted&h.via != 0 {
			continue
		}
		if a.cfg.Platform == AppEngine {
			reason += fmt.Sprintf("; %s is not accepted on this route", h.name)
		} else {
			reason += fmt.Sprintf("; %s is ignored: it is only trusted on App Engine", h.name)
		}
	}
	return unauthorized("%s", reason)
}

// idToken checks an Authorization header holding a Google-signed ID token:
// signature, expiry and audience through the Validator, then the issuer,
// which idtoken does not check, then the email.
func (a *authenticator) idToken(ctx context.Context, header []string) (string, *refusal) {
	if len(header) > 1 {
		return "", unauthorized("more than one Authorization header")
	}
	scheme, token, ok := strings.Cut(header[0], " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", unauthorized("the Authorization header is not Bearer <Google-signed ID token>")
	}
	if a.cfg.Audience == "" {
		// idtoken would accept any audience: refuse rather than do that.
		return "", unauthorized("ID tokens cannot be checked: DSEXPORT_AUDIENCE is not set")
	}
	var payload *idtoken.Payload
	if a.cfg.Platform == CloudRun && strings.HasSuffix(token, "."+removedByGoogle) {
		if !a.cfg.CloudRunIAM {
			return "", unauthorized("the ID token's signature was removed by Cloud Run's IAM check; set DSEXPORT_CLOUD_RUN_IAM=true if the service is deployed with --no-allow-unauthenticated")
		}
		var ref *refusal
		if payload, ref = a.checkedByCloudRun(token); ref != nil {
			return "", ref
		}
	} else {
		// Google signs ID tokens with RS256. Holding the header to it keeps
		// IAP's ES256 JWTs, and idtoken's unguarded ES256 path, out of here.
		alg, _, err := jwtHeader(token)
		if err != nil {
			return "", unauthorized("malformed ID token: %v", err)
		}
		if alg != "RS256" {
			return "", unauthorized("ID token signed with %q, not RS256", alg)
		}
		if a.cfg.Validator == nil {
			return "", unauthorized("ID tokens cannot be checked: no validator is configured")
		}
		payload, err = a.cfg.Validator.Validate(ctx, token, a.cfg.Audience)
		if err != nil {
			return "", unauthorized("%s", invalidReason("ID token", "DSEXPORT_AUDIENCE", token, a.cfg.Audience, err))
		}
	}
	if payload.Issuer != "accounts.google.com" && payload.Issuer != "https://accounts.google.com" {
		return "", unauthorized("ID token issuer %q is not Google's (https://accounts.google.com)", payload.Issuer)
	}
	return a.invoker(payload, true)
}

// checkedByCloudRun reads a token whose signature Cloud Run verified and
// removed, and checks what Cloud Run may not have: that it is for this
// service's Audience and still unexpired. The issuer and email are checked
// by the caller as for any ID token.
func (a *authenticator) checkedByCloudRun(token string) (*idtoken.Payload, *refusal) {
	payload, err := idtoken.ParsePayload(token)
	if err != nil {
		return nil, unauthorized("malformed ID token: %v", err)
	}
	if payload.Audience != a.cfg.Audience {
		return nil, unauthorized("ID token audience %q is not DSEXPORT_AUDIENCE", payload.Audience)
	}
	if time.Now().Unix() > payload.Expires {
		return nil, unauthorized("ID token expired at %s", time.Unix(payload.Expires, 0).UTC().Format(time.RFC3339))
	}
	return payload, nil
}

// iap checks an IAP JWT: signature, expiry and audience through the
// Validator, then the issuer, then the email. IAP JWTs carry no
// email_verified: IAP itself signed the user in.
func (a *authenticator) iap(ctx context.Context, jwt string) (string, *refusal) {
	if a.cfg.IAPAudience == "" {
		return "", unauthorized("IAP JWTs are not accepted: DSEXPORT_IAP_AUDIENCE is not set")
	}
	// IAP signs with ES256. idtoken slices an ES256 signature without
	// checking its length, so a short one is refused here, not panicked on.
	alg, sig, err := jwtHeader(jwt)
	if err != nil {
		return "", unauthorized("malformed IAP JWT: %v", err)
	}
	if alg != "ES256" || len(sig) != 64 {
		return "", unauthorized("malformed IAP JWT: want an ES256 signature of 64 bytes, got %q with %d bytes", alg, len(sig))
	}
	if a.cfg.Validator == nil {
		return "", unauthorized("IAP JWTs cannot be checked: no validator is configured")
	}
	payload, err := a.cfg.Validator.Validate(ctx, jwt, a.cfg.IAPAudience)
	if err != nil {
		return "", unauthorized("%s", invalidReason("IAP JWT", "DSEXPORT_IAP_AUDIENCE", jwt, a.cfg.IAPAudience, err))
	}
	if payload.Issuer != iapIssuer {
		return "", unauthorized("IAP JWT issuer %q is not %s", payload.Issuer, iapIssuer)
	}
	return a.invoker(payload, false)
}

// invoker returns the email of a verified token if it is one of Invokers.
func (a *authenticator) invoker(p *idtoken.Payload, needVerified bool) (string, *refusal) {
	email, _ := p.Claims["email"].(string)
	if email == "" {
		return "", forbidden("the token names no email (a service account's ID token needs one: gcloud auth print-identity-token --include-email)")
	}
	if needVerified {
		// Google sends a boolean; a string "true" is taken too, as some
		// older Google tokens carried one.
		if v := p.Claims["email_verified"]; v != true && v != "true" {
			return "", forbidden("email %s is not verified", email)
		}
	}
	if len(a.invokers) == 0 {
		return "", forbidden("no caller is allowed: DSEXPORT_INVOKERS is not set")
	}
	if !a.invokers[strings.ToLower(email)] {
		return "", forbidden("%s is not in DSEXPORT_INVOKERS", email)
	}
	return email, nil
}

// invalidReason explains a token the Validator refused. idtoken's audience
// error does not say which audience the token had, which is what an operator
// needs to fix a scheduler job, so that case is spelled out.
func invalidReason(what, variable, token, audience string, err error) string {
	if p, perr := idtoken.ParsePayload(token); perr == nil && p.Audience != audience {
		return fmt.Sprintf("%s audience %q is not %s", what, p.Audience, variable)
	}
	return fmt.Sprintf("%s not valid: %v", what, err)
}

// jwtHeader decodes a compact JWT's header algorithm and its signature, which
// the checks need before the token is handed to the Validator.
func jwtHeader(token string) (alg string, sig []byte, err error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", nil, fmt.Errorf("%d segments, want 3", len(parts))
	}
	h, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return "", nil, errors.New("header is not base64url")
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(h, &header); err != nil {
		return "", nil, errors.New("header is not a JSON object")
	}
	sig, err = base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return "", nil, errors.New("signature is not base64url")
	}
	return header.Alg, sig, nil
}

// isLoopback reports whether the connection's peer is on this machine. Only
// the connection's own address counts: X-Forwarded-For is whatever the
// client wrote.
func isLoopback(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return false
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	return addr.Unmap().IsLoopback()
}
