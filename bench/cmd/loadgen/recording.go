package main

import (
	"fmt"
	"io"
	"strings"
)

// RecordingRow is one recording-cost benchmark of the guard package
// (BenchmarkRecordingCost and BenchmarkRecordingCostHTTP): the medians of
// calls with and without the recorder, taken in turn, and the share the
// recorder adds, each the median over the runs of `go test -bench -count N`.
type RecordingRow struct {
	Name         string  `json:"name"`
	Runs         int     `json:"runs"`
	UnrecordedUS float64 `json:"unrecorded_us"`
	RecordedUS   float64 `json:"recorded_us"`
	SharePct     float64 `json:"share_pct"`
}

// parseRecording reads `go test -bench RecordingCost` output and returns
// one row per benchmark, in the order first seen.
func parseRecording(r io.Reader) ([]RecordingRow, error) {
	m, err := readBench(r)
	if err != nil {
		return nil, err
	}
	rows := make([]RecordingRow, 0, len(m.order))
	for _, name := range m.order {
		share := m.get(name, "recording-%")
		if len(share) == 0 {
			return nil, fmt.Errorf("benchmark %s reports no recording-%%", name)
		}
		rows = append(rows, RecordingRow{
			Name: name, Runs: len(share), SharePct: median(share),
			UnrecordedUS: median(m.get(name, "unrecorded-median-µs")),
			RecordedUS:   median(m.get(name, "recorded-median-µs")),
		})
	}
	return rows, nil
}

func writeRecording(p printer, rows []RecordingRow) {
	if len(rows) == 0 {
		return
	}
	p("## Recording cost: the transcript on a call's path")
	p("")
	p("| benchmark | without recording, median | with recording, median | recording adds | runs |")
	p("|---|--:|--:|--:|--:|")
	worst := 0.0
	for _, r := range rows {
		p("| %s | %s | %s | %.1f%% | %d |", r.Name, fmtUS(r.UnrecordedUS),
			fmtUS(r.RecordedUS), r.SharePct, r.Runs)
		if strings.HasPrefix(r.Name, "RecordingCostHTTP/") {
			worst = max(worst, r.SharePct)
		}
	}
	p("")
	p("RecordingCost/* calls guard.Handle in process (no transport, so the share is")
	p("larger than any client sees); RecordingCostHTTP/* makes the same calls over")
	p("streamable HTTP on loopback. Target: recording adds under %.0f%% to a call's", targetRecordingPct)
	p("median. Largest share over HTTP: **%.1f%%** (%s).", worst, verdict(worst < targetRecordingPct))
	p("")
}
