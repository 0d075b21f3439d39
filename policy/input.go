package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
)

// The policy input goes from the guard's Go values to OPA's values in one
// walk that also checks it against the input schema. Converting to generic
// maps, validating those with a general JSON Schema library, and then
// converting them again to OPA's values cost more per call than a small
// policy's evaluation. The walk understands the part of JSON Schema the
// guard's schema is written in; a schema using anything else is checked
// by the library as before (see Engine.prepareInput).

// jsonType is a set of JSON types, as the "type" keyword names them.
type jsonType uint8

const (
	typeNull jsonType = 1 << iota
	typeBoolean
	typeInteger // a number with no fractional part
	typeNumber  // any number; a schema naming it allows integers too
	typeString
	typeArray
	typeObject
)

var typeNames = map[string]jsonType{
	"null": typeNull, "boolean": typeBoolean, "integer": typeInteger,
	"number": typeNumber, "string": typeString, "array": typeArray,
	"object": typeObject,
}

func (t jsonType) String() string {
	var names []string
	for name, bit := range typeNames {
		if t&bit != 0 {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return strings.Join(names, " or ")
}

// inputSchema is one compiled (sub)schema. The zero value allows any
// value.
type inputSchema struct {
	types      jsonType // 0 allows every type
	never      bool     // the schema false: no value is valid
	properties map[string]*inputSchema
	// additional is the schema of properties not in properties; closed
	// says there may be none (additionalProperties: false).
	additional *inputSchema
	closed     bool
	items      *inputSchema
	required   []string

	// structs caches, per Go struct type, how its fields convert under
	// this schema.
	structs sync.Map // reflect.Type -> *structPlan
}

// anySchema allows every value.
var anySchema = &inputSchema{}

// errSchemaUnsupported means a schema uses a keyword the walk does not
// understand.
var errSchemaUnsupported = errors.New("policy: schema keyword not handled by the input walk")

// schemaDialect is the only $schema the walk accepts: the keywords it
// knows mean the same in older drafts, but not all their neighbours do.
const schemaDialect = "https://json-schema.org/draft/2020-12/schema"

// compileInputSchema compiles a JSON Schema document (as decoded from
// JSON) into an inputSchema, or returns errSchemaUnsupported when it
// uses a keyword other than type, properties, additionalProperties,
// items, required and the annotations.
func compileInputSchema(doc any, root bool) (*inputSchema, error) {
	switch d := doc.(type) {
	case bool:
		if d {
			return &inputSchema{}, nil
		}
		return &inputSchema{never: true}, nil
	case map[string]any:
		s := &inputSchema{}
		for k, v := range d {
			if err := s.keyword(k, v, root); err != nil {
				return nil, err
			}
		}
		return s, nil
	}
	return nil, errSchemaUnsupported // not a schema: the library says why
}

// keyword compiles one keyword of a schema object into s.
func (s *inputSchema) keyword(k string, v any, root bool) error {
	var err error
	switch k {
	case "$schema":
		if d, ok := v.(string); !ok || !root || d != schemaDialect {
			return errSchemaUnsupported
		}
	case "title", "description", "$comment":
	case "type":
		s.types, err = compileTypes(v)
	case "properties":
		props, ok := v.(map[string]any)
		if !ok {
			return errSchemaUnsupported
		}
		s.properties = make(map[string]*inputSchema, len(props))
		for name, sub := range props {
			if s.properties[name], err = compileInputSchema(sub, false); err != nil {
				return err
			}
		}
	case "additionalProperties":
		if b, ok := v.(bool); ok {
			s.closed = !b
			return nil
		}
		s.additional, err = compileInputSchema(v, false)
	case "items":
		s.items, err = compileInputSchema(v, false)
	case "required":
		list, ok := v.([]any)
		if !ok {
			return errSchemaUnsupported
		}
		for _, r := range list {
			name, ok := r.(string)
			if !ok {
				return errSchemaUnsupported
			}
			s.required = append(s.required, name)
		}
	default:
		return errSchemaUnsupported
	}
	return err
}

func compileTypes(v any) (jsonType, error) {
	names := []any{v}
	if list, ok := v.([]any); ok {
		names = list
	}
	var t jsonType
	for _, n := range names {
		name, _ := n.(string)
		bit, ok := typeNames[name]
		if !ok {
			return 0, errSchemaUnsupported
		}
		t |= bit
	}
	if t == 0 {
		return 0, errSchemaUnsupported // "type": [] allows nothing
	}
	return t, nil
}

// InputError is an input that does not match the input schema.
type InputError struct {
	// Pointer is the JSON Pointer of the value that does not match.
	Pointer string
	// Reason says how it does not.
	Reason string
}

func (e *InputError) Error() string {
	return fmt.Sprintf("at '%s': %s", e.Pointer, e.Reason)
}

// pathError is an InputError on its way up: each level adds its token.
type pathError struct {
	reverse []string
	reason  string
}

func (e *pathError) Error() string { return e.reason }

func mismatch(format string, args ...any) error {
	return &pathError{reason: fmt.Sprintf(format, args...)}
}

// at adds a path token to a mismatch found below it.
func at(err error, token string) error {
	if pe, ok := err.(*pathError); ok {
		pe.reverse = append(pe.reverse, token)
	}
	return err
}

// finish turns a mismatch into an InputError with its JSON Pointer.
func finish(err error) error {
	pe, ok := err.(*pathError)
	if !ok {
		return err
	}
	var b strings.Builder
	for _, tok := range slices.Backward(pe.reverse) {
		b.WriteByte('/')
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(tok, "~", "~0"), "/", "~1"))
	}
	return &InputError{Pointer: b.String(), Reason: pe.reason}
}

// check reports whether a value of type t is valid against s's type.
func (s *inputSchema) check(t jsonType) error {
	switch {
	case s.never:
		return mismatch("no value is allowed here")
	case s.types == 0, s.types&t != 0:
		return nil
	case t == typeInteger && s.types&typeNumber != 0:
		return nil
	case t == typeNumber && s.types&typeInteger != 0:
		return mismatch("got number, want integer")
	}
	got := t
	if t == typeInteger {
		got = typeNumber
	}
	return mismatch("got %v, want %v", got, s.types)
}

// property returns the schema of the object property name, or a mismatch
// when the object may not have it.
func (s *inputSchema) property(name string) (*inputSchema, error) {
	if p, ok := s.properties[name]; ok {
		return p, nil
	}
	switch {
	case s.additional != nil:
		return s.additional, nil
	case s.closed:
		return nil, mismatch("additional property %q not allowed", name)
	}
	return anySchema, nil
}

func (s *inputSchema) itemSchema() *inputSchema {
	if s.items != nil {
		return s.items
	}
	return anySchema
}

// missing returns a mismatch naming the first required property has
// does not report present.
func (s *inputSchema) missing(has func(string) bool) error {
	for _, r := range s.required {
		if !has(r) {
			return mismatch("missing property %q", r)
		}
	}
	return nil
}

// inputValue converts v to OPA's value, checking it against s on the
// way. The value is the one encoding v to JSON and decoding that would
// give (see roundTrip), built directly.
func inputValue(v any, s *inputSchema) (ast.Value, error) {
	val, err := toValue(v, s)
	if err != nil {
		return nil, finish(err)
	}
	return val, nil
}

func toValue(v any, s *inputSchema) (ast.Value, error) {
	switch x := v.(type) {
	case nil:
		return nullValue(s)
	case string:
		return stringValue(x, s)
	case bool:
		if err := s.check(typeBoolean); err != nil {
			return nil, err
		}
		return ast.InternedValue(x), nil
	case json.Number:
		return numberValue(string(x), s)
	case float64:
		return floatValue(x, 64, s)
	case map[string]any:
		if x == nil {
			return nullValue(s)
		}
		return mapValue(x, s)
	case []any:
		if x == nil {
			return nullValue(s)
		}
		if err := s.check(typeArray); err != nil {
			return nil, err
		}
		items := s.itemSchema()
		return arrayValue(len(x), func(i int) (ast.Value, error) { return toValue(x[i], items) })
	case []string:
		if x == nil {
			return nullValue(s)
		}
		if err := s.check(typeArray); err != nil {
			return nil, err
		}
		items := s.itemSchema()
		return arrayValue(len(x), func(i int) (ast.Value, error) { return stringValue(x[i], items) })
	}
	return reflectValue(reflect.ValueOf(v), s)
}

func nullValue(s *inputSchema) (ast.Value, error) {
	if err := s.check(typeNull); err != nil {
		return nil, err
	}
	return ast.NullValue, nil
}

func stringValue(x string, s *inputSchema) (ast.Value, error) {
	if err := s.check(typeString); err != nil {
		return nil, err
	}
	return ast.InternedValue(validString(x)), nil
}

// numberValue converts the JSON text of a number.
func numberValue(text string, s *inputSchema) (ast.Value, error) {
	if text == "" {
		text = "0" // as encoding/json writes an empty json.Number
	}
	if !validNumber(text) {
		return nil, fmt.Errorf("policy: encode input: invalid number literal %q", text)
	}
	t := typeNumber
	if r, ok := new(big.Rat).SetString(text); ok && r.IsInt() {
		t = typeInteger
	}
	if err := s.check(t); err != nil {
		return nil, err
	}
	if term := ast.InternedIntNumberTermFromString(text); term != nil {
		return term.Value, nil
	}
	n, err := ast.NumberChecked(text)
	if err != nil {
		return nil, fmt.Errorf("policy: convert input: %w", err)
	}
	return n, nil
}

func intValue(i int64, s *inputSchema) (ast.Value, error) {
	if err := s.check(typeInteger); err != nil {
		return nil, err
	}
	if ast.HasInternedIntNumberTerm(int(i)) {
		return ast.InternedValue(int(i)), nil
	}
	return ast.Number(strconv.FormatInt(i, 10)), nil
}

func floatValue(f float64, bits int, s *inputSchema) (ast.Value, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("policy: unsupported number %v", f)
	}
	// encoding/json's spelling, so that the value is the one decoding
	// its text gives.
	var raw []byte
	var err error
	if bits == 32 {
		raw, err = json.Marshal(float32(f))
	} else {
		raw, err = json.Marshal(f)
	}
	if err != nil {
		return nil, fmt.Errorf("policy: encode input: %w", err)
	}
	return numberValue(string(raw), s)
}

// validNumber reports whether text is a number as JSON writes it.
func validNumber(text string) bool {
	i := 0
	digits := func() int {
		start := i
		for i < len(text) && text[i] >= '0' && text[i] <= '9' {
			i++
		}
		return i - start
	}
	if i < len(text) && text[i] == '-' {
		i++
	}
	switch {
	case i < len(text) && text[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(text) && text[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(text) && (text[i] == 'e' || text[i] == 'E') {
		i++
		if i < len(text) && (text[i] == '+' || text[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(text)
}

// arrayValue builds an array of n elements, the i-th given by elem.
func arrayValue(n int, elem func(int) (ast.Value, error)) (ast.Value, error) {
	terms := make([]ast.Term, n)
	ptrs := make([]*ast.Term, n)
	for i := range n {
		v, err := elem(i)
		if err != nil {
			return nil, at(err, strconv.Itoa(i))
		}
		terms[i].Value = v
		ptrs[i] = &terms[i]
	}
	return ast.NewArray(ptrs...), nil
}

// objectBuilder collects the members of an object.
type objectBuilder struct {
	terms []ast.Term
	kvs   [][2]*ast.Term
}

func newObjectBuilder(n int) *objectBuilder {
	return &objectBuilder{terms: make([]ast.Term, 0, 2*n), kvs: make([][2]*ast.Term, 0, n)}
}

func (b *objectBuilder) add(key, val ast.Value) {
	b.terms = append(b.terms, ast.Term{Value: key}, ast.Term{Value: val})
	n := len(b.terms)
	b.kvs = append(b.kvs, [2]*ast.Term{&b.terms[n-2], &b.terms[n-1]})
}

// has reports whether the object has the member name.
func (b *objectBuilder) has(name string) bool {
	for _, kv := range b.kvs {
		if kv[0].Value.(ast.String) == ast.String(name) {
			return true
		}
	}
	return false
}

func (b *objectBuilder) object() ast.Value { return ast.NewObject(b.kvs...) }

func mapValue(m map[string]any, s *inputSchema) (ast.Value, error) {
	if err := s.check(typeObject); err != nil {
		return nil, err
	}
	b := newObjectBuilder(len(m))
	for k, e := range m {
		name := validString(k)
		ps, err := s.property(name)
		if err != nil {
			return nil, err
		}
		v, err := toValue(e, ps)
		if err != nil {
			return nil, at(err, name)
		}
		b.add(ast.InternedValue(name), v)
	}
	if err := s.missing(b.has); err != nil {
		return nil, err
	}
	return b.object(), nil
}

// reflectValue converts what toValue has no case for: structs, pointers,
// typed slices and maps, other numbers. Types that marshal themselves,
// which encoding/json leaves to their own methods, go through a JSON round trip.
func reflectValue(v reflect.Value, s *inputSchema) (ast.Value, error) {
	if !v.IsValid() {
		return nullValue(s)
	}
	t := v.Type()
	if marshalsItself(t) {
		return viaJSON(v, s)
	}
	switch v.Kind() {
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			return nullValue(s)
		}
		return reflectValue(v.Elem(), s)
	case reflect.String:
		return stringValue(v.String(), s)
	case reflect.Bool:
		if err := s.check(typeBoolean); err != nil {
			return nil, err
		}
		return ast.InternedValue(v.Bool()), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return intValue(v.Int(), s)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Uintptr:
		if u := v.Uint(); u <= math.MaxInt64 {
			return intValue(int64(u), s)
		}
		return numberValue(strconv.FormatUint(v.Uint(), 10), s)
	case reflect.Float32:
		return floatValue(v.Float(), 32, s)
	case reflect.Float64:
		return floatValue(v.Float(), 64, s)
	case reflect.Slice:
		if v.IsNil() {
			return nullValue(s)
		}
		if t.Elem().Kind() == reflect.Uint8 {
			return viaJSON(v, s) // []byte encodes as base64
		}
		fallthrough
	case reflect.Array:
		if err := s.check(typeArray); err != nil {
			return nil, err
		}
		items := s.itemSchema()
		return arrayValue(v.Len(), func(i int) (ast.Value, error) {
			return reflectValue(v.Index(i), items)
		})
	case reflect.Map:
		if t.Key() != reflect.TypeFor[string]() {
			return viaJSON(v, s)
		}
		if v.IsNil() {
			return nullValue(s)
		}
		return reflectMap(v, s)
	case reflect.Struct:
		return structValue(v, s)
	}
	return viaJSON(v, s)
}

// marshalsItself reports whether t (or a pointer to it) has its own JSON
// or text encoding.
func marshalsItself(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return t.Implements(jsonMarshaler) || t.Implements(textMarshaler) ||
		p.Implements(jsonMarshaler) || p.Implements(textMarshaler)
}

func reflectMap(v reflect.Value, s *inputSchema) (ast.Value, error) {
	if err := s.check(typeObject); err != nil {
		return nil, err
	}
	b := newObjectBuilder(v.Len())
	it := v.MapRange()
	for it.Next() {
		name := validString(it.Key().String())
		ps, err := s.property(name)
		if err != nil {
			return nil, err
		}
		val, err := reflectValue(it.Value(), ps)
		if err != nil {
			return nil, at(err, name)
		}
		b.add(ast.InternedValue(name), val)
	}
	if err := s.missing(b.has); err != nil {
		return nil, err
	}
	return b.object(), nil
}

// structPlan is how a struct type converts under one schema.
type structPlan struct {
	fields []fieldPlan
	// viaJSON is set for a type that marshals itself.
	viaJSON bool
}

// fieldPlan is one encoded field.
type fieldPlan struct {
	field
	key    ast.Value
	schema *inputSchema
	// err is set when the schema allows no property of this name: a
	// value for the field is then a mismatch.
	err string
}

func (s *inputSchema) plan(t reflect.Type) *structPlan {
	if p, ok := s.structs.Load(t); ok {
		return p.(*structPlan)
	}
	p := &structPlan{}
	fields, ok := structFields(t)
	if !ok {
		p.viaJSON = true
	}
	for _, f := range fields {
		fp := fieldPlan{field: f, key: ast.String(f.name)}
		ps, err := s.property(f.name)
		if err != nil {
			fp.err = err.Error()
		}
		fp.schema = ps
		p.fields = append(p.fields, fp)
	}
	s.structs.Store(t, p)
	return p
}

func structValue(v reflect.Value, s *inputSchema) (ast.Value, error) {
	p := s.plan(v.Type())
	if p.viaJSON {
		return viaJSON(v, s)
	}
	if err := s.check(typeObject); err != nil {
		return nil, err
	}
	b := newObjectBuilder(len(p.fields))
	for i := range p.fields {
		f := &p.fields[i]
		fv := v.Field(f.index)
		if f.omitEmpty && emptyValue(fv) {
			continue
		}
		if f.err != "" {
			return nil, mismatch("%s", f.err)
		}
		val, err := reflectValue(fv, f.schema)
		if err != nil {
			return nil, at(err, f.name)
		}
		b.add(f.key, val)
	}
	if err := s.missing(b.has); err != nil {
		return nil, err
	}
	return b.object(), nil
}

// viaJSON converts a value through its JSON encoding.
func viaJSON(v reflect.Value, s *inputSchema) (ast.Value, error) {
	generic, err := roundTrip(v.Interface())
	if err != nil {
		return nil, err
	}
	return toValue(generic, s)
}
