package main

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// sum is a Summary of n samples: median, p99, mean and max in µs.
func sum(n int, p50, p99, mean, maxUS float64) Summary {
	return Summary{N: n, P50: p50, P99: p99, Mean: mean, Max: maxUS}
}

func TestSummarize(t *testing.T) {
	ms := func(n ...int) []time.Duration {
		out := make([]time.Duration, len(n))
		for i, v := range n {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100 down to 1
	}
	tests := []struct {
		name string
		in   []time.Duration
		want Summary
	}{
		{"empty", nil, Summary{}},
		{"one sample", ms(7), sum(1, 7000, 7000, 7000, 7000)},
		{"unsorted odd count", ms(9, 1, 5), sum(3, 5000, 9000, 5000, 9000)},
		{"even count takes the lower middle", ms(4, 1, 3, 2), sum(4, 2000, 4000, 2500, 4000)},
		{"hundred samples", ms(hundred...), sum(100, 50000, 99000, 50500, 100000)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := summarize(tc.in); got != tc.want {
				t.Errorf("summarize = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want float64
	}{
		{"none", nil, 0},
		{"odd", []float64{3, 1, 2}, 2},
		{"even takes the lower middle", []float64{10, 40, 20, 30}, 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := median(tc.in); got != tc.want {
				t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseDecisions(t *testing.T) {
	out := `goos: linux
BenchmarkDecide/sql-2  2000  300000 ns/op  250000 p50-ns  900000 p99-ns  80751 B/op  1419 allocs/op
BenchmarkDecide/sql-2  2000  100000 ns/op   90000 p50-ns  400000 p99-ns  80750 B/op  1419 allocs/op
BenchmarkDecide/sql-2  2000  200000 ns/op  150000 p50-ns  500000 p99-ns  80752 B/op  1419 allocs/op
BenchmarkPolicy/file   1000   50000 ns/op
PASS
`
	rows, err := parseDecisions(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	want := []DecisionRow{
		{Name: "Decide/sql", Runs: 3, MeanUS: 200, P50US: 150, P99US: 500,
			BytesOp: 80751, AllocsOp: 1419},
		{Name: "Policy/file", Runs: 1, MeanUS: 50},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("parseDecisions =\n%+v\nwant\n%+v", rows, want)
	}
}
