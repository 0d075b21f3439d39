package main

import (
	"fmt"
	"strings"
)

// Targets the results are judged against.
const (
	targetHTTPRatio  = 1.3   // guarded/unguarded median, 1-row SELECT over HTTP
	targetDecisionUS = 200.0 // facts plus policy, median per call
	// targetRecordingPct is the most recording may add to a call's median.
	targetRecordingPct = 10.0
	targetStartupMS    = 300.0 // process start to first answered tool call
)

// renderMarkdown writes the results page; notes are appended as they are.
func renderMarkdown(res *Results, notes string) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	m := res.Machine
	p("# Benchmarks: what the guard costs")
	p("")
	p("Written by `make bench` (scripts/bench.sh, bench/cmd/loadgen) on %s at commit `%s`.",
		m.Date, m.Commit)
	p("The tables are generated; the last section comes from bench/notes.md.")
	p("")
	writeMachine(p, m)
	writeMethod(p, res.Settings)
	writeLatency(p, res.Latency)
	writeThroughput(p, res.Throughput)
	writeDecision(p, res.Decision)
	writeRecording(p, res.Recording)
	writeStartup(p, res.Startup)
	writeMemory(p, res.Memory)
	if notes != "" {
		b.WriteString(strings.TrimRight(notes, "\n") + "\n")
	}
	return b.String()
}

type printer func(format string, args ...any)

func writeMachine(p printer, m Machine) {
	p("## Machine")
	p("")
	p("| | |")
	p("|---|---|")
	p("| CPUs (`nproc`) | %d |", m.CPUs)
	p("| CPU model | %s |", m.CPUModel)
	p("| memory | %.1f GiB |", m.MemoryGiB)
	p("| kernel | %s |", m.Kernel)
	p("| Go | %s |", m.GoVersion)
	p("| PostgreSQL | %s (throwaway cluster of scripts/pg.sh: fsync off, loopback TCP) |", m.Postgres)
	p("| load average before / after (1, 5, 15 min) | %s / %s |", m.LoadBefore, m.LoadAfter)
	p("")
}

func writeMethod(p printer, s Settings) {
	p("## Method")
	p("")
	p("Everything runs on the one machine above: PostgreSQL, the servers and the load")
	p("generator share its cores, so absolute numbers include their contention.")
	p("")
	p("- **Paths.** *pgx direct*: the load generator queries PostgreSQL itself.")
	p("  *plain MCP*: bench/cmd/plainserver, an unguarded MCP server built with the same")
	p("  mcp-go whose query_database runs the SQL with pgx and returns rows as structured")
	p("  content plus JSON text (no transaction, no checks, no recording).")
	p("  *mcp-guard*: the real binary, bundled default policy, recording on (SQLite,")
	p("  synchronous=normal), masking on, log level info to a file. Both servers are")
	p("  separate processes with pools of 8 connections, reached over stdio and over")
	p("  streamable HTTP on loopback with mcp-go clients (current protocol, stateless).")
	p("- **Latency.** One client, one call after another. Each (query, path) cell gets")
	p("  warm-up calls, then %d rounds; each round visits every cell in a fresh random", s.Rounds)
	p("  order and makes %d calls there, so a slow spell of the machine falls on all", s.Block)
	p("  paths alike. Every answer is checked (no error, the right row count).")
	p("  Percentiles are nearest-rank.")
	p("- **Throughput.** Closed loop over HTTP: N clients, each calling again as soon")
	p("  as its answer arrives, %.1f s of warm-up and then %.0f s measured per row;",
		s.WarmupSeconds, s.DurationSeconds)
	p("  any failed call fails the run. The HTTP rate limit (a per-caller brake, and")
	p("  every client here is the same caller) is raised out of the way.")
	p("- **Decision cost.** `go test -bench 'Decide|Policy' -count 5 ./guard`")
	p("  (guard/bench_test.go): guard.Evaluate on a guard assembled like the serving one")
	p("  (validation, facts, policy), and the policy alone on the same input. Medians")
	p("  of the 5 runs; per-call median and p99 come from timing every call.")
	p("- **Recording cost.** `go test -bench RecordingCost -count 3 ./guard`")
	p("  (guard/cost_test.go): the same calls through a guard with the real recorder")
	p("  and one whose recorder does nothing, taken in turn, on a throwaway")
	p("  PostgreSQL; the share is how much the recorded median exceeds the other.")
	p("- **Start-up.** Time from starting the process to the answer of discovery and")
	p("  of the first tool call (the 1-row query, so it includes connecting to")
	p("  PostgreSQL), over stdio, %d starts per transcript.", s.Starts)
	p("- **Memory.** Peak resident set (VmHWM in /proc/PID/status) of the guard while")
	p("  it answers `SELECT g, md5(g::text) FROM generate_series(1,1000000) g` over")
	p("  stdio: under the default limits, with limits.max_rows raised to 1,000,000, and")
	p("  with limits.max_output_bytes raised to 256 MiB as well.")
	p("")
}

func writeLatency(p printer, rows []LatencyRow) {
	if len(rows) == 0 {
		return
	}
	p("## Latency: one client, sequential calls")
	p("")
	p("| query | path | median | p99 | mean | answer size | calls |")
	p("|---|---|--:|--:|--:|--:|--:|")
	for _, r := range rows {
		size := "-"
		if r.ResponseBytes > 0 {
			size = fmtBytes(float64(r.ResponseBytes))
		}
		p("| %s | %s | %s | %s | %s | %s | %d |", r.Query, r.Path, fmtUS(r.P50), fmtUS(r.P99),
			fmtUS(r.Mean), size, r.N)
	}
	p("")
	find := func(query, path string) LatencyRow {
		for _, r := range rows {
			if r.Query == query && r.Path == path {
				return r
			}
		}
		return LatencyRow{}
	}
	p("Ratios (guarded over unguarded, same transport; guarded over pgx direct):")
	p("")
	p("| query | transport | guarded/plain median | guarded/plain p99 | " +
		"guarded/direct median | guard adds (median) |")
	p("|---|---|--:|--:|--:|--:|")
	for _, q := range latencyQueries {
		direct := find(q.name, pathDirect)
		for _, t := range []struct{ name, guard, plain string }{
			{"HTTP", pathGuardHTTP, pathPlainHTTP},
			{"stdio", pathGuardStdio, pathPlainStdio},
		} {
			g, u := find(q.name, t.guard), find(q.name, t.plain)
			p("| %s | %s | %.2fx | %.2fx | %.1fx | %s |", q.name, t.name, ratio(g.P50, u.P50),
				ratio(g.P99, u.P99), ratio(g.P50, direct.P50), fmtUS(g.P50-u.P50))
		}
	}
	p("")
	g, u := find(latencyQueries[0].name, pathGuardHTTP), find(latencyQueries[0].name, pathPlainHTTP)
	r1 := ratio(g.P50, u.P50)
	p("Target: guarded median under %.1fx the plain server's for the 1-row SELECT over",
		targetHTTPRatio)
	p("HTTP. Measured: **%.2fx** (%s).", r1, verdict(r1 < targetHTTPRatio))
	p("")
}

func writeThroughput(p printer, rows []ThroughputRow) {
	if len(rows) == 0 {
		return
	}
	p("## Throughput over HTTP")
	p("")
	p("| server | tool | clients | calls/s | median | p99 | calls |")
	p("|---|---|--:|--:|--:|--:|--:|")
	for _, r := range rows {
		p("| %s | %s | %d | %.0f | %s | %s | %d |", r.Server, r.Tool, r.Clients, r.PerSec,
			fmtUS(r.P50), fmtUS(r.P99), r.Calls)
	}
	p("")
	p("query_database runs the 1-row SELECT, run_shell `%s` on the local shell", shellCommand)
	p("target, read_file a 900-byte file in the files root.")
	p("")
}

func writeDecision(p printer, rows []DecisionRow) {
	if len(rows) == 0 {
		return
	}
	p("## Decision cost: facts plus policy per call")
	p("")
	p("| benchmark | median per call | p99 | mean | bytes/op | allocs/op | runs |")
	p("|---|--:|--:|--:|--:|--:|--:|")
	worst := 0.0
	for _, r := range rows {
		p("| %s | %s | %s | %s | %.0f | %.0f | %d |", r.Name, fmtUS(r.P50US), fmtUS(r.P99US),
			fmtUS(r.MeanUS), r.BytesOp, r.AllocsOp, r.Runs)
		if strings.HasPrefix(r.Name, "Decide/") {
			worst = max(worst, r.P50US)
		}
	}
	p("")
	p("Decide/* is the whole decision (validation, facts, policy); Policy/* the policy")
	p("evaluation alone. Target: median under %.0f µs. Slowest Decide median: **%s** (%s).",
		targetDecisionUS, fmtUS(worst), verdict(worst < targetDecisionUS))
	p("")
}

func writeStartup(p printer, rows []StartupRow) {
	if len(rows) == 0 {
		return
	}
	p("## Start-up over stdio")
	p("")
	p("| transcript | records | to discovery, median | to first tool call, median | first call, max |")
	p("|---|--:|--:|--:|--:|")
	for _, r := range rows {
		p("| %s | %d | %s | %s | %s |", r.Transcript, r.Records, fmtUS(r.Initialize.P50),
			fmtUS(r.FirstCall.P50), fmtUS(r.FirstCall.Max))
	}
	p("")
	worst := 0.0
	for _, r := range rows {
		worst = max(worst, r.FirstCall.P50)
	}
	p("Target: first answered tool call under %.0f ms. Slowest median: **%s** (%s).",
		targetStartupMS, fmtUS(worst), verdict(worst < targetStartupMS*1e3))
	p("")
}

func writeMemory(p printer, rows []MemoryRow) {
	if len(rows) == 0 {
		return
	}
	p("## Memory while a million rows stream")
	p("")
	p("| max_rows | max_output_bytes | rows answered | cut by | answer size | time | " +
		"peak RSS before | peak RSS | RSS after |")
	p("|--:|--:|--:|---|--:|--:|--:|--:|--:|")
	for _, r := range rows {
		cut := r.TruncatedAt
		if cut == "" {
			cut = "-"
		}
		p("| %d | %s | %d | %s | %s | %.2f s | %s | %s | %s |", r.MaxRows,
			fmtBytes(float64(r.MaxOutputBytes)), r.Rows, cut, fmtBytes(float64(r.ResponseBytes)),
			r.Seconds, fmtBytes(float64(r.BaselineKB)*1024), fmtBytes(float64(r.PeakKB)*1024),
			fmtBytes(float64(r.EndKB)*1024))
	}
	p("")
	p("Rows stream from PostgreSQL and the guard keeps at most max_rows of them and at")
	p("most max_output_bytes of their wire size; it stops reading (and drops the")
	p("connection) at either cap. An MCP answer is one JSON-RPC message, so with both")
	p("caps raised the whole answer is held, and memory grows with it.")
	p("")
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "not met"
}

// fmtUS formats microseconds for reading.
func fmtUS(us float64) string {
	switch {
	case us < 0:
		return "-" + fmtUS(-us)
	case us < 1000:
		return fmt.Sprintf("%.0f µs", us)
	case us < 1e6:
		return fmt.Sprintf("%.2f ms", us/1e3)
	}
	return fmt.Sprintf("%.2f s", us/1e6)
}

func fmtBytes(n float64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%.0f B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", n/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", n/(1<<20))
}
