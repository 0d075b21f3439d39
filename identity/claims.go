package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"time"
)

// Reason codes for a refused token. They are stable and safe to log.
const (
	reasonMalformed       = "malformed"
	reasonAlgNotAllowed   = "alg_not_allowed"
	reasonBadSignature    = "bad_signature"
	reasonKeyFetch        = "key_fetch_failed"
	reasonWrongIssuer     = "wrong_issuer"
	reasonWrongAudience   = "wrong_audience"
	reasonMalformedClaims = "malformed_claims"
	reasonMissingSubject  = "missing_subject"
	reasonMissingExp      = "missing_exp"
	reasonExpired         = "expired"
	reasonNotYetValid     = "not_yet_valid"
	reasonIssuedInFuture  = "issued_in_future"
	reasonMissingScope    = "missing_scope"
	reasonBadGroups       = "bad_groups_claim"
	reasonGroupsOverage   = "groups_overage"
	reasonRejected        = "rejected"
)

// maxNumericDate bounds exp, nbf and iat (about the year 36812) so that
// converting them to time.Time cannot overflow.
const maxNumericDate = 1 << 40

// verify checks raw against this issuer. It returns the caller, or a
// reason code when the token is refused.
func (is *issuer) verify(ctx context.Context, raw string, now time.Time) (Caller, string) {
	// Signature, algorithm, iss and aud: go-oidc, with our key set.
	idt, err := is.verifier.Verify(ctx, raw)
	if err != nil {
		return Caller{}, classify(err)
	}

	// From here on the token is signed by this issuer for this audience.
	var payload json.RawMessage
	if err := idt.Claims(&payload); err != nil {
		return Caller{}, reasonMalformedClaims
	}
	claims, err := decodeClaims(payload)
	if err != nil {
		return Caller{}, reasonMalformedClaims
	}

	if idt.Subject == "" {
		return Caller{}, reasonMissingSubject
	}
	if reason := checkTimes(claims, now); reason != "" {
		return Caller{}, reason
	}
	if !hasScopes(claims, is.cfg.RequiredScopes) {
		return Caller{}, reasonMissingScope
	}
	groups, reason := readGroups(claims, is.cfg.GroupsClaim, is.cfg.GroupsPrefix)
	if reason != "" {
		return Caller{}, reason
	}

	return Caller{
		Subject: idt.Subject,
		Issuer:  is.cfg.Issuer,
		Email:   verifiedEmail(claims),
		Groups:  groups,
	}, ""
}

// classify maps a go-oidc error to a reason code. The error text itself
// may quote the token's header or claims, so it is never passed on.
func classify(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "unexpected signature algorithm"):
		return reasonAlgNotAllowed
	case strings.Contains(msg, errKeyFetch.Error()):
		return reasonKeyFetch
	case strings.HasPrefix(msg, "failed to verify signature"):
		return reasonBadSignature
	case strings.HasPrefix(msg, "oidc: malformed jwt"):
		return reasonMalformed
	case strings.HasPrefix(msg, "oidc: id token issued by a different provider"):
		return reasonWrongIssuer
	case strings.HasPrefix(msg, "oidc: expected audience"):
		return reasonWrongAudience
	case strings.HasPrefix(msg, "oidc: failed to unmarshal claims"):
		return reasonMalformedClaims
	}
	return reasonRejected
}

// decodeClaims parses a verified payload, keeping numbers exact.
func decodeClaims(payload []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil {
		return nil, err
	}
	return claims, nil
}

// checkTimes requires exp in the future and nbf and iat, when present, at
// most ClockLeeway ahead of now.
func checkTimes(claims map[string]any, now time.Time) string {
	exp, present, ok := numericDate(claims, "exp")
	switch {
	case !ok:
		return reasonMalformedClaims
	case !present:
		return reasonMissingExp
	case !now.Before(exp):
		return reasonExpired
	}

	nbf, present, ok := numericDate(claims, "nbf")
	switch {
	case !ok:
		return reasonMalformedClaims
	case present && nbf.After(now.Add(ClockLeeway)):
		return reasonNotYetValid
	}

	iat, present, ok := numericDate(claims, "iat")
	switch {
	case !ok:
		return reasonMalformedClaims
	case present && iat.After(now.Add(ClockLeeway)):
		return reasonIssuedInFuture
	}
	return ""
}

// numericDate reads a NumericDate claim. present is false when the claim
// is absent; ok is false when it is there but not a usable number.
func numericDate(claims map[string]any, name string) (t time.Time, present, ok bool) {
	v, found := claims[name]
	if !found {
		return time.Time{}, false, true
	}
	n, isNum := v.(json.Number)
	if !isNum {
		return time.Time{}, true, false
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return time.Time{}, true, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, true
}

// hasScopes reports whether every required scope is granted by the scope
// or scp claim.
func hasScopes(claims map[string]any, required []string) bool {
	if len(required) == 0 {
		return true
	}
	var granted []string
	for _, name := range []string{"scope", "scp"} {
		switch v := claims[name].(type) {
		case string:
			granted = append(granted, strings.Fields(v)...)
		case []any:
			for _, s := range v {
				if str, ok := s.(string); ok {
					granted = append(granted, str)
				}
			}
		}
	}
	for _, r := range required {
		if !slices.Contains(granted, r) {
			return false
		}
	}
	return true
}

// readGroups returns the groups at path, each with prefix, sorted and
// without duplicates or empty names. A missing claim gives no groups; a
// claim of the wrong type, or an Entra ID style overage marker in place of
// the claim, refuses the token so that no policy sees a partial list.
func readGroups(claims map[string]any, path, prefix string) ([]string, string) {
	v, found := lookupClaim(claims, path)
	if !found {
		if names, ok := claims["_claim_names"].(map[string]any); ok {
			if _, over := names[path]; over {
				return nil, reasonGroupsOverage
			}
		}
		return []string{}, ""
	}

	var raw []string
	switch g := v.(type) {
	case string:
		raw = []string{g}
	case []any:
		for _, e := range g {
			s, ok := e.(string)
			if !ok {
				return nil, reasonBadGroups
			}
			raw = append(raw, s)
		}
	case nil:
		// An explicit null is the same as no groups.
	default:
		return nil, reasonBadGroups
	}

	groups := make([]string, 0, len(raw))
	for _, s := range raw {
		if s != "" {
			groups = append(groups, prefix+s)
		}
	}
	slices.Sort(groups)
	return slices.Compact(groups), ""
}

// lookupClaim finds path as a literal top-level claim, else walks it as a
// dotted path through nested objects.
func lookupClaim(claims map[string]any, path string) (any, bool) {
	if v, ok := claims[path]; ok {
		return v, true
	}
	var cur any = claims
	for _, part := range strings.Split(path, ".") {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = obj[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// verifiedEmail returns the email claim only when email_verified is the
// JSON value true; a string "true" or a missing flag does not count.
func verifiedEmail(claims map[string]any) string {
	if ok, _ := claims["email_verified"].(bool); !ok {
		return ""
	}
	email, _ := claims["email"].(string)
	return email
}
