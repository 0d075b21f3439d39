package policy

import (
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// RoundTrip exposes the JSON round trip the input walk is held to.
var RoundTrip = roundTrip

// ErrSchemaUnsupported is errSchemaUnsupported, for the external tests.
var ErrSchemaUnsupported = errSchemaUnsupported

// ConvertInput is the input walk with no schema to check.
func ConvertInput(v any) (ast.Value, error) { return inputValue(v, anySchema) }

// CheckedInput compiles schema for the input walk and returns the walk.
func CheckedInput(schema string) (func(any) (ast.Value, error), error) {
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(schema))
	if err != nil {
		return nil, err
	}
	s, err := compileInputSchema(doc, true)
	if err != nil {
		return nil, err
	}
	return func(v any) (ast.Value, error) { return inputValue(v, s) }, nil
}

// WithoutInlining compiles the policy as written, so that the tests can
// hold the compiled form to the same decisions.
func WithoutInlining() Option {
	return func(e *Engine) error {
		e.literal = true
		return nil
	}
}
