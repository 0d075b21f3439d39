package tools

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// jsonValue converts a value decoded by pgx into something encoding/json
// renders faithfully: uuids as strings, numerics exactly, intervals,
// network addresses and times as PostgreSQL writes them, bytea as \x hex.
func jsonValue(v any, oid uint32) any {
	switch x := v.(type) {
	case nil, bool, string, int16, int32, int64, int:
		return x
	case float32:
		return floatValue(float64(x))
	case float64:
		return floatValue(x)
	case [16]byte:
		return uuidString(x)
	case []byte:
		if oid == pgtype.JSONOID || oid == pgtype.JSONBOID {
			return json.RawMessage(x)
		}
		return `\x` + hex.EncodeToString(x)
	case time.Time:
		switch oid {
		case pgtype.DateOID:
			return x.Format("2006-01-02")
		case pgtype.TimestampOID:
			return x.Format("2006-01-02T15:04:05.999999")
		}
		return x.Format(time.RFC3339Nano)
	case pgtype.Numeric:
		return numericValue(x)
	case pgtype.Interval:
		return intervalString(x)
	case pgtype.Time:
		return timeOfDay(x)
	case netip.Prefix:
		if oid == pgtype.InetOID && x.IsSingleIP() {
			return x.Addr().String()
		}
		return x.String()
	case netip.Addr:
		return x.String()
	case net.HardwareAddr:
		return x.String()
	case *net.IPNet:
		return x.String()
	case pgtype.Bits:
		return bitsString(x)
	case map[string]any, []any:
		return convertNested(x)
	case fmt.Stringer:
		return x.String()
	}
	// Anything else: let encoding/json try, falling back to text.
	if _, err := json.Marshal(v); err == nil {
		return v
	}
	return fmt.Sprint(v)
}

func convertNested(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonValue(e, 0)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonValue(e, 0)
		}
		return out
	}
	return v
}

func floatValue(f float64) any {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return f
}

func uuidString(u [16]byte) string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// numericValue renders a numeric exactly, as a JSON number (not a float).
func numericValue(n pgtype.Numeric) any {
	if !n.Valid {
		return nil
	}
	if n.NaN {
		return "NaN"
	}
	switch n.InfinityModifier {
	case pgtype.Infinity:
		return "Infinity"
	case pgtype.NegativeInfinity:
		return "-Infinity"
	}
	digits := new(big.Int).Abs(n.Int).String()
	neg := n.Int.Sign() < 0
	var s string
	switch {
	case n.Exp >= 0:
		s = digits + strings.Repeat("0", int(n.Exp))
	default:
		scale := int(-n.Exp)
		if len(digits) <= scale {
			digits = strings.Repeat("0", scale-len(digits)+1) + digits
		}
		s = digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
	}
	if neg {
		s = "-" + s
	}
	return json.Number(s)
}

func intervalString(iv pgtype.Interval) any {
	if !iv.Valid {
		return nil
	}
	var parts []string
	years, months := iv.Months/12, iv.Months%12
	plural := func(n int64, unit string) {
		if n == 0 {
			return
		}
		s := fmt.Sprintf("%d %s", n, unit)
		if n != 1 && n != -1 {
			s += "s"
		}
		parts = append(parts, s)
	}
	plural(int64(years), "year")
	plural(int64(months), "mon")
	plural(int64(iv.Days), "day")
	if us := iv.Microseconds; us != 0 || len(parts) == 0 {
		sign := ""
		if us < 0 {
			sign, us = "-", -us
		}
		h, us := us/3_600_000_000, us%3_600_000_000
		m, us := us/60_000_000, us%60_000_000
		s, us := us/1_000_000, us%1_000_000
		t := fmt.Sprintf("%s%02d:%02d:%02d", sign, h, m, s)
		if us != 0 {
			t += strings.TrimRight(fmt.Sprintf(".%06d", us), "0")
		}
		parts = append(parts, t)
	}
	return strings.Join(parts, " ")
}

func timeOfDay(t pgtype.Time) any {
	if !t.Valid {
		return nil
	}
	us := t.Microseconds
	s := fmt.Sprintf("%02d:%02d:%02d", us/3_600_000_000, us/60_000_000%60, us/1_000_000%60)
	if frac := us % 1_000_000; frac != 0 {
		s += strings.TrimRight(fmt.Sprintf(".%06d", frac), "0")
	}
	return s
}

func bitsString(b pgtype.Bits) any {
	if !b.Valid {
		return nil
	}
	var sb strings.Builder
	for i := int32(0); i < b.Len; i++ {
		if b.Bytes[i/8]&(0x80>>(i%8)) != 0 {
			sb.WriteByte('1')
		} else {
			sb.WriteByte('0')
		}
	}
	return sb.String()
}
