// Command loadgen measures what mcp-guard costs: the same queries through
// pgx directly, through a plain unguarded MCP server and through the real
// mcp-guard binary over stdio and HTTP; guarded throughput at several
// concurrencies; start-up time; and memory while a million rows stream.
// It writes the numbers as JSON and as the markdown of bench/results.md.
// scripts/bench.sh builds the binaries, starts a throwaway PostgreSQL and
// runs it; see there for the whole procedure.
//
// The superuser DSN of a throwaway database comes from BENCH_DSN. The
// benchmark changes that cluster's settings and tables: never point it at
// a database that matters.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mark3labs/mcp-go/client"

	"github.com/mcp-guard/mcp-guard/bench/plainserver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// options are the flags of a run.
type options struct {
	guardBin, plainBin string
	baselineBin        string // another mcp-guard build to compare, or ""
	work               string
	jsonPath, mdPath   string
	decidePath         string
	recordingPath      string
	notesPath          string
	commit             string
	phases             []string

	warmCalls   int           // per latency cell before measuring
	rounds      int           // latency rounds
	block       int           // calls per latency cell per round
	concurrency []int         // throughput clients
	warmup      time.Duration // throughput warm-up per run
	duration    time.Duration // throughput measured time per run
	starts      int           // start-up runs per transcript

	profilePath    string
	profileClients int
	profileQuery   string
}

var allPhases = []string{"latency", "throughput", "startup", "memory"}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.StringVar(&o.guardBin, "guard", "", "the mcp-guard binary")
	fs.StringVar(&o.plainBin, "plain", "", "the plainserver binary")
	fs.StringVar(&o.baselineBin, "baseline", "",
		"another mcp-guard binary (an older build) to add to the latency phase")
	fs.StringVar(&o.work, "work", "", "an empty work directory")
	fs.StringVar(&o.jsonPath, "json", "", "write the results as JSON here")
	fs.StringVar(&o.mdPath, "md", "", "write the results as markdown here")
	fs.StringVar(&o.decidePath, "decide", "",
		"`go test -bench` output of the guard's decision benchmarks")
	fs.StringVar(&o.recordingPath, "recording", "",
		"`go test -bench` output of the guard's recording-cost benchmarks")
	fs.StringVar(&o.notesPath, "notes", "", "markdown appended to the results (findings, fixes)")
	fs.StringVar(&o.commit, "commit", "", "the commit measured")
	phases := fs.String("phases", strings.Join(allPhases, ","), "phases to run")
	quick := fs.Bool("quick", false, "a short run, for trying the benchmark itself")
	fs.StringVar(&o.profilePath, "profile", "",
		"only CPU-profile an in-process guard, writing the profile here")
	fs.IntVar(&o.profileClients, "profile-clients", 1, "clients while profiling")
	fs.StringVar(&o.profileQuery, "profile-query", "one",
		"query to profile: one, thousand or million rows")
	duration := fs.Duration("duration", 0,
		"measured time per throughput run, or of the profile (default 5s)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.guardBin == "" || o.plainBin == "" || o.work == "" {
		return o, errors.New("-guard, -plain and -work are required")
	}
	o.phases = strings.Split(*phases, ",")
	for _, p := range o.phases {
		if !slices.Contains(allPhases, p) {
			return o, fmt.Errorf("unknown phase %q", p)
		}
	}
	o.warmCalls, o.rounds, o.block = 20, 40, 10
	o.concurrency = []int{1, 8, 64}
	o.warmup, o.duration = time.Second, 5*time.Second
	o.starts = 10
	if *quick {
		o.warmCalls, o.rounds, o.block = 3, 3, 5
		o.warmup, o.duration = 200*time.Millisecond, time.Second
		o.starts = 2
	}
	if *duration > 0 {
		o.duration = *duration
	}
	return o, nil
}

// runner carries what the phases share.
type runner struct {
	opts options
	w    *world
	pool *pgxpool.Pool
	hc   *http.Client
	res  *Results
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "loadgen: "+format+"\n", args...)
}

func run(ctx context.Context, args []string) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	dsn := os.Getenv("BENCH_DSN")
	if dsn == "" {
		return errors.New("BENCH_DSN is empty")
	}
	w, err := newWorld(o.work, dsn)
	if err != nil {
		return err
	}
	pool, err := plainserver.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer pool.Close()
	pgVersion, err := prepareDatabase(ctx, pool)
	if err != nil {
		return err
	}
	r := &runner{opts: o, w: w, pool: pool, hc: newHTTPTransport(), res: &Results{}}
	if o.profilePath != "" {
		return r.profile(ctx)
	}

	r.res.Machine = describeMachine(pgVersion, o.commit)
	r.res.Settings = Settings{
		Rounds: o.rounds, Block: o.block, Concurrency: o.concurrency,
		WarmupSeconds: o.warmup.Seconds(), DurationSeconds: o.duration.Seconds(),
		Starts: o.starts,
	}
	if err := r.phases(ctx); err != nil {
		return err
	}
	r.res.Machine.LoadAfter = loadAverage()
	if o.decidePath != "" {
		f, err := os.Open(o.decidePath)
		if err != nil {
			return fmt.Errorf("decision benchmarks: %w", err)
		}
		r.res.Decision, err = parseDecisions(f)
		f.Close()
		if err != nil {
			return err
		}
	}
	if o.recordingPath != "" {
		f, err := os.Open(o.recordingPath)
		if err != nil {
			return fmt.Errorf("recording benchmarks: %w", err)
		}
		r.res.Recording, err = parseRecording(f)
		f.Close()
		if err != nil {
			return err
		}
	}
	return r.write()
}

// phases runs the chosen phases; latency and throughput share servers.
func (r *runner) phases(ctx context.Context) error {
	has := func(p string) bool { return slices.Contains(r.opts.phases, p) }
	if has("latency") || has("throughput") {
		s, err := r.startServers(ctx)
		if err != nil {
			return err
		}
		defer s.stop()
		if has("latency") {
			if err := r.latency(ctx, s); err != nil {
				return fmt.Errorf("latency: %w", err)
			}
		}
		if has("throughput") {
			if err := r.throughput(ctx, s); err != nil {
				return fmt.Errorf("throughput: %w", err)
			}
		}
		s.stop()
	}
	if has("startup") {
		if err := r.startup(ctx); err != nil {
			return fmt.Errorf("start-up: %w", err)
		}
	}
	if has("memory") {
		if err := r.memory(ctx); err != nil {
			return fmt.Errorf("memory: %w", err)
		}
	}
	return nil
}

// servers are the long-running servers of the latency and throughput
// phases and a client of each.
type servers struct {
	guardHTTP, plainHTTP             *httpServer
	guardHTTPClient, plainHTTPClient *client.Client
	guardStdio, plainStdio           *stdioServer
	// The baseline build's servers, when -baseline is given.
	baseHTTP       *httpServer
	baseHTTPClient *client.Client
	baseStdio      *stdioServer
	stopped        bool
}

func (r *runner) startServers(ctx context.Context) (_ *servers, err error) {
	s := &servers{}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	guardArgs := []string{"serve", "--config", r.w.conf}
	if s.guardHTTP, err = startHTTPServer(ctx, r.opts.guardBin,
		append(guardArgs, "--http", "127.0.0.1:0"), r.w.env, r.w.dir, r.w.log("guard-http")); err != nil {
		return nil, err
	}
	if s.plainHTTP, err = startHTTPServer(ctx, r.opts.plainBin,
		[]string{"-http", "127.0.0.1:0"}, r.w.env, r.w.dir, r.w.log("plain-http")); err != nil {
		return nil, err
	}
	if s.guardHTTPClient, err = connectHTTP(ctx, s.guardHTTP.base, r.hc); err != nil {
		return nil, err
	}
	if s.plainHTTPClient, err = connectHTTP(ctx, s.plainHTTP.base, r.hc); err != nil {
		return nil, err
	}
	if s.guardStdio, err = startStdio(ctx, r.opts.guardBin, guardArgs,
		r.w.env, r.w.dir, r.w.log("guard-stdio")); err != nil {
		return nil, err
	}
	if err = initialize(ctx, s.guardStdio.client); err != nil {
		return nil, err
	}
	if s.plainStdio, err = startStdio(ctx, r.opts.plainBin, nil,
		r.w.env, r.w.dir, r.w.log("plain-stdio")); err != nil {
		return nil, err
	}
	if err = initialize(ctx, s.plainStdio.client); err != nil {
		return nil, err
	}
	if r.opts.baselineBin == "" {
		return s, nil
	}
	if s.baseHTTP, err = startHTTPServer(ctx, r.opts.baselineBin,
		append(guardArgs, "--http", "127.0.0.1:0"),
		r.w.env, r.w.dir, r.w.log("baseline-http")); err != nil {
		return nil, err
	}
	if s.baseHTTPClient, err = connectHTTP(ctx, s.baseHTTP.base, r.hc); err != nil {
		return nil, err
	}
	if s.baseStdio, err = startStdio(ctx, r.opts.baselineBin, guardArgs,
		r.w.env, r.w.dir, r.w.log("baseline-stdio")); err != nil {
		return nil, err
	}
	if err = initialize(ctx, s.baseStdio.client); err != nil {
		return nil, err
	}
	return s, nil
}

// stop ends every server; it may be called more than once.
func (s *servers) stop() {
	if s.stopped {
		return
	}
	s.stopped = true
	for _, c := range []*client.Client{s.guardHTTPClient, s.plainHTTPClient, s.baseHTTPClient} {
		if c != nil {
			c.Close()
		}
	}
	for _, p := range []*stdioServer{s.guardStdio, s.plainStdio, s.baseStdio} {
		if p != nil {
			p.close()
		}
	}
	for _, p := range []*httpServer{s.guardHTTP, s.plainHTTP, s.baseHTTP} {
		if p != nil {
			p.stop()
		}
	}
}

// write writes the results as JSON and markdown.
func (r *runner) write() error {
	if r.opts.jsonPath != "" {
		b, err := json.MarshalIndent(r.res, "", "  ")
		if err != nil {
			return fmt.Errorf("encode results: %w", err)
		}
		if err := os.WriteFile(r.opts.jsonPath, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write results: %w", err)
		}
	}
	if r.opts.mdPath != "" {
		var notes string
		if r.opts.notesPath != "" {
			b, err := os.ReadFile(r.opts.notesPath)
			if err != nil {
				return fmt.Errorf("read notes: %w", err)
			}
			notes = string(b)
		}
		md := renderMarkdown(r.res, notes)
		if err := os.WriteFile(r.opts.mdPath, []byte(md), 0o644); err != nil {
			return fmt.Errorf("write markdown: %w", err)
		}
	}
	return nil
}
