package guard

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"

	"github.com/mcp-guard/mcp-guard/shellfacts"
	"github.com/mcp-guard/mcp-guard/sqlfacts"
	"github.com/mcp-guard/mcp-guard/tools"
)

// PolicyInput documents the shape of the policy's input. The guard builds
// the input as a map; this type exists to derive its JSON Schema, which
// the policy is type-checked against at compile time (a rule that reads a
// field that does not exist fails to compile) and every input is validated
// against before evaluation.
type PolicyInput struct {
	Tool      string            `json:"tool"`
	Target    TargetInput       `json:"target"`
	Caller    CallerInput       `json:"caller"`
	Arguments map[string]any    `json:"arguments"`
	SQL       *sqlfacts.Facts   `json:"sql,omitempty"`
	Shell     *shellfacts.Facts `json:"shell,omitempty"`
	File      *tools.FileFacts  `json:"file,omitempty"`
}

// TargetInput is input.target.
type TargetInput struct {
	Name   string            `json:"name"`
	Kind   string            `json:"kind"`
	Labels map[string]string `json:"labels"`
}

// CallerInput is input.caller.
type CallerInput struct {
	Subject string   `json:"subject"`
	Issuer  string   `json:"issuer"`
	Email   string   `json:"email"`
	Groups  []string `json:"groups"`
}

// InputSchema returns the JSON Schema of the policy input.
func InputSchema() []byte {
	s := schemaFor(reflect.TypeOf(PolicyInput{}), map[reflect.Type]bool{})
	s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	s["title"] = "mcp-guard policy input"
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		panic(err)
	}
	return b
}

// schemaFor derives a schema from a Go type as encoding/json renders it.
// Objects from structs allow no other properties, so a misspelled field is
// an error, and require every field encoding/json always writes (all but
// omitempty ones), so a policy may rely on them; slices, maps and pointers
// may be null, except in a field tagged schema:"notnull", which its
// producer always fills (a null list would read as an empty one, and turn
// off every rule that iterates it).
func schemaFor(t reflect.Type, seen map[reflect.Type]bool) map[string]any {
	nullable := func(s map[string]any) map[string]any {
		if typ, ok := s["type"].(string); ok {
			s["type"] = []string{typ, "null"}
		}
		return s
	}
	switch t.Kind() {
	case reflect.Pointer:
		return nullable(schemaFor(t.Elem(), seen))
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		return nullable(map[string]any{"type": "array", "items": schemaFor(t.Elem(), seen)})
	case reflect.Map:
		s := map[string]any{"type": "object"}
		if t.Elem().Kind() != reflect.Interface {
			s["additionalProperties"] = schemaFor(t.Elem(), seen)
		}
		return nullable(s)
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		if seen[t] {
			return map[string]any{"type": "object"}
		}
		seen[t] = true
		defer delete(seen, t)
		props := map[string]any{}
		var required []string
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if f.Anonymous && name == "" {
				inner := schemaFor(f.Type, seen)
				if p, ok := inner["properties"].(map[string]any); ok {
					for k, v := range p {
						props[k] = v
					}
				}
				continue
			}
			if name == "" {
				name = f.Name
			}
			fs := schemaFor(f.Type, seen)
			if f.Tag.Get("schema") == "notnull" {
				fs = notNull(fs)
			}
			props[name] = fs
			if !slices.Contains(strings.Split(opts, ","), "omitempty") {
				required = append(required, name)
			}
		}
		s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
		if len(required) > 0 {
			s["required"] = required
		}
		return s
	}
	return map[string]any{}
}

// notNull drops null from a schema's types.
func notNull(s map[string]any) map[string]any {
	types, ok := s["type"].([]string)
	if !ok {
		return s
	}
	types = slices.DeleteFunc(slices.Clone(types), func(t string) bool { return t == "null" })
	if len(types) == 1 {
		s["type"] = types[0]
	} else {
		s["type"] = types
	}
	return s
}
