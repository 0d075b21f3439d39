// Command mcp-guard is an MCP server that guards the SQL, shell and file
// tools AI assistants call: every call is decided by policy, may wait for
// a person's approval, is masked and is recorded.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/mcp-guard/mcp-guard/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
