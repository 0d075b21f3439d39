package masking

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// Strategy kinds for column masking.
const (
	// StrategyRedact replaces the value with "[MASKED:<tag>]".
	StrategyRedact = "redact"
	// StrategyLast4 keeps the last Keep characters (4 by default) behind
	// "****", and never more than half of the value. "last" is accepted
	// as another name for it.
	StrategyLast4 = "last4"
	// StrategyHash replaces the value with "hash:" and 16 hex digits of
	// its HMAC-SHA256 under Options.HashKey. Equal values give equal
	// hashes in every column, so joins and group-bys still work.
	StrategyHash = "hash"
)

// strategyLast is the name docs/policy.md gives StrategyLast4.
const strategyLast = "last"

// defaultTag names redacted columns when the strategy has no Tag.
const defaultTag = "column"

// hashHexLen is how many hex digits of the HMAC a hashed value keeps
// (64 bits).
const hashHexLen = 16

// Strategy says how Apply masks one column's values. It comes from policy
// (the decision's mask list).
type Strategy struct {
	// Kind is StrategyRedact, StrategyLast4 or StrategyHash.
	Kind string `json:"strategy"`
	// Keep is how many trailing characters StrategyLast4 keeps; 0 means 4.
	Keep int `json:"keep,omitempty"`
	// Tag names what the column holds ("email", "card"); it appears in
	// redacted values. Empty means "column".
	Tag string `json:"tag,omitempty"`
}

// Validate reports whether s is well formed; Apply treats an invalid
// strategy as StrategyRedact.
func (s Strategy) Validate() error {
	switch s.Kind {
	case StrategyRedact, StrategyLast4, strategyLast, StrategyHash:
	default:
		return fmt.Errorf("masking: unknown strategy %q (want %s, %s or %s)",
			s.Kind, StrategyRedact, StrategyLast4, StrategyHash)
	}
	if s.Keep < 0 || s.Keep > 64 {
		return fmt.Errorf("masking: keep %d out of range 0-64", s.Keep)
	}
	if !validTag(s.Tag) {
		return fmt.Errorf("masking: tag %q is not snake_case (a-z, 0-9, _)", s.Tag)
	}
	return nil
}

func validTag(tag string) bool {
	if len(tag) > 32 {
		return false
	}
	for i := 0; i < len(tag); i++ {
		if c := tag[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Apply masks one column value with a strategy, whatever it holds; nil
// (SQL NULL) stays nil. An invalid strategy, or "hash" on a Masker without
// HashKey, redacts.
func (m *Masker) Apply(s Strategy, v any) any {
	if v == nil {
		return nil
	}
	if s.Validate() != nil {
		s = Strategy{Kind: StrategyRedact}
	}
	tag := s.Tag
	if tag == "" {
		tag = defaultTag
	}
	switch {
	case s.Kind == StrategyLast4 || s.Kind == strategyLast:
		return keepLast(columnText(v), s.Keep)
	case s.Kind == StrategyHash && len(m.hashKey) > 0:
		mac := hmac.New(sha256.New, m.hashKey)
		mac.Write([]byte(columnText(v)))
		return "hash:" + hex.EncodeToString(mac.Sum(nil))[:hashHexLen]
	}
	return "[MASKED:" + tag + "]"
}

// keepLast keeps the last keep runes (4 if keep is 0) of text, at most
// half of them, behind a fixed "****" that hides the length.
func keepLast(text string, keep int) string {
	if keep == 0 {
		keep = 4
	}
	n := utf8.RuneCountInString(text)
	keep = min(keep, n/2)
	cut := len(text)
	for range keep {
		_, size := utf8.DecodeLastRuneInString(text[:cut])
		cut -= size
	}
	return "****" + text[cut:]
}

// columnText is the text a strategy works on: numbers in decimal, times in
// RFC 3339, bytes as text, anything else as JSON.
func columnText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	case json.Number:
		return x.String()
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case int32:
		return strconv.FormatInt(int64(x), 10)
	case uint64:
		return strconv.FormatUint(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case fmt.Stringer:
		return x.String()
	}
	if raw, err := json.Marshal(v); err == nil {
		return string(raw)
	}
	return fmt.Sprint(v)
}
