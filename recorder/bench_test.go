package recorder

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// BenchmarkAppend measures records committed per second: group commit
// (the default batch) against one commit per record (MaxBatch 1), with
// synchronous normal and full, for many concurrent callers and for one.
// Checkpoints are on, at the default cadence. records/s counts the
// commits callers saw; stored-records/s also waits, at the end, until
// the ingester has moved every record into the database. Run with
//
//	go test -run - -bench Append -benchtime 3s ./recorder
func BenchmarkAppend(b *testing.B) {
	key := newKey(b)
	// About the size of a run_shell intent with its facts and decision.
	body := map[string]any{
		"tool": "run_shell", "target": "local",
		"arguments": map[string]any{"command": "grep -rn TODO src | head -20"},
		"facts":     map[string]any{"commands": strings.Repeat("x", 300)},
		"decision":  map[string]any{"outcome": "allow", "reasons": []string{}},
	}
	for _, sync := range []string{"normal", "full"} {
		for _, mode := range []struct {
			name     string
			maxBatch int
			callers  int // goroutines per core; 0 runs one caller
		}{
			{"group", 0, 8},
			{"single", 1, 8},
			{"serial", 0, 0},
		} {
			b.Run(mode.name+"/"+sync, func(b *testing.B) {
				r, _ := openRecorder(b, Options{
					Synchronous: sync, MaxBatch: mode.maxBatch, SigningKey: key,
					Logger: slog.New(slog.DiscardHandler),
				})
				ctx := context.Background()
				b.ResetTimer()
				begun := time.Now()
				if mode.callers == 0 {
					for i := 0; i < b.N; i++ {
						if err := r.Append(ctx, KindCallIntent, "s", "c", body); err != nil {
							b.Fatal(err)
						}
					}
				} else {
					b.SetParallelism(mode.callers)
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if err := r.Append(ctx, KindCallIntent, "s", "c", body); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
				if err := r.Sync(ctx); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(b.N)/time.Since(begun).Seconds(), "stored-records/s")
			})
		}
	}
}

// BenchmarkVerify measures the streaming verification of a transcript.
func BenchmarkVerify(b *testing.B) {
	r, path := openRecorder(b, Options{SigningKey: newKey(b), Logger: slog.New(slog.DiscardHandler)})
	ctx := context.Background()
	const n = 20000
	errs := make(chan error, n)
	sem := make(chan struct{}, 64)
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			body := map[string]any{"i": i, "pad": strings.Repeat("y", 400)}
			errs <- r.Append(ctx, KindCallIntent, "s", "c", body)
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	db := openRW(b, path)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep, err := Verify(ctx, db, VerifyOptions{})
		if err != nil || !rep.OK() {
			b.Fatalf("verify: %v %v", err, rep.Problems)
		}
	}
	b.ReportMetric(float64(b.N)*n/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkCalls measures reading calls back as export does: each intent
// with its completion, found through the call index.
func BenchmarkCalls(b *testing.B) {
	r, path := openRecorder(b, Options{Logger: slog.New(slog.DiscardHandler)})
	ctx := context.Background()
	const calls = 5000
	for i := 0; i < calls; i++ {
		id := fmt.Sprintf("call-%d", i)
		intent := map[string]any{"tool": "read_file", "target": "docs", "caller": Caller{Subject: "a"}}
		if err := r.Append(ctx, KindCallIntent, "s", id, intent); err != nil {
			b.Fatal(err)
		}
		if err := r.Append(ctx, KindCallCompletion, "s", id, map[string]any{"outcome": "ok"}); err != nil {
			b.Fatal(err)
		}
	}
	db := openRW(b, path)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n := 0
		err := Calls(ctx, db, CallFilter{}, func(c Call) error {
			if c.Completion == nil {
				return fmt.Errorf("call %s without completion", c.Intent.CallID)
			}
			n++
			return nil
		})
		if err != nil || n != calls {
			b.Fatalf("%d calls, %v", n, err)
		}
	}
	b.ReportMetric(float64(b.N)*calls/b.Elapsed().Seconds(), "calls/s")
}
