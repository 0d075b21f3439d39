package approvals

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
)

// maxDepth bounds the nesting of arguments, so hostile input cannot exhaust
// the stack of the canonicaliser.
const maxDepth = 64

// Canonical returns the canonical JSON of a value: object keys sorted, no
// insignificant space, no HTML escaping, numbers exactly as written. Empty
// input is the empty object. Duplicate keys, trailing data and invalid JSON
// are errors, because two readers could disagree on what they mean.
func Canonical(raw []byte) (json.RawMessage, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return json.RawMessage("{}"), nil
	}

	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var buf bytes.Buffer
	if err := writeValue(&buf, dec, 0); err != nil {
		return nil, fmt.Errorf("canonicalise arguments: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("canonicalise arguments: data after the JSON value")
	}
	return buf.Bytes(), nil
}

// Digest returns the hex SHA-256 of the canonical JSON object
// {"arguments":...,"target":...,"tool":...}: two calls share a digest
// exactly when they ask for the same thing.
func Digest(tool, target string, args json.RawMessage) (string, error) {
	canon, err := Canonical(args)
	if err != nil {
		return "", err
	}
	return digestCanonical(tool, target, canon), nil
}

// digestCanonical hashes arguments that are already canonical.
func digestCanonical(tool, target string, canon []byte) string {
	var buf bytes.Buffer
	buf.WriteString(`{"arguments":`)
	buf.Write(canon)
	buf.WriteString(`,"target":`)
	writeString(&buf, target)
	buf.WriteString(`,"tool":`)
	writeString(&buf, tool)
	buf.WriteString("}")
	sum := sha256.Sum256(buf.Bytes())
	return hex.EncodeToString(sum[:])
}

// writeValue copies the next JSON value from dec to buf in canonical form.
func writeValue(buf *bytes.Buffer, dec *json.Decoder, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("nested deeper than %d levels", maxDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}

	switch v := tok.(type) {
	case json.Delim:
		if v == '{' {
			return writeObject(buf, dec, depth)
		}
		if v == '[' {
			return writeArray(buf, dec, depth)
		}
		return fmt.Errorf("unexpected %q", v)
	case string:
		writeString(buf, v)
	case json.Number:
		buf.WriteString(v.String())
	case bool:
		if v {
			buf.WriteString("true")
		} else {
			buf.WriteString("false")
		}
	case nil:
		buf.WriteString("null")
	default:
		return fmt.Errorf("unexpected token %T", tok)
	}
	return nil
}

// writeObject reads members up to the closing brace and writes them with
// their keys sorted.
func writeObject(buf *bytes.Buffer, dec *json.Decoder, depth int) error {
	members := map[string][]byte{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, ok := tok.(string)
		if !ok {
			return errors.New("object key is not a string")
		}
		if _, dup := members[key]; dup {
			return fmt.Errorf("duplicate object key %q", key)
		}
		var val bytes.Buffer
		if err := writeValue(&val, dec, depth+1); err != nil {
			return err
		}
		members[key] = val.Bytes()
	}
	if _, err := dec.Token(); err != nil {
		return err
	}

	keys := make([]string, 0, len(members))
	for k := range members {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	buf.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		writeString(buf, k)
		buf.WriteByte(':')
		buf.Write(members[k])
	}
	buf.WriteByte('}')
	return nil
}

// writeArray copies the elements up to the closing bracket.
func writeArray(buf *bytes.Buffer, dec *json.Decoder, depth int) error {
	buf.WriteByte('[')
	for i := 0; dec.More(); i++ {
		if i > 0 {
			buf.WriteByte(',')
		}
		if err := writeValue(buf, dec, depth+1); err != nil {
			return err
		}
	}
	buf.WriteByte(']')
	_, err := dec.Token()
	return err
}

// writeString writes s as a JSON string without HTML escaping.
func writeString(buf *bytes.Buffer, s string) {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	// Encoding a string cannot fail.
	_ = enc.Encode(s)
	buf.Truncate(buf.Len() - 1) // drop the newline Encode adds
}
