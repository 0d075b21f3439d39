package approvals

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mcp-guard/mcp-guard/identity"
)

// minStateKey is the shortest key SignState and VerifyState accept.
const minStateKey = 32

// statePrefix versions the confirmation state format.
const statePrefix = "cs1"

// Errors from VerifyState. A forged state, or one made for another call or
// another caller, is ErrStateInvalid: they cannot be told apart, by design.
var (
	ErrStateInvalid = errors.New("approvals: confirmation state is invalid")
	ErrStateExpired = errors.New("approvals: confirmation state expired")
)

// SignState returns an opaque state for an in-IDE confirmation of one call:
// an HMAC-SHA256 over the caller (issuer and subject), the call's digest and
// the expiry, with the expiry in clear. The state travels through the
// client, which can read and replay it but not change what it is bound to.
// key must be at least 32 bytes.
func SignState(key []byte, c identity.Caller, digest string, exp time.Time) (string, error) {
	if len(key) < minStateKey {
		return "", fmt.Errorf("approvals: state key must be at least %d bytes", minStateKey)
	}
	if c.Subject == "" || digest == "" {
		return "", errors.New("approvals: state needs a caller subject and a digest")
	}
	e := exp.Unix()
	mac := stateMAC(key, c, digest, e)
	return statePrefix + "." + strconv.FormatInt(e, 10) + "." +
		base64.RawURLEncoding.EncodeToString(mac), nil
}

// VerifyState checks that state was made by SignState with key for this
// caller and digest, and that it has not expired at now.
func VerifyState(key []byte, state string, c identity.Caller, digest string, now time.Time) error {
	if len(key) < minStateKey {
		return ErrStateInvalid
	}
	parts := strings.Split(state, ".")
	if len(parts) != 3 || parts[0] != statePrefix {
		return ErrStateInvalid
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return ErrStateInvalid
	}
	got, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return ErrStateInvalid
	}

	if !hmac.Equal(got, stateMAC(key, c, digest, exp)) {
		return ErrStateInvalid
	}
	if !now.Before(time.Unix(exp, 0)) {
		return ErrStateExpired
	}
	return nil
}

// stateMAC computes the MAC over length-prefixed fields, so that no two
// different inputs share an encoding.
func stateMAC(key []byte, c identity.Caller, digest string, exp int64) []byte {
	m := hmac.New(sha256.New, key)
	field := func(s string) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		m.Write(n[:])
		m.Write([]byte(s))
	}
	field("mcp-guard confirmation")
	field(c.Issuer)
	field(c.Subject)
	field(digest)
	field(strconv.FormatInt(exp, 10))
	return m.Sum(nil)
}
