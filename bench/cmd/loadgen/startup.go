package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/mcp-guard/mcp-guard/recorder"
)

// StartupRow is the time from starting the guard process to answers over
// stdio, on a transcript of Records records.
type StartupRow struct {
	Transcript string `json:"transcript"`
	Records    int64  `json:"records"`
	// Initialize is until the server answered discovery or the handshake.
	Initialize Summary `json:"initialize"`
	// FirstCall is until the first tool call (the 1-row query) answered.
	FirstCall Summary `json:"first_call"`
}

// startup starts the guard over stdio again and again: on a fresh
// transcript each time, and on the transcript the earlier phases wrote.
func (r *runner) startup(ctx context.Context) error {
	fresh := func(i int) (string, error) {
		return r.w.writeConfig(fmt.Sprintf("startup-%d", i), limits{})
	}
	row, err := r.startupRuns(ctx, "fresh (created at start)", fresh)
	if err != nil {
		return err
	}
	r.res.Startup = append(r.res.Startup, row)

	records, err := countRecords(ctx, filepath.Join(r.w.dir, "var-guard", "mcp-guard.db"))
	if err != nil {
		return err
	}
	main := func(int) (string, error) { return r.w.conf, nil }
	label := "the run's own (written by the phases above)"
	row, err = r.startupRuns(ctx, label, main)
	if err != nil {
		return err
	}
	row.Records = records
	r.res.Startup = append(r.res.Startup, row)
	return nil
}

func (r *runner) startupRuns(ctx context.Context, label string,
	config func(int) (string, error)) (StartupRow, error) {
	r.logf("start-up: %s transcript, %d starts", label, r.opts.starts)
	var initLat, firstLat []time.Duration
	for i := range r.opts.starts {
		conf, err := config(i)
		if err != nil {
			return StartupRow{}, err
		}
		start := time.Now()
		s, err := startStdio(ctx, r.opts.guardBin, []string{"serve", "--config", conf},
			r.w.env, r.w.dir, r.w.log("startup"))
		if err != nil {
			return StartupRow{}, err
		}
		err = initialize(ctx, s.client)
		initDone := time.Since(start)
		if err == nil {
			err = queryCall(ctx, s.client, sqlOneRow, 1)
		}
		firstDone := time.Since(start)
		s.close()
		if err != nil {
			return StartupRow{}, fmt.Errorf("start-up %d: %w", i, err)
		}
		initLat = append(initLat, initDone)
		firstLat = append(firstLat, firstDone)
	}
	return StartupRow{
		Transcript: label, Initialize: summarize(initLat), FirstCall: summarize(firstLat),
	}, nil
}

// countRecords counts the records of a transcript, read through SQLite's
// own file so the guard need not run.
func countRecords(ctx context.Context, path string) (int64, error) {
	if _, err := os.Stat(path); err != nil {
		return 0, fmt.Errorf("transcript: %w", err)
	}
	db, err := recorder.OpenDB(path, "normal")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int64
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM records").Scan(&n); err != nil {
		return 0, fmt.Errorf("count records: %w", err)
	}
	return n, nil
}
