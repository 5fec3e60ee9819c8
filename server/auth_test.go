package server

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/api/idtoken"
)

const (
	testAudience    = "https://dsexport-abc123-uc.a.run.app"
	testIAPAudience = "/projects/123456789/apps/dsexport-prod"
	schedulerEmail  = "scheduler@dsexport-prod.iam.gserviceaccount.com"
	operatorEmail   = "operator@example.com"
	strangerEmail   = "stranger@example.com"
)

// googleKeys plays Google's key endpoints for the real idtoken.Validator: it
// signs ID tokens with an RSA key and IAP JWTs with a P-256 key, and serves
// both public keys as JWKS from an httptest server that the validator's HTTP
// client reaches in place of googleapis.com and gstatic.com.
type googleKeys struct {
	rsa       *rsa.PrivateKey
	otherRSA  *rsa.PrivateKey // not published: its signatures must fail
	ec        *ecdsa.PrivateKey
	fetches   atomic.Int32
	validator *idtoken.Validator
}

func newGoogleKeys(t *testing.T) *googleKeys {
	t.Helper()
	k := &googleKeys{}
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if k.otherRSA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	point, err := k.ec.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	// The formats of https://www.googleapis.com/oauth2/v3/certs and
	// https://www.gstatic.com/iap/verify/public_key-jwk.
	certs := map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "alg": "RS256", "use": "sig", "kid": "rsa-1",
		"n": b64(k.rsa.N.Bytes()), "e": b64(big.NewInt(int64(k.rsa.E)).Bytes()),
	}}}
	iapKeys := map[string]any{"keys": []map[string]string{{
		"kty": "EC", "alg": "ES256", "use": "sig", "crv": "P-256", "kid": "iap-1",
		"x": b64(point[1:33]), "y": b64(point[33:]),
	}}}
	mux := http.NewServeMux()
	for path, body := range map[string]any{"/oauth2/v3/certs": certs, "/iap/verify/public_key-jwk": iapKeys} {
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
			k.fetches.Add(1)
			w.Header().Set("Cache-Control", "public, max-age=3600")
			writeJSON(w, http.StatusOK, body)
		})
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	client := &http.Client{Transport: googleRedirect{
		to: map[string]string{
			"https://www.googleapis.com/oauth2/v3/certs":        srv.URL + "/oauth2/v3/certs",
			"https://www.gstatic.com/iap/verify/public_key-jwk": srv.URL + "/iap/verify/public_key-jwk",
		},
		base: srv.Client().Transport,
	}}
	if k.validator, err = idtoken.NewValidator(context.Background(), idtoken.WithHTTPClient(client)); err != nil {
		t.Fatal(err)
	}
	return k
}

// googleRedirect sends requests for Google's key URLs to the test server and
// fails any other, so a test can never reach the real Google.
type googleRedirect struct {
	to   map[string]string
	base http.RoundTripper
}

func (g googleRedirect) RoundTrip(req *http.Request) (*http.Response, error) {
	target, ok := g.to[req.URL.String()]
	if !ok {
		return nil, fmt.Errorf("test transport: unexpected request for %s", req.URL)
	}
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	req = req.Clone(req.Context())
	req.URL, req.Host = u, u.Host
	return g.base.RoundTrip(req)
}

// idToken returns an RS256 JWT signed with the published RSA key, as Google
// signs ID tokens.
func (k *googleKeys) idToken(t *testing.T, claims map[string]any) string {
	return k.rs256(t, k.rsa, claims)
}

func (k *googleKeys) rs256(t *testing.T, key *rsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	return signJWT(t, map[string]any{"alg": "RS256", "kid": "rsa-1", "typ": "JWT"}, claims, func(digest []byte) []byte {
		sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	})
}

// iapJWT returns an ES256 JWT signed with the published P-256 key, as IAP
// signs its assertions: r and s as 32 bytes each.
func (k *googleKeys) iapJWT(t *testing.T, claims map[string]any) string {
	t.Helper()
	return signJWT(t, map[string]any{"alg": "ES256", "kid": "iap-1", "typ": "JWT"}, claims, func(digest []byte) []byte {
		r, s, err := ecdsa.Sign(rand.Reader, k.ec, digest)
		if err != nil {
			t.Fatal(err)
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return sig
	})
}

// signJWT builds header.payload.signature by hand, base64url without padding.
func signJWT(t *testing.T, header, claims map[string]any, sign func(digest []byte) []byte) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signed := enc(header) + "." + enc(claims)
	digest := sha256.Sum256([]byte(signed))
	return signed + "." + base64.RawURLEncoding.EncodeToString(sign(digest[:]))
}

// stripped is token as Cloud Run hands it over after its IAM check.
func stripped(token string) string {
	return token[:strings.LastIndex(token, ".")+1] + removedByGoogle
}

// idClaims are the claims of a good ID token from the scheduler's service
// account; iapClaims those of a good IAP JWT for the operator.
func idClaims() map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": "https://accounts.google.com", "aud": testAudience, "azp": "1234567890",
		"sub": "1234567890", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"email": schedulerEmail, "email_verified": true,
	}
}

func iapClaims() map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": iapIssuer, "aud": testIAPAudience, "sub": "accounts.google.com:42",
		"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
		"email": operatorEmail, "hd": "example.com",
	}
}

// with returns a copy of claims with key set to v, or removed when v is nil.
func with(claims map[string]any, key string, v any) map[string]any {
	c := maps.Clone(claims)
	if v == nil {
		delete(c, key)
	} else {
		c[key] = v
	}
	return c
}

// authRoutes returns every route the service has or is planned to have.
func authRoutes() []struct{ method, path string } {
	return []struct{ method, path string }{
		{"GET", "/cron/export"},
		{"GET", "/cron/sweep"},
		{"POST", "/export"},
		{"POST", "/tasks/poll"},
		{"GET", "/_ah/start"},
		{"GET", "/_ah/stop"},
		{"GET", "/healthz"},
		{"GET", "/"},
		{"GET", "/api/operations"},
		{"GET", "/api/targets"},
		{"GET", "/api/doctor"},
		{"GET", "/targets/shop"},
	}
}

// authSetups returns the platforms under test, Cloud Run both ways.
func authSetups() []struct {
	name string
	cfg  AuthConfig
} {
	return []struct {
		name string
		cfg  AuthConfig
	}{
		{"local", AuthConfig{Platform: Local}},
		{"App Engine", AuthConfig{Platform: AppEngine, Audience: testAudience, IAPAudience: testIAPAudience}},
		{"Cloud Run", AuthConfig{Platform: CloudRun, Audience: testAudience}},
		{"Cloud Run IAM", AuthConfig{Platform: CloudRun, Audience: testAudience, CloudRunIAM: true}},
	}
}

// recorder is the next handler: it answers 204 and records that it ran and
// for whom.
type recorder struct {
	called bool
	caller string
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec.called, rec.caller = true, CallerFrom(r.Context())
	w.WriteHeader(http.StatusNoContent)
}

// The statuses the tables expect: served by next, or refused.
const (
	served = http.StatusNoContent
	unauth = http.StatusUnauthorized
	denied = http.StatusForbidden
)

func TestAuthenticateEveryRoute(t *testing.T) {
	keys := newGoogleKeys(t)
	bearer := func(token string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
	}
	header := func(name, value string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set(name, value) }
	}
	good := keys.idToken(t, idClaims())
	goodIAP := keys.iapJWT(t, iapClaims())
	iapShortSig := goodIAP[:strings.LastIndex(goodIAP, ".")+1] + base64.RawURLEncoding.EncodeToString([]byte("short"))

	// want gives the status per setup, optionally per setup and route class
	// ("App Engine cron"); an absent "Cloud Run IAM" is as "Cloud Run".
	// Two rules hold for every case and are applied by the loop: locally a
	// client that is not on loopback (all of them here) gets 403, and App
	// Engine's /_ah/start and /_ah/stop are served.
	cases := []struct {
		name   string
		set    func(*http.Request)
		token  string // a credential the log must not contain
		want   map[string]int
		caller string // the identity next sees, when served
	}{{
		name: "no credentials",
		set:  func(*http.Request) {},
		want: map[string]int{"App Engine": unauth, "Cloud Run": unauth},
	}, {
		name:   "X-Appengine-Cron: true",
		set:    header(cronHeader, "true"),
		want:   map[string]int{"App Engine": unauth, "App Engine cron": served, "Cloud Run": unauth},
		caller: "appengine-cron",
	}, {
		name: "X-Appengine-Cron: false",
		set:  header(cronHeader, "false"),
		want: map[string]int{"App Engine": unauth, "Cloud Run": unauth},
	}, {
		name:   "X-AppEngine-QueueName: poll",
		set:    header(queueHeader, "poll"),
		want:   map[string]int{"App Engine": unauth, "App Engine tasks": served, "Cloud Run": unauth},
		caller: "cloudtasks:poll",
	}, {
		name:  "malformed token",
		set:   bearer("not-a-jwt"),
		token: "not-a-jwt",
		want:  map[string]int{"App Engine": unauth, "Cloud Run": unauth},
	}, {
		name: "Basic credentials",
		set:  func(r *http.Request) { r.SetBasicAuth("admin", "hunter2") },
		want: map[string]int{"App Engine": unauth, "Cloud Run": unauth},
	}, {
		name:  "expired token",
		token: keys.idToken(t, with(idClaims(), "exp", time.Now().Add(-time.Minute).Unix())),
		want:  map[string]int{"App Engine": unauth, "Cloud Run": unauth},
	}, {
		name:  "token for another audience",
		token: keys.idToken(t, with(idClaims(), "aud", "https://other-service.a.run.app")),
		want:  map[string]int{"App Engine": unauth, "Cloud Run": unauth},
	}, {
		name:  "token from another issuer",
		token: keys.idToken(t, with(idClaims(), "iss", "https://issuer.example.com")),
		want:  map[string]int{"App Engine": unauth, "Cloud Run": unauth},
	}, {
		name:  "token signed by an unpublished key",
		token: keys.rs256(t, keys.otherRSA, idClaims()),
		want:  map[string]int{"App Engine": unauth, "Cloud Run": unauth},
	}, {
		name:  "token with unverified email",
		token: keys.idToken(t, with(idClaims(), "email_verified", false)),
		want:  map[string]int{"App Engine": denied, "Cloud Run": denied},
	}, {
		name:  "token without email",
		token: keys.idToken(t, with(with(idClaims(), "email", nil), "email_verified", nil)),
		want:  map[string]int{"App Engine": denied, "Cloud Run": denied},
	}, {
		name:  "token with unlisted email",
		token: keys.idToken(t, with(idClaims(), "email", strangerEmail)),
		want:  map[string]int{"App Engine": denied, "Cloud Run": denied},
	}, {
		name:   "valid token",
		token:  good,
		want:   map[string]int{"App Engine": served, "Cloud Run": served},
		caller: schedulerEmail,
	}, {
		name:   "valid token, issuer without https",
		token:  keys.idToken(t, with(idClaims(), "iss", "accounts.google.com")),
		want:   map[string]int{"App Engine": served, "Cloud Run": served},
		caller: schedulerEmail,
	}, {
		name:   "valid token, email in capitals",
		token:  keys.idToken(t, with(idClaims(), "email", strings.ToUpper(schedulerEmail))),
		want:   map[string]int{"App Engine": served, "Cloud Run": served},
		caller: strings.ToUpper(schedulerEmail),
	}, {
		name:  "valid IAP JWT",
		set:   header(iapHeader, goodIAP),
		token: goodIAP,
		// Off App Engine nothing vouches that IAP is in front.
		want:   map[string]int{"App Engine": served, "Cloud Run": unauth},
		caller: operatorEmail,
	}, {
		name:  "IAP JWT for another audience",
		set:   header(iapHeader, keys.iapJWT(t, with(iapClaims(), "aud", "/projects/1/apps/other"))),
		token: "eyJ", // every JWT starts so; the log must hold none
		want:  map[string]int{"App Engine": unauth, "Cloud Run": unauth},
	}, {
		name: "IAP JWT from another issuer",
		set:  header(iapHeader, keys.iapJWT(t, with(iapClaims(), "iss", "https://accounts.google.com"))),
		want: map[string]int{"App Engine": unauth, "Cloud Run": unauth},
	}, {
		name: "IAP JWT with unlisted email",
		set:  header(iapHeader, keys.iapJWT(t, with(iapClaims(), "email", strangerEmail))),
		want: map[string]int{"App Engine": denied, "Cloud Run": unauth},
	}, {
		name: "IAP JWT with a short signature",
		set:  header(iapHeader, iapShortSig),
		want: map[string]int{"App Engine": unauth, "Cloud Run": unauth},
	}, {
		name:  "IAP JWT as a bearer token",
		token: keys.iapJWT(t, with(iapClaims(), "aud", testAudience)),
		want:  map[string]int{"App Engine": unauth, "Cloud Run": unauth},
	}, {
		name: "ID token in the IAP header",
		set:  header(iapHeader, keys.idToken(t, with(idClaims(), "aud", testIAPAudience))),
		want: map[string]int{"App Engine": unauth, "Cloud Run": unauth},
	}, {
		name:   "valid token whose signature Cloud Run removed",
		token:  stripped(good),
		want:   map[string]int{"App Engine": unauth, "Cloud Run": unauth, "Cloud Run IAM": served},
		caller: schedulerEmail,
	}, {
		name:  "removed signature, another audience",
		token: stripped(keys.idToken(t, with(idClaims(), "aud", "https://other-service.a.run.app"))),
		want:  map[string]int{"App Engine": unauth, "Cloud Run": unauth},
	}, {
		name:  "removed signature, expired",
		token: stripped(keys.idToken(t, with(idClaims(), "exp", time.Now().Add(-time.Minute).Unix()))),
		want:  map[string]int{"App Engine": unauth, "Cloud Run": unauth},
	}, {
		name:  "removed signature, another issuer",
		token: stripped(keys.idToken(t, with(idClaims(), "iss", "https://issuer.example.com"))),
		want:  map[string]int{"App Engine": unauth, "Cloud Run": unauth},
	}, {
		name:  "removed signature, unlisted email",
		token: stripped(keys.idToken(t, with(idClaims(), "email", strangerEmail))),
		want:  map[string]int{"App Engine": unauth, "Cloud Run": unauth, "Cloud Run IAM": denied},
	}}

	for _, setup := range authSetups() {
		for _, rt := range authRoutes() {
			for _, c := range cases {
				t.Run(setup.name+"/"+rt.method+" "+rt.path+"/"+c.name, func(t *testing.T) {
					class := classify(rt.path)
					want, ok := c.want[fmt.Sprintf("%s %s", setup.name, class)]
					if !ok {
						want, ok = c.want[setup.name]
					}
					if !ok && setup.name == "Cloud Run IAM" {
						want = c.want["Cloud Run"]
					}
					caller := c.caller
					switch {
					case setup.cfg.Platform == Local:
						want = denied
					case setup.cfg.Platform == AppEngine && class == routeLifecycle:
						want, caller = http.StatusNoContent, "appengine"
					}

					var logs bytes.Buffer
					cfg := setup.cfg
					cfg.Invokers = []string{" " + strings.ToUpper(schedulerEmail), operatorEmail, ""}
					cfg.Validator = keys.validator
					cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
					next := &recorder{}
					h := Authenticate(cfg, next)

					req := httptest.NewRequest(rt.method, rt.path, nil)
					req.RemoteAddr = "203.0.113.7:40000"
					if c.set != nil {
						c.set(req)
					} else {
						req.Header.Set("Authorization", "Bearer "+c.token)
					}
					w := httptest.NewRecorder()
					h.ServeHTTP(w, req)

					if got := w.Code; got != want {
						t.Fatalf("%s %s = %d (%s); want %d", rt.method, rt.path, got, strings.TrimSpace(w.Body.String()), want)
					}
					if want == http.StatusNoContent {
						if !next.called {
							t.Fatal("next was not called for an accepted request")
						}
						if next.caller != caller {
							t.Errorf("CallerFrom = %q; want %q", next.caller, caller)
						}
						return
					}
					if next.called {
						t.Fatal("next was called for a refused request")
					}
					checkRefusal(t, w, logs.String(), rt.path, c.token)
				})
			}
		}
	}
	if keys.fetches.Load() == 0 {
		t.Error("the validator never fetched the test's keys: tokens were not verified through idtoken")
	}
}

// checkRefusal checks the answer and the log line of a refused request: a
// JSON body with a one-line reason, a warning naming the path, and no token.
func checkRefusal(t *testing.T, w *httptest.ResponseRecorder, logs, path, token string) {
	t.Helper()
	if got, want := w.Header().Get("Content-Type"), "application/json"; got != want {
		t.Errorf("Content-Type = %q; want %q", got, want)
	}
	var body struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q is not JSON: %v", w.Body.String(), err)
	}
	t.Logf("refused %d: %s", w.Code, body.Error)
	if body.Error == "" || strings.Contains(body.Error, "\n") {
		t.Errorf("error = %q; want one line", body.Error)
	}
	if w.Code == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "path="+path) || !strings.Contains(logs, "reason=") {
		t.Errorf("log = %q; want a warning with the path and the reason", logs)
	}
	if token != "" && strings.Contains(logs, token) {
		t.Errorf("log holds the token: %q", logs)
	}
	if strings.Contains(logs, "eyJ") || strings.Contains(body.Error, "eyJ") {
		t.Errorf("log or answer holds a JWT: log %q, answer %q", logs, body.Error)
	}
}

func TestAuthLoopbackLocally(t *testing.T) {
	for _, tt := range []struct {
		name   string
		remote string
		xff    string
		want   int
	}{
		{"IPv4 loopback", "127.0.0.1:5000", "", served},
		{"anywhere in 127.0.0.0/8", "127.8.9.10:5000", "", served},
		{"IPv6 loopback", "[::1]:5000", "", served},
		{"IPv4-mapped loopback", "[::ffff:127.0.0.1]:5000", "", served},
		{"LAN client", "192.168.1.20:5000", "", denied},
		{"LAN client claiming loopback in X-Forwarded-For", "192.168.1.20:5000", "127.0.0.1", denied},
		{"IPv6 client", "[2001:db8::1]:5000", "", denied},
		{"unspecified address", "0.0.0.0:5000", "", denied},
		{"no port", "127.0.0.1", "", denied},
		{"empty", "", "", denied},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, rt := range authRoutes() {
				next := &recorder{}
				h := Authenticate(AuthConfig{Platform: Local, Logger: slog.New(slog.DiscardHandler)}, next)
				req := httptest.NewRequest(rt.method, rt.path, nil)
				req.RemoteAddr = tt.remote
				if tt.xff != "" {
					req.Header.Set("X-Forwarded-For", tt.xff)
				}
				// Locally App Engine's headers prove nothing either way.
				req.Header.Set(cronHeader, "true")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if got := w.Code; got != tt.want {
					t.Errorf("%s %s from %q = %d; want %d", rt.method, rt.path, tt.remote, got, tt.want)
				}
				if next.called != (tt.want == served) {
					t.Errorf("%s %s from %q: next called = %v", rt.method, rt.path, tt.remote, next.called)
				}
				if tt.want == served && next.caller != "loopback" {
					t.Errorf("CallerFrom = %q; want loopback", next.caller)
				}
			}
		})
	}
}

// countingValidator counts the tokens it is asked to validate.
type countingValidator struct {
	Validator
	calls int
}

func (v *countingValidator) Validate(ctx context.Context, token, audience string) (*idtoken.Payload, error) {
	v.calls++
	return v.Validator.Validate(ctx, token, audience)
}

func TestAuthFailsClosedWhenMisconfigured(t *testing.T) {
	keys := newGoogleKeys(t)
	good := keys.idToken(t, idClaims())
	for _, tt := range []struct {
		name       string
		cfg        AuthConfig
		header     string
		value      string
		want       int
		wantReason string
	}{
		{"Cloud Run without audience", AuthConfig{Platform: CloudRun, Invokers: []string{schedulerEmail}},
			"Authorization", "Bearer " + good, unauth, "DSEXPORT_AUDIENCE is not set"},
		{"Cloud Run without invokers", AuthConfig{Platform: CloudRun, Audience: testAudience},
			"Authorization", "Bearer " + good, denied, "DSEXPORT_INVOKERS is not set"},
		{"App Engine without audience", AuthConfig{Platform: AppEngine, IAPAudience: testIAPAudience, Invokers: []string{schedulerEmail}},
			"Authorization", "Bearer " + good, unauth, "DSEXPORT_AUDIENCE is not set"},
		{"App Engine without IAP audience", AuthConfig{Platform: AppEngine, Audience: testAudience, Invokers: []string{operatorEmail}},
			iapHeader, keys.iapJWT(t, iapClaims()), unauth, "DSEXPORT_IAP_AUDIENCE is not set"},
		{"Cloud Run without validator", AuthConfig{Platform: CloudRun, Audience: testAudience, Invokers: []string{schedulerEmail}},
			"Authorization", "Bearer " + good, unauth, "no validator"},
		{"unknown platform", AuthConfig{Platform: Platform(7), Audience: testAudience, Invokers: []string{schedulerEmail}},
			"Authorization", "Bearer " + good, denied, "accepts no caller"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := &countingValidator{Validator: keys.validator}
			if tt.name != "Cloud Run without validator" {
				tt.cfg.Validator = v
			}
			tt.cfg.Logger = slog.New(slog.DiscardHandler)
			next := &recorder{}
			req := httptest.NewRequest("POST", "/export", nil)
			req.Header.Set(tt.header, tt.value)
			w := httptest.NewRecorder()
			Authenticate(tt.cfg, next).ServeHTTP(w, req)
			if w.Code != tt.want || !strings.Contains(w.Body.String(), tt.wantReason) {
				t.Errorf("POST /export = %d %s; want %d with %q", w.Code, strings.TrimSpace(w.Body.String()), tt.want, tt.wantReason)
			}
			if next.called {
				t.Error("next was called")
			}
			if tt.cfg.Audience == "" && v.calls > 0 {
				t.Error("Validate was called without an audience, which idtoken takes as any audience")
			}
		})
	}
}

func TestAuthIAPBesideAForeignBearerToken(t *testing.T) {
	// Behind IAP a programmatic caller sends IAP its own ID token in
	// Authorization; IAP passes it on beside its JWT. The IAP JWT decides.
	keys := newGoogleKeys(t)
	cfg := AuthConfig{
		Platform: AppEngine, Audience: testAudience, IAPAudience: testIAPAudience,
		Invokers: []string{operatorEmail}, Validator: keys.validator, Logger: slog.New(slog.DiscardHandler),
	}
	next := &recorder{}
	req := httptest.NewRequest("POST", "/export", nil)
	req.Header.Set("Authorization", "Bearer "+keys.idToken(t, with(idClaims(), "aud", "1234-abc.apps.googleusercontent.com")))
	req.Header.Set(iapHeader, keys.iapJWT(t, iapClaims()))
	w := httptest.NewRecorder()
	Authenticate(cfg, next).ServeHTTP(w, req)
	if w.Code != served || next.caller != operatorEmail {
		t.Errorf("POST /export = %d %s, caller %q; want %d for %s", w.Code, w.Body.String(), next.caller, served, operatorEmail)
	}
}

func TestAuthReasons(t *testing.T) {
	// The reasons an operator reads to fix a deployment.
	keys := newGoogleKeys(t)
	cfg := AuthConfig{
		Platform: CloudRun, Audience: testAudience, Invokers: []string{schedulerEmail},
		Validator: keys.validator, Logger: slog.New(slog.DiscardHandler),
	}
	for _, tt := range []struct {
		name   string
		path   string
		cfg    AuthConfig
		header string
		value  string
		want   string
	}{
		{"spoofed cron header on Cloud Run", "/cron/export", cfg, cronHeader, "true",
			"X-Appengine-Cron is ignored: it is only trusted on App Engine"},
		{"scheduler audience left at the job's URL", "/cron/export", cfg, "Authorization",
			"Bearer " + keys.idToken(t, with(idClaims(), "aud", testAudience+"/cron/export")),
			`ID token audience "` + testAudience + `/cron/export" is not DSEXPORT_AUDIENCE`},
		{"Cloud Run IAM not declared", "/cron/export", cfg, "Authorization",
			"Bearer " + stripped(keys.idToken(t, idClaims())), "DSEXPORT_CLOUD_RUN_IAM=true"},
		{"unlisted", "/export", cfg, "Authorization",
			"Bearer " + keys.idToken(t, with(idClaims(), "email", strangerEmail)), strangerEmail + " is not in DSEXPORT_INVOKERS"},
		{"queue header on a cron route on App Engine", "/cron/export",
			AuthConfig{Platform: AppEngine, Audience: testAudience, Invokers: []string{schedulerEmail}, Validator: keys.validator},
			queueHeader, "poll", "X-AppEngine-QueueName is not accepted on this route"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", tt.path, nil)
			req.Header.Set(tt.header, tt.value)
			w := httptest.NewRecorder()
			tt.cfg.Logger = slog.New(slog.DiscardHandler)
			Authenticate(tt.cfg, &recorder{}).ServeHTTP(w, req)
			var body struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || !strings.Contains(body.Error, tt.want) {
				t.Errorf("GET %s = %d %s; want a reason containing %q", tt.path, w.Code, strings.TrimSpace(w.Body.String()), tt.want)
			}
		})
	}
}

func TestAuthConfigCheck(t *testing.T) {
	v := &countingValidator{}
	for _, tt := range []struct {
		name string
		cfg  AuthConfig
		want []string // substrings of the error; none: no error
	}{
		{"local needs nothing", AuthConfig{Platform: Local}, nil},
		{"Cloud Run complete", AuthConfig{Platform: CloudRun, Audience: testAudience, Invokers: []string{schedulerEmail}, Validator: v}, nil},
		{"App Engine with IAP only", AuthConfig{Platform: AppEngine, IAPAudience: testIAPAudience, Invokers: []string{operatorEmail}, Validator: v}, nil},
		{"Cloud Run without audience", AuthConfig{Platform: CloudRun, Invokers: []string{schedulerEmail}, Validator: v},
			[]string{"DSEXPORT_AUDIENCE is not set: Cloud Run requests cannot be authenticated"}},
		{"App Engine without any audience", AuthConfig{Platform: AppEngine, Invokers: []string{schedulerEmail}, Validator: v},
			[]string{"DSEXPORT_AUDIENCE is not set"}},
		{"blank invokers", AuthConfig{Platform: CloudRun, Audience: testAudience, Invokers: []string{"", " "}, Validator: v},
			[]string{"DSEXPORT_INVOKERS is not set"}},
		{"IAM member syntax", AuthConfig{Platform: CloudRun, Audience: testAudience, Invokers: []string{"serviceAccount:" + schedulerEmail}, Validator: v},
			[]string{"bare email"}},
		{"not an email", AuthConfig{Platform: CloudRun, Audience: testAudience, Invokers: []string{"scheduler"}, Validator: v},
			[]string{"is not an email"}},
		{"IAP audience of another form", AuthConfig{Platform: AppEngine, IAPAudience: "1234-abc.apps.googleusercontent.com", Invokers: []string{operatorEmail}, Validator: v},
			[]string{"DSEXPORT_IAP_AUDIENCE"}},
		{"no validator", AuthConfig{Platform: CloudRun, Audience: testAudience, Invokers: []string{schedulerEmail}},
			[]string{"no ID token validator"}},
		{"everything missing names every variable", AuthConfig{Platform: CloudRun},
			[]string{"DSEXPORT_AUDIENCE", "DSEXPORT_INVOKERS", "validator"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Check()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Check() = %v; want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check() = nil; want an error with %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Check() = %v; want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestAuthClassify(t *testing.T) {
	for _, tt := range []struct {
		path string
		want routeClass
	}{
		{"/cron/export", routeCron},
		{"/cron/sweep", routeCron},
		{"/tasks/poll", routeTasks},
		{"/_ah/start", routeLifecycle},
		{"/_ah/stop", routeLifecycle},
		{"/_ah/warmup", routeManual},
		{"/healthz", routeHealth},
		{"/export", routeManual},
		{"/", routeManual},
		{"/api/operations", routeManual},
		{"/api/targets", routeManual},
		{"/api/doctor", routeManual},
		{"/targets/shop", routeManual},
		{"/targets/../cron/sweep", routeCron},
		{"/cron/../targets/shop", routeManual},
		{"/cron", routeManual},
		{"/cron/../export", routeManual},
		{"/tasks/../_ah/start", routeLifecycle},
		{"/static/../cron/export", routeCron},
	} {
		if got := classify(tt.path); got != tt.want {
			t.Errorf("classify(%q) = %v; want %v", tt.path, got, tt.want)
		}
	}
}

func TestAuthPolicyCoversEveryRouteAndPlatform(t *testing.T) {
	p := policy()
	for _, class := range []routeClass{routeManual, routeCron, routeTasks, routeLifecycle, routeHealth} {
		for _, platform := range []Platform{Local, AppEngine, CloudRun} {
			if p[class][platform] == 0 {
				t.Errorf("policy has no entry for %v routes on %v", class, platform)
			}
		}
	}
}

func TestAuthDetectPlatform(t *testing.T) {
	for _, tt := range []struct {
		env  map[string]string
		want Platform
	}{
		{map[string]string{}, Local},
		{map[string]string{"GAE_ENV": "standard"}, AppEngine},
		{map[string]string{"GAE_ENV": "localdev"}, Local},
		{map[string]string{"K_SERVICE": "dsexport"}, CloudRun},
	} {
		if got := DetectPlatform(func(k string) string { return tt.env[k] }); got != tt.want {
			t.Errorf("DetectPlatform(%v) = %v; want %v", tt.env, got, tt.want)
		}
	}
}

// TestAuthCloudRunServerlessHeader: when a caller sends X-Serverless-Authorization,
// Cloud Run checks that token and passes Authorization on untouched, so only
// the former names who called. A forged signature-removed token in
// Authorization must not count.
func TestAuthCloudRunServerlessHeader(t *testing.T) {
	keys := newGoogleKeys(t)
	cfg := AuthConfig{
		Platform: CloudRun, Audience: testAudience, Invokers: []string{schedulerEmail}, CloudRunIAM: true,
		Validator: keys.validator, Logger: slog.New(slog.DiscardHandler),
	}
	forged := stripped(keys.idToken(t, idClaims())) // the listed invoker's claims, no signature
	for _, tt := range []struct {
		name       string
		serverless string
		want       int
	}{
		{"stranger's verified token beside a forged one", "Bearer " + stripped(keys.idToken(t, with(idClaims(), "email", strangerEmail))), http.StatusForbidden},
		{"invoker's verified token", "Bearer " + stripped(keys.idToken(t, idClaims())), served},
	} {
		next := &recorder{}
		req := httptest.NewRequest("POST", "/export", nil)
		req.Header.Set("Authorization", "Bearer "+forged)
		req.Header.Set(serverlessHeader, tt.serverless)
		w := httptest.NewRecorder()
		Authenticate(cfg, next).ServeHTTP(w, req)
		if w.Code != tt.want || (tt.want == served) != next.called {
			t.Errorf("%s: POST /export = %d %s (next called: %v); want %d", tt.name, w.Code, w.Body.String(), next.called, tt.want)
		}
	}
	// Off Cloud Run a signature-removed token is never accepted, whatever the switch says.
	for _, platform := range []Platform{AppEngine} {
		c := cfg
		c.Platform = platform
		next := &recorder{}
		req := httptest.NewRequest("POST", "/export", nil)
		req.Header.Set("Authorization", "Bearer "+forged)
		w := httptest.NewRecorder()
		Authenticate(c, next).ServeHTTP(w, req)
		if w.Code == served || next.called {
			t.Errorf("%v with DSEXPORT_CLOUD_RUN_IAM: a signature-removed token was served", platform)
		}
	}
}
