package main

import (
	"strings"
	"testing"
)

func TestParseRecording(t *testing.T) {
	out := `goos: linux
BenchmarkRecordingCost/read_file-2   2000   503393 ns/op   158.0 recorded-median-µs   12.90 recording-%   140.0 unrecorded-median-µs
BenchmarkRecordingCost/read_file-2   2000   503393 ns/op   160.0 recorded-median-µs   14.00 recording-%   141.0 unrecorded-median-µs
BenchmarkRecordingCost/read_file-2   2000   503393 ns/op   150.0 recorded-median-µs   10.00 recording-%   139.0 unrecorded-median-µs
BenchmarkRecordingCostHTTP/query_1row-2   1500   2130639 ns/op   713.0 recorded-median-µs   5.540 recording-%   676.0 unrecorded-median-µs
PASS
`
	rows, err := parseRecording(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	want := []RecordingRow{
		{Name: "RecordingCost/read_file", Runs: 3, UnrecordedUS: 140, RecordedUS: 158, SharePct: 12.9},
		{Name: "RecordingCostHTTP/query_1row", Runs: 1, UnrecordedUS: 676, RecordedUS: 713, SharePct: 5.54},
	}
	if len(rows) != len(want) {
		t.Fatalf("got %d rows, want %d: %+v", len(rows), len(want), rows)
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("row %d: got %+v, want %+v", i, rows[i], want[i])
		}
	}
}

func TestParseRecordingRefusesRowsWithoutShare(t *testing.T) {
	_, err := parseRecording(strings.NewReader("BenchmarkRecordingCost/x-2 10 5 ns/op\n"))
	if err == nil {
		t.Fatal("a benchmark without recording-% was accepted")
	}
}
