package policy

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// plain returns the value that decoding v's JSON encoding would give, with
// numbers kept as json.Number: maps of strings, slices of any, strings,
// booleans, json.Number and nil. The guard's facts are Go structs, and
// encoding them to JSON only to decode the text again cost more than the
// rest of preparing the input; plain walks them directly instead.
//
// It follows encoding/json for what the facts use (field tags, omitempty,
// "-", nil slices and maps as null, invalid UTF-8 replaced byte by byte)
// and hands any other type (one that marshals itself, an embedded struct,
// a map with keys that are not strings) to encoding/json, so the result
// is always what the JSON round trip would give.
func plain(v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		return validString(x), nil
	case bool:
		return x, nil
	case json.Number:
		return x, nil
	case map[string]any:
		if x == nil {
			return nil, nil
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			p, err := plain(e)
			if err != nil {
				return nil, err
			}
			out[validString(k)] = p
		}
		return out, nil
	case []any:
		if x == nil {
			return nil, nil
		}
		out := make([]any, len(x))
		for i, e := range x {
			p, err := plain(e)
			if err != nil {
				return nil, err
			}
			out[i] = p
		}
		return out, nil
	case []string:
		if x == nil {
			return nil, nil
		}
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = validString(e)
		}
		return out, nil
	}
	return plainValue(reflect.ValueOf(v))
}

var (
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

func plainValue(v reflect.Value) (any, error) {
	if !v.IsValid() {
		return nil, nil
	}
	t := v.Type()
	if t.Implements(jsonMarshaler) || t.Implements(textMarshaler) ||
		reflect.PointerTo(t).Implements(jsonMarshaler) || reflect.PointerTo(t).Implements(textMarshaler) {
		return roundTrip(v.Interface())
	}
	switch v.Kind() {
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			return nil, nil
		}
		return plainValue(v.Elem())
	case reflect.String:
		return validString(v.String()), nil
	case reflect.Bool:
		return v.Bool(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return json.Number(strconv.FormatInt(v.Int(), 10)), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return json.Number(strconv.FormatUint(v.Uint(), 10)), nil
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("policy: unsupported number %v", f)
		}
		// The decoded number, not its spelling, is what matters: OPA
		// compares numbers by value.
		return roundTrip(v.Interface())
	case reflect.Slice:
		if v.IsNil() {
			return nil, nil
		}
		if t.Elem().Kind() == reflect.Uint8 {
			return roundTrip(v.Interface()) // []byte encodes as base64
		}
		fallthrough
	case reflect.Array:
		out := make([]any, v.Len())
		for i := range out {
			p, err := plainValue(v.Index(i))
			if err != nil {
				return nil, err
			}
			out[i] = p
		}
		return out, nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String || t.Key() != reflect.TypeFor[string]() {
			return roundTrip(v.Interface())
		}
		if v.IsNil() {
			return nil, nil
		}
		out := make(map[string]any, v.Len())
		it := v.MapRange()
		for it.Next() {
			p, err := plainValue(it.Value())
			if err != nil {
				return nil, err
			}
			out[validString(it.Key().String())] = p
		}
		return out, nil
	case reflect.Struct:
		fields, ok := structFields(t)
		if !ok {
			return roundTrip(v.Interface())
		}
		out := make(map[string]any, len(fields))
		for _, f := range fields {
			fv := v.Field(f.index)
			if f.omitEmpty && emptyValue(fv) {
				continue
			}
			p, err := plainValue(fv)
			if err != nil {
				return nil, err
			}
			out[f.name] = p
		}
		return out, nil
	}
	return roundTrip(v.Interface())
}

// roundTrip is the slow path: encode to JSON and decode with numbers kept.
func roundTrip(v any) (any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("policy: encode input: %w", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("policy: decode input: %w", err)
	}
	return out, nil
}

// validString replaces each byte that is not part of valid UTF-8 with
// U+FFFD, as encoding/json does.
func validString(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func emptyValue(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool:
		return !v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int() == 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Uint() == 0
	case reflect.Float32, reflect.Float64:
		return v.Float() == 0
	case reflect.Interface, reflect.Pointer:
		return v.IsNil()
	}
	return false
}

// field is one encoded field of a struct.
type field struct {
	index     int
	name      string
	omitEmpty bool
}

// fieldCache maps a struct type to its []field, or to nil when the type
// uses something plain leaves to encoding/json.
var fieldCache sync.Map

var errUnsupported = errors.New("unsupported struct")

func structFields(t reflect.Type) ([]field, bool) {
	if f, ok := fieldCache.Load(t); ok {
		fs := f.([]field)
		return fs, fs != nil
	}
	fs, err := buildFields(t)
	if err != nil {
		fs = nil
	}
	fieldCache.Store(t, fs)
	return fs, fs != nil
}

func buildFields(t reflect.Type) ([]field, error) {
	fs := make([]field, 0, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if sf.Anonymous {
			return nil, errUnsupported
		}
		if !sf.IsExported() {
			continue
		}
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		f := field{index: i, name: name}
		for opt := range strings.SplitSeq(opts, ",") {
			switch opt {
			case "omitempty":
				f.omitEmpty = true
			case "", "omitzero":
				if opt == "omitzero" {
					return nil, errUnsupported
				}
			default:
				return nil, errUnsupported // ",string" and future options
			}
		}
		if f.name == "" {
			f.name = sf.Name
		} else if !validTagName(f.name) {
			return nil, errUnsupported
		}
		fs = append(fs, f)
	}
	// Two fields of one name: encoding/json's precedence rules decide,
	// so leave the type to it.
	seen := make(map[string]bool, len(fs))
	for _, f := range fs {
		if seen[f.name] {
			return nil, errUnsupported
		}
		seen[f.name] = true
	}
	return fs, nil
}

// validTagName reports whether encoding/json would use name as given; it
// ignores a tag name with characters outside its accepted set.
func validTagName(name string) bool {
	for _, c := range name {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c):
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		default:
			return false
		}
	}
	return true
}
