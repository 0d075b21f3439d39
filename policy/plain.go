package policy

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"
)

// The helpers below follow encoding/json for what the guard's facts use
// (field tags, omitempty, "-", invalid UTF-8 replaced byte by byte): the
// input walk (input.go) uses them to build OPA's value from the facts as
// their JSON encoding would give it.

var (
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

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
