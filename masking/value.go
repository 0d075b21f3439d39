package masking

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// maxDepth bounds recursion; deeper values are masked as their JSON text.
const maxDepth = 64

// Value masks v recursively and returns the masked copy; v itself is not
// modified, and parts with nothing to mask are shared, not copied.
//
//   - strings are masked as by String;
//   - []any and map[string]any are masked element by element, map keys
//     included (keys that mask to the same form get a " #2" suffix);
//   - json.RawMessage holding JSON is decoded, masked and encoded again;
//   - []byte (and RawMessage that is not JSON) is masked as text and comes
//     back as a string when anything was masked (binary stays []byte);
//   - integers, floats and json.Number are left alone unless they are a
//     card number (13-19 digits, issuer prefix, Luhn), which comes back as
//     the masked string "**** **** **** 1111";
//   - bool, nil and time.Time are returned as is; an error is masked as
//     its message;
//   - any other type goes through its JSON form, and the decoded, masked
//     form is returned only if something was masked.
func (m *Masker) Value(v any) (any, Counts) {
	var t tally
	out, _ := m.value(v, &t, 0)
	return out, t.counts()
}

// value returns the masked v and whether it differs from v.
func (m *Masker) value(v any, t *tally, depth int) (any, bool) {
	if depth > maxDepth {
		return m.deepValue(v, t)
	}
	switch x := v.(type) {
	case nil, bool, time.Time, int8, int16, int32, uint8, uint16, uint32,
		float32:
		return v, false
	case string:
		out, changed := m.maskString(x, m.set, t)
		if !changed {
			return v, false // v is already boxed; boxing out would allocate
		}
		return out, true
	case []byte:
		return m.bytesValue(x, t)
	case json.RawMessage:
		return m.rawJSON(x, t, depth)
	case json.Number:
		return m.numberText(x.String(), v, t)
	case int:
		return m.intValue(int64(x), v, t)
	case int64:
		return m.intValue(x, v, t)
	case uint:
		return m.uintValue(uint64(x), v, t)
	case uint64:
		return m.uintValue(x, v, t)
	case float64:
		if x < minCardNumber || x >= 1e19 || x != math.Trunc(x) {
			return v, false
		}
		return m.numberText(strconv.FormatFloat(x, 'f', -1, 64), v, t)
	case []any:
		return m.sliceValue(x, t, depth)
	case map[string]any:
		return m.mapValue(x, t, depth)
	case error:
		s, changed := m.maskString(x.Error(), m.set, t)
		if !changed {
			return v, false
		}
		return s, true
	}
	return m.otherValue(v, t, depth)
}

// minCardNumber is the smallest 13-digit number.
const minCardNumber = 1e12

func (m *Masker) intValue(x int64, v any, t *tally) (any, bool) {
	if x < minCardNumber {
		return v, false // also every negative number
	}
	return m.numberText(strconv.FormatInt(x, 10), v, t)
}

func (m *Masker) uintValue(x uint64, v any, t *tally) (any, bool) {
	if x < minCardNumber {
		return v, false
	}
	return m.numberText(strconv.FormatUint(x, 10), v, t)
}

// numberText masks a number whose decimal form is text if it is a card.
func (m *Masker) numberText(text string, v any, t *tally) (any, bool) {
	if !m.set.has(rCard) || len(text) < 13 || len(text) > 19 {
		return v, false
	}
	digits := []byte(text)
	for _, c := range digits {
		if c < '0' || c > '9' {
			return v, false
		}
	}
	if !cardPrefix(digits) || !luhn(digits) {
		return v, false
	}
	t[rCard]++
	return cardMaskPrefix + text[len(text)-4:], true
}

func (m *Masker) bytesValue(b []byte, t *tally) (any, bool) {
	s, changed := m.maskString(string(b), m.set, t)
	switch {
	case !changed:
		return b, false
	case utf8.ValidString(s):
		return s, true
	}
	return []byte(s), true
}

func (m *Masker) rawJSON(raw json.RawMessage, t *tally, depth int) (any, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil || dec.More() {
		return m.bytesValue(raw, t)
	}
	masked, changed := m.value(doc, t, depth+1)
	if !changed {
		return raw, false
	}
	out, err := encodeJSON(masked)
	if err != nil {
		return m.bytesValue(raw, t) // cannot happen for decoded JSON
	}
	return json.RawMessage(out), true
}

func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode masked json: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func (m *Masker) sliceValue(x []any, t *tally, depth int) (any, bool) {
	var out []any
	for i, e := range x {
		me, changed := m.value(e, t, depth+1)
		if changed && out == nil {
			out = slices.Clone(x)
		}
		if out != nil {
			out[i] = me
		}
	}
	if out == nil {
		return x, false
	}
	return out, true
}

func (m *Masker) mapValue(x map[string]any, t *tally, depth int) (any, bool) {
	// Keys first: if one changes, rebuild in key order so that collisions
	// are numbered the same way every time.
	keysChanged := false
	for k := range x {
		var kt tally
		if _, changed := m.maskString(k, m.set, &kt); changed {
			keysChanged = true
			break
		}
	}
	if keysChanged {
		return m.rebuildMap(x, t, depth), true
	}

	var out map[string]any
	for k, e := range x {
		me, changed := m.value(e, t, depth+1)
		if changed && out == nil {
			out = make(map[string]any, len(x))
			for k2, e2 := range x {
				out[k2] = e2
			}
		}
		if out != nil {
			out[k] = me
		}
	}
	if out == nil {
		return x, false
	}
	return out, true
}

func (m *Masker) rebuildMap(x map[string]any, t *tally, depth int) map[string]any {
	keys := make([]string, 0, len(x))
	for k := range x {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make(map[string]any, len(x))
	for _, k := range keys {
		mk, _ := m.maskString(k, m.set, t)
		name := mk
		for n := 2; ; n++ {
			if _, taken := out[name]; !taken {
				break
			}
			name = mk + " #" + strconv.Itoa(n)
		}
		out[name], _ = m.value(x[k], t, depth+1)
	}
	return out
}

// otherValue masks a value of any other type through its JSON form.
func (m *Masker) otherValue(v any, t *tally, depth int) (any, bool) {
	var doc any
	raw, err := json.Marshal(v)
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		err = dec.Decode(&doc)
	}
	if err != nil {
		s, changed := m.maskString(fmt.Sprint(v), m.set, t)
		if !changed {
			return v, false
		}
		return s, true
	}

	var kt tally
	masked, changed := m.value(doc, &kt, depth+1)
	if !changed {
		return v, false
	}
	for r, n := range kt {
		t[r] += n
	}
	return masked, true
}

// deepValue masks a value nested too deep as its JSON text.
func (m *Masker) deepValue(v any, t *tally) (any, bool) {
	raw, err := json.Marshal(v)
	if err != nil {
		raw = []byte(fmt.Sprint(v))
	}
	s, _ := m.maskString(string(raw), m.set, t)
	return s, true
}

// Tally adds up findings over many calls without allocating for each
// value, and keeps the buffers those calls work in. The zero value is
// ready to use; a Tally is not safe for concurrent use.
type Tally struct {
	t  tally
	sc *scratch
}

// Counts returns the findings added so far, or nil when there are none.
func (t *Tally) Counts() Counts { return t.t.counts() }

func (t *Tally) scratch() *scratch {
	if t.sc == nil {
		t.sc = new(scratch)
	}
	return t.sc
}

// MaskString masks s as String does and adds its findings to t. changed
// reports whether the result differs from s.
func (m *Masker) MaskString(s string, t *Tally) (out string, changed bool) {
	return m.maskWith(s, m.set, &t.t, t.scratch())
}

// MaskInPlace masks v as Value does and adds its findings to t, but
// writes masked elements back into the []any and map[string]any it walks
// instead of copying them, for a result the caller owns. A map whose keys
// change is rebuilt, as Value rebuilds it. It returns the masked v.
func (m *Masker) MaskInPlace(v any, t *Tally) any {
	out, _ := m.valueInPlace(v, t, 0)
	return out
}

func (m *Masker) valueInPlace(v any, t *Tally, depth int) (any, bool) {
	if depth > maxDepth {
		return m.deepValue(v, &t.t)
	}
	switch x := v.(type) {
	case string:
		out, changed := m.MaskString(x, t)
		if !changed {
			return v, false
		}
		return out, true
	case []any:
		changed := false
		for i, e := range x {
			if me, ch := m.valueInPlace(e, t, depth+1); ch {
				x[i], changed = me, true
			}
		}
		return x, changed
	case map[string]any:
		for k := range x {
			var kt tally
			if _, ch := m.maskWith(k, m.set, &kt, t.scratch()); ch {
				return m.rebuildMap(x, &t.t, depth), true
			}
		}
		changed := false
		for k, e := range x {
			if me, ch := m.valueInPlace(e, t, depth+1); ch {
				x[k], changed = me, true
			}
		}
		return x, changed
	}
	return m.value(v, &t.t, depth)
}
