package approvals

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mcp-guard/mcp-guard/identity"
)

func TestConfirmState(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	caller := alice()
	digest, err := Digest("run_shell", "web-1", []byte(`{"command":"rm -rf /tmp/x"}`))
	if err != nil {
		t.Fatal(err)
	}
	other, err := Digest("run_shell", "web-1", []byte(`{"command":"rm -rf /"}`))
	if err != nil {
		t.Fatal(err)
	}
	state, err := SignState(key, caller, digest, now.Add(5*time.Minute))
	if err != nil {
		t.Fatalf("SignState: %v", err)
	}

	// forge returns state with its MAC replaced.
	forge := func(mac []byte) string {
		i := strings.LastIndex(state, ".")
		return state[:i+1] + base64.RawURLEncoding.EncodeToString(mac)
	}
	// later moves the expiry in the clear part without re-signing.
	parts := strings.Split(state, ".")
	if len(parts) != 3 {
		t.Fatalf("state %q has %d parts", state, len(parts))
	}
	later := parts[0] + ".9999999999." + parts[2]

	tests := []struct {
		name    string
		key     []byte
		state   string
		caller  identity.Caller
		digest  string
		now     time.Time
		wantErr error
	}{
		{name: "valid", key: key, state: state, caller: caller, digest: digest, now: now},
		{name: "valid until the last second", key: key, state: state, caller: caller,
			digest: digest, now: now.Add(5*time.Minute - time.Second)},
		{name: "forged mac", key: key, state: forge(make([]byte, 32)), caller: caller,
			digest: digest, now: now, wantErr: ErrStateInvalid},
		{name: "expiry extended in the clear", key: key, state: later, caller: caller,
			digest: digest, now: now, wantErr: ErrStateInvalid},
		{name: "other call", key: key, state: state, caller: caller, digest: other,
			now: now, wantErr: ErrStateInvalid},
		{name: "other caller", key: key, state: state,
			caller: identity.Caller{Subject: "bob-sub", Issuer: caller.Issuer},
			digest: digest, now: now, wantErr: ErrStateInvalid},
		{name: "same subject at another issuer", key: key, state: state,
			caller: identity.Caller{Subject: caller.Subject, Issuer: "https://evil.test"},
			digest: digest, now: now, wantErr: ErrStateInvalid},
		{name: "other key", key: bytes.Repeat([]byte{8}, 32), state: state,
			caller: caller, digest: digest, now: now, wantErr: ErrStateInvalid},
		{name: "expired", key: key, state: state, caller: caller, digest: digest,
			now: now.Add(5 * time.Minute), wantErr: ErrStateExpired},
		{name: "empty", key: key, state: "", caller: caller, digest: digest,
			now: now, wantErr: ErrStateInvalid},
		{name: "garbage", key: key, state: "cs1.x.y", caller: caller, digest: digest,
			now: now, wantErr: ErrStateInvalid},
		{name: "short key never verifies", key: key[:16], state: state, caller: caller,
			digest: digest, now: now, wantErr: ErrStateInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyState(tt.key, tt.state, tt.caller, tt.digest, tt.now)
			if tt.wantErr == nil && err != nil {
				t.Fatalf("VerifyState: %v", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("VerifyState error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestSignStateRefusesWeakInput(t *testing.T) {
	exp := time.Now().Add(time.Minute)
	if _, err := SignState(make([]byte, 16), alice(), "d", exp); err == nil {
		t.Fatal("SignState accepted a 16-byte key")
	}
	if _, err := SignState(make([]byte, 32), identity.Caller{}, "d", exp); err == nil {
		t.Fatal("SignState accepted a caller without subject")
	}
	if _, err := SignState(make([]byte, 32), alice(), "", exp); err == nil {
		t.Fatal("SignState accepted an empty digest")
	}
}
