// Command plainserver serves the unguarded baseline MCP server of the
// benchmarks (package plainserver) over stdio, or over streamable HTTP
// with -http ADDR on a loopback address. The database DSN comes from the
// environment variable BENCH_DSN.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-guard/mcp-guard/bench/plainserver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "plainserver:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("plainserver", flag.ContinueOnError)
	addr := fs.String("http", "", "serve streamable HTTP on this loopback host:port instead of stdio")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dsn := os.Getenv("BENCH_DSN")
	if dsn == "" {
		return errors.New("BENCH_DSN is empty")
	}
	pool, err := plainserver.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer pool.Close()
	s := plainserver.New(pool)
	if *addr == "" {
		err := server.NewStdioServer(s).Listen(ctx, os.Stdin, os.Stdout)
		if err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("stdio: %w", err)
		}
		return nil
	}
	return serveHTTP(ctx, s, *addr)
}

// serveHTTP serves s at /mcp on addr, which must be a loopback address,
// until ctx ends.
func serveHTTP(ctx context.Context, s *server.MCPServer, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-http %s: only a loopback IP address is allowed", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", server.NewStreamableHTTPServer(s, server.WithEndpointPath("/mcp")))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(os.Stderr, "plainserver: serving MCP at http://%s/mcp\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}
