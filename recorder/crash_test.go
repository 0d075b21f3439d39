package recorder

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// crashHelperEnv names the database the test binary, started again as a
// helper, appends to until it is killed (see TestMain).
const crashHelperEnv = "RECORDER_CRASH_HELPER_DB"

// crashHelper appends records to the transcript at path from four
// goroutines until the process is killed, printing "ack ID" on stdout
// once each append has returned.
func crashHelper(path string) {
	r, err := Open(path, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	pad := strings.Repeat("p", 500)
	for w := range 4 {
		go func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("w%d-%d", w, i)
				err := r.Append(context.Background(), KindCallIntent, "s", id,
					map[string]string{"pad": pad})
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(3)
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "ack %s\n", id)
				mu.Unlock()
			}
		}()
	}
	select {}
}

// TestRecoverAfterKill kills a process with SIGKILL while it appends from
// several goroutines, then recovers: every record whose append returned
// is in the database exactly once, and the chain verifies.
func TestRecoverAfterKill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashHelperEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	// Kill it mid-stream, then read what it had acknowledged by then.
	const killAt = 3000
	acked := map[string]bool{}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		id, ok := strings.CutPrefix(sc.Text(), "ack ")
		if !ok {
			t.Fatalf("helper said %q", sc.Text())
		}
		acked[id] = true
		if len(acked) == killAt {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
	}
	err = cmd.Wait()
	if len(acked) < killAt {
		t.Fatalf("the helper stopped after %d records: %v\n%s", len(acked), err, stderr.String())
	}

	pending, err := Pending(path)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Recover(path, Options{})
	if err != nil || res.Ingested != pending {
		t.Fatalf("Recover = %+v, %v; want the %d pending records ingested", res, err, pending)
	}
	t.Logf("%d records acknowledged, %d left in the journal by the kill", len(acked), pending)
	calls := countCalls(t, path)
	for id := range acked {
		if calls[id] != 1 {
			t.Errorf("acknowledged record %s is in the database %d times", id, calls[id])
		}
	}
	for id, n := range calls {
		if n != 1 {
			t.Errorf("record %s is in the database %d times", id, n)
		}
	}
	if rep := verify(t, openRW(t, path), VerifyOptions{}); !rep.OK() {
		t.Errorf("the chain does not verify after the kill: %v", rep.Problems)
	}
}
