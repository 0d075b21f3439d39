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
// over stdio under one row cap.
type MemoryRow struct {
	MaxRows int `json:"max_rows"`
	// Rows is how many rows the answer held; Truncated says the cap cut
	// the result.
	Rows      int  `json:"rows"`
	Truncated bool `json:"truncated"`
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

// memory runs the million-row query on a guard with the default row cap
// and on one whose cap is raised to a million, reading the process's peak
// resident set from /proc.
func (r *runner) memory(ctx context.Context) error {
	for _, maxRows := range []int{defaultMaxRows, millionRows} {
		row, err := r.memoryRun(ctx, maxRows)
		if err != nil {
			return err
		}
		r.res.Memory = append(r.res.Memory, row)
	}
	return nil
}

func (r *runner) memoryRun(ctx context.Context, maxRows int) (MemoryRow, error) {
	r.logf("memory: million-row query, max_rows %d", maxRows)
	conf, err := r.w.writeConfig(fmt.Sprintf("memory-%d", maxRows), maxRows)
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
	row := MemoryRow{MaxRows: maxRows}
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
	row.Truncated, _ = m["truncated"].(bool)
	row.ResponseBytes = resultBytes(res)
	if want := min(maxRows, millionRows); row.Rows != want {
		return MemoryRow{}, fmt.Errorf("max_rows %d: %d rows came back, want %d", maxRows, row.Rows, want)
	}
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
