package guard

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestCompletionJSON checks that splicing the result into the completion
// gives the same record, field for field, as encoding it through
// encoding/json, and that the text is compact, valid JSON.
func TestCompletionJSON(t *testing.T) {
	tests := []struct {
		name   string
		body   CompletionBody
		result any
	}{
		{"empty result", CompletionBody{CallID: "c1", Outcome: "ok"}, map[string]any{}},
		{"rows and counts", CompletionBody{CallID: "c2", Outcome: "ok", ResultSize: 99,
			Masked: map[string]int{"email": 2}, DurationMS: 7},
			map[string]any{"columns": []any{"id", "email"}, "rows": []any{[]any{1, "[email]"}, []any{2, "x \"y\" \u2028"}}}},
		{"error with request", CompletionBody{CallID: "c3", Outcome: "error", Reason: "boom", RequestID: "r1", IsError: true},
			map[string]any{"guard": map[string]any{"outcome": "error"}}},
		{"null result", CompletionBody{CallID: "c4", Outcome: "ok"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := json.Marshal(tc.result)
			if err != nil {
				t.Fatal(err)
			}
			got, err := completionJSON(tc.body, raw)
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(got) {
				t.Fatalf("not valid JSON: %s", got)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, got); err != nil || !bytes.Equal(compact.Bytes(), got) {
				t.Fatalf("not compact: %s", got)
			}
			want := tc.body
			want.Result = json.RawMessage(raw)
			wantText, err := json.Marshal(want)
			if err != nil {
				t.Fatal(err)
			}
			var a, b map[string]any
			if err := json.Unmarshal(got, &a); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(wantText, &b); err != nil {
				t.Fatal(err)
			}
			ga, _ := json.Marshal(a)
			gb, _ := json.Marshal(b)
			if !bytes.Equal(ga, gb) {
				t.Errorf("spliced record differs:\n got %s\nwant %s", ga, gb)
			}
		})
	}
}
