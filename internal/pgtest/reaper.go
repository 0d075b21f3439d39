package pgtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// reaperScript waits for its stdin to close, then stops the server if it
// runs and removes the temp dir. $1 is the temp dir, the rest is the stop
// command. If the stop command fails, the postmaster is killed outright;
// its backends exit once they notice it is gone.
const reaperScript = `dir=$1; shift
read -r _
pidfile="$dir/data/postmaster.pid"
if [ -f "$pidfile" ]; then
	"$@" >/dev/null 2>&1 || kill -KILL "$(head -n 1 "$pidfile")" 2>/dev/null
fi
rm -rf -- "$dir"
[ ! -e "$dir" ]`

// reaper is a shell process that cleans up the cluster when the pipe to
// it closes: when stop is called or when this process exits, however it
// exits.
type reaper struct {
	cmd  *exec.Cmd
	pipe *os.File // write end; closing it starts the cleanup
	done chan error
}

// startReaper spawns the reaper for dir. It runs in its own process group
// so a Ctrl-C meant for the tests does not kill it before it has cleaned
// up, and with no stdout or stderr so that `go test` does not wait on it.
func startReaper(dir string, stopCmd []string) (*reaper, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("make reaper pipe: %w", err)
	}
	args := append([]string{"-c", reaperScript, "pgtest-reaper", dir}, stopCmd...)
	cmd := exec.Command("/bin/sh", args...)
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("start reaper: %w", err)
	}
	r.Close() // the reaper holds its own copy

	rp := &reaper{cmd: cmd, pipe: w, done: make(chan error, 1)}
	go func() { rp.done <- cmd.Wait() }()
	return rp, nil
}

// stop tells the reaper to clean up and waits for it to finish.
func (r *reaper) stop(timeout time.Duration) error {
	if err := r.pipe.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("close reaper pipe: %w", err)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case err := <-r.done:
		// Keep the result for a second caller.
		r.done <- err
		if err != nil {
			return fmt.Errorf("reaper: %w", err)
		}
		return nil
	case <-timer.C:
		return fmt.Errorf("reaper still running after %s", timeout)
	}
}
