package sqlfacts

import (
	"reflect"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The walks below visit every node of a parse tree, and asking protobuf's
// reflection about each field (is it set, what does it hold, wrap it as a
// list) cost more than the facts drawn from the tree. The parse nodes are
// generated Go structs, so the fields that can hold nodes are found once
// per type, by Go reflection, and read directly.

// fieldKind says how a struct field holds messages.
type fieldKind int

const (
	oneMessage   fieldKind = iota // *T
	messageList                   // []*T
	oneofMessage                  // an interface holding a wrapper of one *T
)

// childField is one field of a parse node that can hold messages.
type childField struct {
	index int
	kind  fieldKind
	// name is the field's name in the schema; a oneof's member names
	// are on their wrappers.
	name protoreflect.Name
}

// childFields caches childFieldsOf by struct type.
var childFields sync.Map

// childFieldsOf returns the fields of the struct type t that can hold
// messages, in declared order (the order of the schema: close to text
// order). Scalars, strings, enums and maps are left out.
func childFieldsOf(t reflect.Type) []childField {
	if v, ok := childFields.Load(t); ok {
		return v.([]childField)
	}
	var out []childField
	for i := range t.NumField() {
		sf := t.Field(i)
		switch {
		case !sf.IsExported():
		case sf.Tag.Get("protobuf_oneof") != "":
			out = append(out, childField{index: i, kind: oneofMessage})
		case sf.Type.Kind() == reflect.Pointer && isMessage(sf.Type):
			out = append(out, childField{index: i, kind: oneMessage, name: tagName(sf)})
		case sf.Type.Kind() == reflect.Slice && sf.Type.Elem().Kind() == reflect.Pointer &&
			isMessage(sf.Type.Elem()):
			out = append(out, childField{index: i, kind: messageList, name: tagName(sf)})
		}
	}
	childFields.Store(t, out)
	return out
}

var messageType = reflect.TypeFor[proto.Message]()

func isMessage(t reflect.Type) bool { return t.Implements(messageType) }

// tagName returns the schema name of a generated field from its tag.
func tagName(sf reflect.StructField) protoreflect.Name {
	for part := range strings.SplitSeq(sf.Tag.Get("protobuf"), ",") {
		if name, ok := strings.CutPrefix(part, "name="); ok {
			return protoreflect.Name(name)
		}
	}
	return protoreflect.Name(sf.Name)
}

// oneofMember is the member a oneof wrapper type holds.
type oneofMember struct {
	name    protoreflect.Name
	message bool // the member is a message (not a scalar)
}

// oneofMembers caches oneofMemberOf by wrapper type.
var oneofMembers sync.Map

func oneofMemberOf(t reflect.Type) oneofMember {
	if v, ok := oneofMembers.Load(t); ok {
		return v.(oneofMember)
	}
	sf := t.Elem().Field(0)
	m := oneofMember{name: tagName(sf),
		message: sf.Type.Kind() == reflect.Pointer && isMessage(sf.Type)}
	oneofMembers.Store(t, m)
	return m
}

// eachChild calls f on every message held directly by m (each element of
// a list on its own), with the name of the field holding it, in declared
// order, until f returns false. A Node holds one message: the member of
// its oneof that is set.
func eachChild(m proto.Message, f func(protoreflect.Name, proto.Message) bool) {
	v := reflect.ValueOf(m)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return
	}
	v = v.Elem()
	for _, cf := range childFieldsOf(v.Type()) {
		fv := v.Field(cf.index)
		switch cf.kind {
		case oneMessage:
			if !fv.IsNil() && !f(cf.name, fv.Interface().(proto.Message)) {
				return
			}
		case messageList:
			for i := range fv.Len() {
				if !f(cf.name, fv.Index(i).Interface().(proto.Message)) {
					return
				}
			}
		case oneofMessage:
			if fv.IsNil() {
				continue
			}
			w := fv.Elem() // *Wrapper
			mem := oneofMemberOf(w.Type())
			inner := w.Elem().Field(0)
			if !mem.message || inner.IsNil() {
				continue
			}
			if !f(mem.name, inner.Interface().(proto.Message)) {
				return
			}
		}
	}
}
