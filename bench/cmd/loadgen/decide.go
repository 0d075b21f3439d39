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

// benchMetrics holds, per benchmark in the order first seen, every value
// `go test -bench` reported for it, by unit, one per run.
type benchMetrics struct {
	order  []string
	values map[string]map[string][]float64
}

// get returns the values of name's metric unit, one per run.
func (m benchMetrics) get(name, unit string) []float64 { return m.values[name][unit] }

// readBench reads `go test -bench` output: every result line's value-unit
// pairs, collected per benchmark.
func readBench(r io.Reader) (benchMetrics, error) {
	m := benchMetrics{values: map[string]map[string][]float64{}}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := benchLine.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if line == nil {
			continue
		}
		name := line[1]
		units := m.values[name]
		if units == nil {
			units = map[string][]float64{}
			m.values[name] = units
			m.order = append(m.order, name)
		}
		f := strings.Fields(line[2])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return benchMetrics{}, fmt.Errorf("benchmark %s: bad value %q", name, f[i])
			}
			units[f[i+1]] = append(units[f[i+1]], v)
		}
	}
	if err := sc.Err(); err != nil {
		return benchMetrics{}, fmt.Errorf("read benchmark output: %w", err)
	}
	return m, nil
}

// parseDecisions reads `go test -bench` output and returns one row per
// benchmark, in the order first seen.
func parseDecisions(r io.Reader) ([]DecisionRow, error) {
	m, err := readBench(r)
	if err != nil {
		return nil, err
	}
	rows := make([]DecisionRow, 0, len(m.order))
	for _, name := range m.order {
		us := func(unit string) []float64 {
			var out []float64
			for _, v := range m.get(name, unit) {
				out = append(out, v/1e3)
			}
			return out
		}
		rows = append(rows, DecisionRow{
			Name: name, Runs: len(m.get(name, "ns/op")), MeanUS: median(us("ns/op")),
			P50US: median(us("p50-ns")), P99US: median(us("p99-ns")),
			BytesOp: median(m.get(name, "B/op")), AllocsOp: median(m.get(name, "allocs/op")),
		})
	}
	return rows, nil
}
