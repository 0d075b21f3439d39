package main

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// DecisionRow is one decision benchmark of the guard package, the median
// of each metric over the runs of `go test -bench -count N`.
type DecisionRow struct {
	Name     string  `json:"name"`
	Runs     int     `json:"runs"`
	MeanUS   float64 `json:"mean_us"`
	P50US    float64 `json:"p50_us"`
	P99US    float64 `json:"p99_us"`
	BytesOp  float64 `json:"bytes_per_op"`
	AllocsOp float64 `json:"allocs_per_op"`
}

// benchLine matches a result line: name, GOMAXPROCS suffix, iterations,
// then value-unit pairs.
var benchLine = regexp.MustCompile(`^Benchmark(\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

// parseDecisions reads `go test -bench` output and returns one row per
// benchmark, in the order first seen.
func parseDecisions(r io.Reader) ([]DecisionRow, error) {
	type metrics struct{ mean, p50, p99, bytes, allocs []float64 }
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
			case "ns/op":
				ms.mean = append(ms.mean, v/1e3)
			case "p50-ns":
				ms.p50 = append(ms.p50, v/1e3)
			case "p99-ns":
				ms.p99 = append(ms.p99, v/1e3)
			case "B/op":
				ms.bytes = append(ms.bytes, v)
			case "allocs/op":
				ms.allocs = append(ms.allocs, v)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read benchmark output: %w", err)
	}
	rows := make([]DecisionRow, 0, len(order))
	for _, name := range order {
		ms := seen[name]
		rows = append(rows, DecisionRow{
			Name: name, Runs: len(ms.mean), MeanUS: median(ms.mean),
			P50US: median(ms.p50), P99US: median(ms.p99),
			BytesOp: median(ms.bytes), AllocsOp: median(ms.allocs),
		})
	}
	return rows, nil
}
