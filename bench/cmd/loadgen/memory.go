package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// MemoryRow is the guard's memory while it answers the million-row query
// over stdio under one pair of limits.
type MemoryRow struct {
	MaxRows        int `json:"max_rows"`
	MaxOutputBytes int `json:"max_output_bytes"`
	// Rows is how many rows the answer held; TruncatedAt names the limit
	// that cut the result, if one did.
	Rows        int    `json:"rows"`
	TruncatedAt string `json:"truncated_at"`
	// ResponseBytes is the size of the answer as JSON.
	ResponseBytes int `json:"response_bytes"`
	// Seconds is how long the call took.
	Seconds float64 `json:"seconds"`
	// BaselineKB is the peak RSS (VmHWM) after a warm-up call; PeakKB after
	// the million-row call; EndKB the RSS (VmRSS) once it was answered.
	BaselineKB int64 `json:"baseline_kb"`
	PeakKB     int64 `json:"peak_kb"`
	EndKB      int64 `json:"end_kb"`
}

// memoryCases are the limits the million-row query runs under, and how
// many rows each must answer (0: cut by the size cap).
var memoryCases = []struct {
	lim  limits
	rows int
}{
	{limits{}, defaultMaxRows},
	{limits{maxRows: millionRows}, 0},
	{limits{maxRows: millionRows, maxOutputBytes: 256 << 20}, millionRows},
}

// memory runs the million-row query on a guard with the default limits,
// with the row cap raised to a million, and with the size cap raised too,
// reading the process's peak resident set from /proc.
func (r *runner) memory(ctx context.Context) error {
	for _, mc := range memoryCases {
		row, err := r.memoryRun(ctx, mc.lim)
		if err != nil {
			return err
		}
		switch {
		case mc.rows > 0 && row.Rows != mc.rows:
			return fmt.Errorf("%+v: %d rows came back, want %d", mc.lim, row.Rows, mc.rows)
		case mc.rows == 0 && row.TruncatedAt != "max_output_bytes":
			return fmt.Errorf("%+v: not cut by the size cap (%d rows, %q)",
				mc.lim, row.Rows, row.TruncatedAt)
		}
		r.res.Memory = append(r.res.Memory, row)
	}
	return nil
}

func (r *runner) memoryRun(ctx context.Context, lim limits) (MemoryRow, error) {
	row := MemoryRow{
		MaxRows:        max(lim.maxRows, defaultMaxRows),
		MaxOutputBytes: max(lim.maxOutputBytes, defaultMaxOutput),
	}
	r.logf("memory: million-row query, max_rows %d, max_output_bytes %d",
		row.MaxRows, row.MaxOutputBytes)
	conf, err := r.w.writeConfig(fmt.Sprintf("memory-%d-%d", row.MaxRows, row.MaxOutputBytes), lim)
	if err != nil {
		return MemoryRow{}, err
	}
	s, err := startStdio(ctx, r.opts.guardBin, []string{"serve", "--config", conf},
		r.w.env, r.w.dir, r.w.log("memory"))
	if err != nil {
		return MemoryRow{}, err
	}
	defer s.close()
	if err := initialize(ctx, s.client); err != nil {
		return MemoryRow{}, err
	}
	if err := queryCall(ctx, s.client, sqlOneRow, 1); err != nil {
		return MemoryRow{}, err
	}
	if row.BaselineKB, err = procStatus(s.pid(), "VmHWM"); err != nil {
		return MemoryRow{}, err
	}

	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	start := time.Now()
	res, err := callTool(ctx, s.client, "query_database",
		map[string]any{"target": "appdb", "sql": sqlMillion})
	row.Seconds = time.Since(start).Seconds()
	if err != nil {
		return MemoryRow{}, err
	}
	if row.PeakKB, err = procStatus(s.pid(), "VmHWM"); err != nil {
		return MemoryRow{}, err
	}
	if row.EndKB, err = procStatus(s.pid(), "VmRSS"); err != nil {
		return MemoryRow{}, err
	}
	row.Rows = rowCount(res)
	m, _ := res.StructuredContent.(map[string]any)
	row.TruncatedAt, _ = m["truncated_at"].(string)
	row.ResponseBytes = resultBytes(res)
	return row, nil
}

// procStatus reads a "kB" field of /proc/PID/status.
func procStatus(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read process status: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse %s: %w", field, err)
		}
		return v, nil
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}
