package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const (
	// jwksMinRefresh is the least time between two key fetches from one
	// issuer. A token with an unknown key id cannot make the guard fetch
	// more often, so junk tokens cannot turn the guard against the issuer.
	jwksMinRefresh = 30 * time.Second
	// jwksMaxAge is how long fetched keys are used before a refetch, so a
	// key the issuer withdrew stops being trusted.
	jwksMaxAge = time.Hour
	// maxJWKSBytes caps a key set document.
	maxJWKSBytes = 1 << 20
)

var (
	// errKeyFetch marks a failure to get the issuer's keys; classify
	// matches its text.
	errKeyFetch = errors.New("identity: jwks fetch failed")
	errNoKey    = errors.New("identity: no key verifies the signature")
	errThrottle = errors.New("identity: jwks refresh throttled")
)

// keySet holds one issuer's signing keys. It implements oidc.KeySet and
// replaces go-oidc's remote key set, which refetches on every unknown key
// id and never drops a key.
type keySet struct {
	issuer string
	url    string
	algs   []jose.SignatureAlgorithm
	client *http.Client
	now    func() time.Time
	log    *slog.Logger

	// fetchMu serialises fetches; it is taken before mu, never after.
	fetchMu sync.Mutex

	// mu guards the fields below.
	mu        sync.Mutex
	keys      []jose.JSONWebKey
	fetched   time.Time // last successful fetch
	attempted time.Time // last fetch attempt
}

func newKeySet(issuer, url string, algs []string, client *http.Client,
	now func() time.Time, log *slog.Logger) *keySet {
	ja := make([]jose.SignatureAlgorithm, 0, len(algs))
	for _, a := range algs {
		ja = append(ja, jose.SignatureAlgorithm(a))
	}
	return &keySet{issuer: issuer, url: url, algs: ja, client: client, now: now, log: log}
}

// VerifySignature checks the signature of a compact JWS against the
// issuer's keys and returns the payload.
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(raw, k.algs)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("want exactly one signature")
	}

	if k.stale() {
		// Best effort: on failure the cached keys stay in use.
		_ = k.refresh(ctx, false)
	}
	if payload, ok := k.verifyCached(jws); ok {
		return payload, nil
	}

	// The key may be new: refetch, at most once per jwksMinRefresh.
	switch err := k.refresh(ctx, true); {
	case errors.Is(err, errThrottle):
		return nil, errNoKey
	case err != nil:
		return nil, err
	}
	if payload, ok := k.verifyCached(jws); ok {
		return payload, nil
	}
	return nil, errNoKey
}

// verifyCached tries every cached key that matches the token's key id and
// algorithm.
func (k *keySet) verifyCached(jws *jose.JSONWebSignature) ([]byte, bool) {
	k.mu.Lock()
	keys := k.keys
	k.mu.Unlock()

	h := jws.Signatures[0].Header
	for _, key := range keys {
		if h.KeyID != "" && key.KeyID != h.KeyID {
			continue
		}
		if key.Algorithm != "" && key.Algorithm != h.Algorithm {
			continue
		}
		if payload, err := jws.Verify(key.Key); err == nil {
			return payload, true
		}
	}
	return nil, false
}

// stale reports whether the keys are missing or older than jwksMaxAge.
func (k *keySet) stale() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.fetched.IsZero() || k.now().Sub(k.fetched) > jwksMaxAge
}

// refresh fetches the key set unless one was attempted within
// jwksMinRefresh (errThrottle). Without force it also skips the fetch when
// another caller refreshed the keys meanwhile.
func (k *keySet) refresh(ctx context.Context, force bool) error {
	k.fetchMu.Lock()
	defer k.fetchMu.Unlock()

	k.mu.Lock()
	now := k.now()
	fresh := !k.fetched.IsZero() && now.Sub(k.fetched) <= jwksMaxAge
	recent := !k.attempted.IsZero() && now.Sub(k.attempted) < jwksMinRefresh
	if !force && fresh {
		k.mu.Unlock()
		return nil
	}
	if recent {
		k.mu.Unlock()
		return errThrottle
	}
	k.attempted = now
	k.mu.Unlock()

	keys, err := k.fetch(ctx)
	if err != nil {
		k.log.Warn("jwks fetch failed", keyIssuer, k.issuer, keyError, err)
		return fmt.Errorf("%w: %w", errKeyFetch, err)
	}

	k.mu.Lock()
	k.keys = keys
	k.fetched = now
	k.mu.Unlock()
	return nil
}

// fetch downloads the key set and keeps the public signing keys.
func (k *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")

	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get keys: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get keys: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read keys: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return nil, errors.New("key set larger than 1 MiB")
	}

	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("decode keys: %w", err)
	}
	var keys []jose.JSONWebKey
	for _, rk := range doc.Keys {
		var key jose.JSONWebKey
		if err := key.UnmarshalJSON(rk); err != nil {
			continue // a key type we do not know; others may still work
		}
		if !key.IsPublic() || !key.Valid() || (key.Use != "" && key.Use != "sig") {
			continue
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, errors.New("no usable public signing key in key set")
	}
	return keys, nil
}
