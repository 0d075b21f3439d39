package masking

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestValueRecursion(t *testing.T) {
	m := newMasker(t, Options{})
	when := time.Date(2024, 1, 15, 10, 0, 0, 0, time.UTC)
	in := map[string]any{
		"id":      int64(7),
		"company": "Northwind Traders",
		"email":   "alice@northwind.example",
		"created": when,
		"active":  true,
		"tags":    []any{"vip", "bob@example.com", nil, 3.5},
		"doc": map[string]any{
			"card":  "4111 1111 1111 1111",
			"inner": []any{map[string]any{"token": "sk_live_abcdefghijkl"}},
		},
	}
	want := map[string]any{
		"id":      int64(7),
		"company": "Northwind Traders",
		"email":   "a***@n***.example",
		"created": when,
		"active":  true,
		"tags":    []any{"vip", "b***@e***.com", nil, 3.5},
		"doc": map[string]any{
			"card":  "**** **** **** 1111",
			"inner": []any{map[string]any{"token": "[MASKED:stripe_key]"}},
		},
	}
	got, counts := m.Value(in)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Value =\n%#v\nwant\n%#v", got, want)
	}
	if !sameCounts(counts, map[string]int{"email": 2, "card": 1, "stripe_key": 1}) {
		t.Errorf("counts = %v", counts)
	}
	if in["email"] != "alice@northwind.example" {
		t.Error("Value modified its input")
	}
}

func TestValueSharesUnchangedParts(t *testing.T) {
	m := newMasker(t, Options{})
	clean := map[string]any{"a": "x", "b": []any{"y"}}
	got, counts := m.Value(clean)
	if counts != nil {
		t.Fatalf("counts = %v, want none", counts)
	}
	if reflect.ValueOf(got).UnsafePointer() != reflect.ValueOf(clean).UnsafePointer() {
		t.Error("an unchanged map was copied")
	}

	rows := []any{[]any{"x"}, []any{"carol@example.com"}}
	out, _ := m.Value(rows)
	outRows := out.([]any)
	if reflect.ValueOf(outRows[0]).UnsafePointer() != reflect.ValueOf(rows[0]).UnsafePointer() {
		t.Error("an unchanged row was copied")
	}
	if rows[1].([]any)[0] != "carol@example.com" {
		t.Error("input row modified")
	}
}

func TestValueKinds(t *testing.T) {
	m := newMasker(t, Options{})
	type customer struct {
		Name  string `json:"name"`
		Email string `json:"email"`
	}
	cases := []struct {
		name string
		in   any
		want any
	}{
		{"card as int64", int64(4111111111111111), "**** **** **** 1111"},
		{"card as uint64", uint64(5555555555554444), "**** **** **** 4444"},
		{"card as float64", float64(4242424242424242), "**** **** **** 4242"},
		{"card as json.Number", json.Number("378282246310005"), "**** **** **** 0005"},
		{"luhn-invalid int", int64(4111111111111112), int64(4111111111111112)},
		{"timestamp int", int64(1700000000000), int64(1700000000000)},
		{"small int", 42, 42},
		{"fraction", 4111111111111111.5, 4111111111111111.5},
		{"bytes of text", []byte("mail dave@example.com"), "mail d***@e***.com"},
		{"bytes unchanged", []byte("plain"), []byte("plain")},
		{"binary bytes", []byte("\xff\xfe erin@example.com"), []byte("\xff\xfe e***@e***.com")},
		{"raw json", json.RawMessage(`{"e":"frank@example.com","n":1.50}`),
			json.RawMessage(`{"e":"f***@e***.com","n":1.50}`)},
		{"raw json escaped", json.RawMessage(`"grace\u0040example.com"`),
			json.RawMessage(`"g***@e***.com"`)},
		{"raw json unchanged", json.RawMessage(`[1,2]`), json.RawMessage(`[1,2]`)},
		{"raw not json", json.RawMessage(`x heidi@example.com`), "x h***@e***.com"},
		{"struct through json", customer{"Ivan", "ivan@example.com"},
			map[string]any{"name": "Ivan", "email": "i***@e***.com"}},
		{"struct unchanged", customer{"Ivan", "none"}, customer{"Ivan", "none"}},
		{"typed slice", []string{"a", "judy@example.com"}, []any{"a", "j***@e***.com"}},
		{"error", errors.New("dial postgres://app:pw9@db failed"),
			"dial postgres://app:[MASKED:url_password]@db failed"},
		{"nil", nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := m.Value(tc.in)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Value(%#v) = %#v, want %#v", tc.in, got, tc.want)
			}
		})
	}
}

func TestValueMapKeys(t *testing.T) {
	m := newMasker(t, Options{})
	in := map[string]any{
		"alice@example.com": 1,
		"anna@example.com":  2,
		"plain":             "kate@example.com",
	}
	got, counts := m.Value(in)
	want := map[string]any{
		"a***@e***.com":    1,
		"a***@e***.com #2": 2,
		"plain":            "k***@e***.com",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Value = %#v, want %#v", got, want)
	}
	if counts["email"] != 3 {
		t.Errorf("counts = %v, want email=3", counts)
	}
}

func TestValueDeepNesting(t *testing.T) {
	m := newMasker(t, Options{})
	var v any = "leo@example.com"
	for range 200 {
		v = []any{v}
	}
	got, counts := m.Value(v)
	if counts["email"] != 1 {
		t.Fatalf("counts = %v", counts)
	}
	if s := fmt.Sprint(got); strings.Contains(s, "leo@example.com") {
		t.Errorf("deep value not masked: %.200s", s)
	}
}

func TestValueRowToJSON(t *testing.T) {
	// row_to_json and jsonb columns arrive as decoded JSON.
	m := newMasker(t, Options{})
	var doc any
	raw := `{"id":1,"email":"mia@example.com","card_number":"4242424242424242",` +
		`"notes":"call +1 415 555 2671"}`
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		t.Fatal(err)
	}
	got, _ := m.Value(doc)
	text, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{"mia@example.com", "4242424242424242"} {
		if strings.Contains(string(text), leak) {
			t.Errorf("%s leaked in %s", leak, text)
		}
	}
	if !strings.Contains(string(text), "+1 415 555 2671") {
		t.Errorf("phone number masked: %s", text)
	}
}
