package pgtest_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcp-guard/mcp-guard/internal/pgtest"
)

// helperEnv makes the test binary act as a package that starts a cluster
// without Main; its value picks how the process ends.
const helperEnv = "PGTEST_HELPER"

// cleanupWait bounds how long the reaper may take after its process died.
const cleanupWait = 30 * time.Second

type helperReport struct {
	Dir  string `json:"dir"`
	Port int    `json:"port"`
}

// mainTB lets the helper call Start outside a test, as TestMain can.
type mainTB struct{ testing.TB }

func (mainTB) Helper() {}

func (mainTB) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

// runHelper starts a cluster, reports where it lives and then, by mode,
// exits at once or waits to be killed. It never calls Main.
func runHelper(mode string) {
	s := pgtest.Start(mainTB{})
	json.NewEncoder(os.Stdout).Encode(helperReport{Dir: s.Dir(), Port: s.Port()})
	if mode == "wait" {
		select {}
	}
	os.Exit(0)
}

func TestNoOrphanServerWithoutMain(t *testing.T) {
	tests := []struct {
		name string
		mode string
		kill bool
	}{
		{"process exits", "exit", false},
		{"process is killed", "wait", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), helperEnv+"="+tt.mode)
			cmd.Stderr = os.Stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatalf("start helper: %v", err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

			var rep helperReport
			line, err := bufio.NewReader(out).ReadString('\n')
			if err != nil || json.Unmarshal([]byte(line), &rep) != nil {
				t.Fatalf("helper report %q: %v", line, err)
			}
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(rep.Port))
			if !accepts(addr) {
				t.Fatalf("helper's server at %s is not up", addr)
			}

			if tt.kill {
				cmd.Process.Kill()
			}
			cmd.Wait()

			err = waitFor(cleanupWait, func() bool {
				_, statErr := os.Stat(rep.Dir)
				return errors.Is(statErr, os.ErrNotExist) && !accepts(addr)
			})
			if err != nil {
				t.Errorf("server at %s (dir %s) outlived its process: %v", addr, rep.Dir, err)
			}
		})
	}
}

func TestStartFailsLoudly(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=exit", "PGTEST_BINDIR=/nonexistent/bin")
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		t.Fatalf("helper without PostgreSQL: err = %v, want a non-zero exit; "+
			"output:\n%s", err, out)
	}
	want := "pgtest: start PostgreSQL: PGTEST_BINDIR=/nonexistent/bin has no initdb"
	if !strings.Contains(string(out), want) {
		t.Errorf("output %q does not contain %q", out, want)
	}
}

func accepts(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// waitFor polls cond until it holds or timeout passes. The cleanup runs
// in another process, so there is no clock to inject.
func waitFor(timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("still not done after %s", timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}
