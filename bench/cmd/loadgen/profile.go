package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/mcp-guard/mcp-guard/app"
	"github.com/mcp-guard/mcp-guard/config"
)

// profileQueries are the queries -profile-query names, with the row cap
// they need.
var profileQueries = map[string]struct {
	sql  string
	rows int
	lim  limits
}{
	"one":      {sqlOneRow, 1, limits{}},
	"thousand": {sqlThousand, 1000, limits{}},
	"million":  {sqlMillion, millionRows, limits{millionRows, 256 << 20}},
}

// profile serves the guard in this process, built by app.Build from the
// main configuration and served by app.Handler on loopback, and
// CPU-profiles it while clients call a query over HTTP. The
// profile includes the clients; read it for the guard's own frames.
func (r *runner) profile(ctx context.Context) error {
	q, ok := profileQueries[r.opts.profileQuery]
	if !ok {
		return fmt.Errorf("-profile-query %q: want one, thousand or million", r.opts.profileQuery)
	}
	conf, err := r.w.writeConfig("profile", q.lim)
	if err != nil {
		return err
	}
	cfg, err := config.Load(conf)
	if err != nil {
		return err
	}
	env := map[string]string{}
	for _, kv := range r.w.env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	logf, err := os.Create(r.w.log("profile"))
	if err != nil {
		return fmt.Errorf("create log: %w", err)
	}
	defer logf.Close()
	getenv := func(k string) string { return env[k] }
	a, err := app.Build(ctx, cfg, app.Options{Stderr: logf, Getenv: getenv})
	if err != nil {
		return err
	}
	defer a.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	h, err := a.Handler(ctx, ln.Addr().String())
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	base := "http://" + ln.Addr().String()

	n := r.opts.profileClients
	r.logf("profile: %d clients for %s, writing %s", n, r.opts.duration, r.opts.profilePath)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	stop := make(chan struct{})
	out, err := os.Create(r.opts.profilePath)
	if err != nil {
		return fmt.Errorf("create profile: %w", err)
	}
	defer out.Close()
	calls := make([]int, n)
	for i := range n {
		c, err := connectHTTP(ctx, base, r.hc)
		if err != nil {
			return err
		}
		defer c.Close()
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := queryCall(ctx, c, q.sql, q.rows); err != nil {
					errs <- err
					return
				}
				calls[i]++
			}
		})
	}
	if err := pprof.StartCPUProfile(out); err != nil {
		close(stop)
		wg.Wait()
		return fmt.Errorf("start profile: %w", err)
	}
	time.Sleep(r.opts.duration) // the measured window, not a wait for an event
	pprof.StopCPUProfile()
	close(stop)
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	total := 0
	for _, c := range calls {
		total += c
	}
	r.logf("profile: %d calls, %.0f calls/s", total, float64(total)/r.opts.duration.Seconds())
	return errors.Join(all...)
}
