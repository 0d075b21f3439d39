package policy_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

type tagged struct {
	Name     string            `json:"name"`
	Skip     string            `json:"-"`
	Opt      string            `json:"opt,omitempty"`
	OptSlice []string          `json:"opt_slice,omitempty"`
	Nil      []int             `json:"nil"`
	Ptr      *tagged           `json:"ptr"`
	Untagged int8              `json:""`
	Map      map[string]uint16 `json:"map"`
	Any      any               `json:"any"`
	Arr      [2]bool           `json:"arr"`
	unexp    int
}

type embedded struct {
	tagged
	Extra string `json:"extra"`
}

type stringy struct {
	N int `json:"n,string"`
}

type selfMarshal struct{ v string }

func (s selfMarshal) MarshalJSON() ([]byte, error) { return json.Marshal("custom:" + s.v) }

type oddTag struct {
	A string `json:"a\\b"`
}

// plainCases are values of every kind the input conversion meets, and
// of kinds it hands to encoding/json.
func plainCases() []struct {
	name string
	v    any
} {
	return []struct {
		name string
		v    any
	}{
		{"nil", nil},
		{"string", "text"},
		{"invalid utf8", "a\xffb\xc3(c\xe2\x82"},
		{"invalid utf8 key", map[string]any{"k\xfe": "v"}},
		{"json number", json.Number("12.50")},
		{"ints", []any{int64(-3), uint8(7), 1 << 40}},
		{"floats", []any{1.5, float32(0.1), 1e21, 0.0}},
		{"nan", []any{1.0, nan()}},
		{"nil slice", []string(nil)},
		{"nil map", map[string]any(nil)},
		{"struct", tagged{Name: "n", Skip: "s", Nil: nil, Untagged: 4,
			Map: map[string]uint16{"a": 1}, Any: []string{"x"}, unexp: 9,
			Ptr: &tagged{Opt: "o", OptSlice: []string{"y"}}}},
		{"pointer to struct", &tagged{Name: "p"}},
		{"embedded", embedded{tagged: tagged{Name: "in"}, Extra: "e"}},
		{"string option", stringy{N: 5}},
		{"marshaler", map[string]any{"m": selfMarshal{"v"}}},
		{"time", map[string]any{"t": time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)}},
		{"bytes", []byte("raw")},
		{"int keys", map[int]string{1: "a"}},
		{"odd tag", oddTag{A: "a"}},
		{"raw message", map[string]any{"r": json.RawMessage(`{"a":[1,2]}`)}},
	}
}

func nan() float64 {
	var zero float64
	return zero / zero
}

// seeds reads the string values of a fuzz corpus directory.
func seeds(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(raw)) {
			line = strings.TrimSpace(line)
			if v, ok := strings.CutPrefix(line, "string("); ok {
				if s, err := strconv.Unquote(strings.TrimSuffix(v, ")")); err == nil {
					out = append(out, s)
				}
			}
		}
	}
	return out
}
