package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mcp-guard/mcp-guard/approvals"
)

// The operator's side of a serving guard: Prometheus metrics at /metrics,
// readiness at /readyz, and a graceful shutdown.

const (
	// readyTimeout bounds the store checks of one /readyz or scrape.
	readyTimeout = 2 * time.Second
	// pendingCap bounds the pending requests one scrape counts.
	pendingCap = 1000
)

// metrics holds the guard's Prometheus metrics, on a registry of its own.
// It implements guard.Metrics.
type metrics struct {
	a   *App
	reg *prometheus.Registry

	calls       *prometheus.CounterVec
	decision    *prometheus.HistogramVec
	execution   *prometheus.HistogramVec
	waiting     prometheus.Gauge
	commit      prometheus.Histogram
	commitFails prometheus.Counter

	pending *prometheus.Desc
	policy  *prometheus.Desc
	ready   *prometheus.Desc
}

// newMetrics registers the metrics of a; the state gauges read a when
// scraped.
func newMetrics(a *App) *metrics {
	const ns = "mcp_guard"
	m := &metrics{a: a, reg: prometheus.NewRegistry()}
	m.calls = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns,
		Name: "calls_total",
		Help: "Tool calls answered, by tool and outcome (ok, denied, invalid, approval_*, error).",
	}, []string{"tool", "outcome"})
	m.decision = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns,
		Name:    "decision_seconds",
		Help:    "Time the policy took to decide a call.",
		Buckets: prometheus.ExponentialBuckets(0.00005, 3, 10), // 50µs to 1s
	}, []string{"tool"})
	m.execution = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns,
		Name:    "execution_seconds",
		Help:    "Time an allowed call took to run.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"tool"})
	m.waiting = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns,
		Name: "approval_waiting_calls",
		Help: "Calls on this replica waiting for an approval decision.",
	})
	m.commit = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns,
		Name:    "recorder_commit_seconds",
		Help:    "Time one transcript commit (a batch of records) took.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5ms to 4s
	})
	m.commitFails = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns,
		Name: "recorder_commit_failures_total",
		Help: "Transcript commits that failed; their calls were not answered as run.",
	})
	m.pending = prometheus.NewDesc(ns+"_approvals_pending",
		fmt.Sprintf("Approval requests waiting for a decision in the store, "+
			"shared by all replicas (counted up to %d).", pendingCap), nil, nil)
	m.policy = prometheus.NewDesc(ns+"_policy_info",
		"The policy in force: its version (the digest recorded with each call) "+
			"and, for a bundle, its revision.", []string{"version", "revision"}, nil)
	m.ready = prometheus.NewDesc(ns+"_ready",
		"1 when this replica takes calls (what /readyz answers), else 0.", nil, nil)

	m.reg.MustRegister(m.calls, m.decision, m.execution, m.waiting, m.commit,
		m.commitFails, m,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Decided implements guard.Metrics.
func (m *metrics) Decided(tool string, d time.Duration) {
	m.decision.WithLabelValues(tool).Observe(d.Seconds())
}

// Ran implements guard.Metrics.
func (m *metrics) Ran(tool string, d time.Duration) {
	m.execution.WithLabelValues(tool).Observe(d.Seconds())
}

// Waiting implements guard.Metrics.
func (m *metrics) Waiting(delta int) { m.waiting.Add(float64(delta)) }

// Answered implements guard.Metrics.
func (m *metrics) Answered(tool, outcome string) {
	m.calls.WithLabelValues(tool, outcome).Inc()
}

// committed is the recorder's OnCommit.
func (m *metrics) committed(_ int, took time.Duration, err error) {
	if m == nil {
		return
	}
	m.commit.Observe(took.Seconds())
	if err != nil {
		m.commitFails.Inc()
	}
}

// Describe implements prometheus.Collector for the state gauges.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.pending
	ch <- m.policy
	ch <- m.ready
}

// Collect implements prometheus.Collector: it reads the state gauges now.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	a := m.a
	if a.Engine != nil {
		revision := ""
		if a.bundle != nil {
			revision = a.bundle.Revision()
		}
		ch <- prometheus.MustNewConstMetric(m.policy, prometheus.GaugeValue, 1,
			a.Engine.Version(), revision)
	}
	ready := 0.0
	if len(a.notReady(ctx)) == 0 {
		ready = 1
	}
	ch <- prometheus.MustNewConstMetric(m.ready, prometheus.GaugeValue, ready)
	if a.approvals == nil {
		return
	}
	rs, err := a.approvals.List(ctx, approvals.ListFilter{State: approvals.StatePending,
		Limit: pendingCap})
	if err != nil {
		a.Logger.Warn("metrics: count pending approvals", "error", err)
		return
	}
	ch <- prometheus.MustNewConstMetric(m.pending, prometheus.GaugeValue, float64(len(rs)))
}

// handler serves the metrics in Prometheus' text format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// notReady lists why this replica should not be sent calls; empty when it
// should. The reasons are fixed text: /readyz is unauthenticated, so the
// detail goes to the log.
func (a *App) notReady(ctx context.Context) []string {
	var out []string
	if a.draining.Load() {
		out = append(out, "shutting down")
	}
	if a.bundle != nil && !a.bundle.Ready() {
		out = append(out, "the policy bundle is not loaded")
	}
	if a.Recorder == nil {
		return append(out, "no transcript store")
	}
	if err := a.Recorder.DB().PingContext(ctx); err != nil {
		a.Logger.Warn("readiness: the transcript store does not answer", "error", err)
		out = append(out, "the transcript store does not answer")
	}
	return out
}

// readyHandler answers /readyz: 200 when the replica should take calls,
// 503 with the reasons when it should not.
func (a *App) readyHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if why := a.notReady(ctx); len(why) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "not ready: "+strings.Join(why, "; ")+"\n")
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
}

// refuseWhileDraining answers 503 to requests that arrive once the
// server has begun to stop, so that a load balancer retries them on
// another replica; requests already in flight are not affected.
func (a *App) refuseWhileDraining(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.draining.Load() {
			w.Header().Set("Connection", "close")
			w.Header().Set("Retry-After", "1")
			http.Error(w, "this replica is shutting down; try again", http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// drain stops taking calls: /readyz fails, new requests are refused, and
// every call waiting for approval answers approval_pending with its
// request id at once. The requests stay in the store, so the client's
// re-call resumes them, here after a restart or on another replica.
func (a *App) drain() {
	a.draining.Store(true)
	if a.approvals != nil {
		a.approvals.StopWaiting()
	}
}

// shutdown stops srv gracefully after drain: listening sessions are
// closed, and calls in flight get until http.shutdown_timeout to finish;
// those still running then are cut off, and shutdown says so.
func (a *App) shutdown(srv *http.Server, streamable *server.StreamableHTTPServer) error {
	a.drain()
	limit := a.Config.HTTP.ShutdownTimeout.Duration
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	a.Logger.Info("shutting down: finishing calls in flight", "timeout", limit.String())

	if streamable != nil {
		_ = streamable.Shutdown(ctx) // closes the listening streams only
	}
	err := srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		_ = srv.Close()
		a.Logger.Warn("shutdown timeout passed; calls still in flight were cut off",
			"timeout", limit.String())
		return fmt.Errorf("http: calls still in flight after %s were cut off", limit)
	}
	if err != nil {
		return fmt.Errorf("http: shutdown: %w", err)
	}
	return nil
}
