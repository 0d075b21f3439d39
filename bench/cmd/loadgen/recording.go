package main

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
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
	type metrics struct{ plain, recorded, share []float64 }
	var order []string
	seen := map[string]*metrics{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		name := m[1]
		ms := seen[name]
		if ms == nil {
			ms = &metrics{}
			seen[name] = ms
			order = append(order, name)
		}
		f := strings.Fields(m[2])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("benchmark %s: bad value %q", name, f[i])
			}
			switch f[i+1] {
			case "unrecorded-median-µs":
				ms.plain = append(ms.plain, v)
			case "recorded-median-µs":
				ms.recorded = append(ms.recorded, v)
			case "recording-%":
				ms.share = append(ms.share, v)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read benchmark output: %w", err)
	}
	rows := make([]RecordingRow, 0, len(order))
	for _, name := range order {
		ms := seen[name]
		if len(ms.share) == 0 {
			return nil, fmt.Errorf("benchmark %s reports no recording-%%", name)
		}
		rows = append(rows, RecordingRow{
			Name: name, Runs: len(ms.share), UnrecordedUS: median(ms.plain),
			RecordedUS: median(ms.recorded), SharePct: median(ms.share),
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
