package cli

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// keptEnvironment is what serve keeps of its environment once it has read
// its secrets: nothing here holds a secret.
var keptEnvironment = []string{"PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER", "LOGNAME"}

// dropEnvironment takes the process environment into memory and erases
// the copy the kernel keeps: /proc/PID/environ shows a process's starting
// environment to anyone who may read it, commands the guard runs as the
// same user among them. Afterwards the environment holds only
// keptEnvironment, and the returned getenv answers from the saved copy, so
// the configuration's secrets still reach the guard and nobody else.
func dropEnvironment() (func(string) string, error) {
	saved := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		// Clone: the runtime's strings point into the memory erased below.
		saved[strings.Clone(k)] = strings.Clone(v)
	}
	start, end, err := environBounds()
	if err != nil {
		return nil, err
	}
	mem, err := os.OpenFile("/proc/self/mem", os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("erase the environment: %w", err)
	}
	_, err = mem.WriteAt(make([]byte, end-start), int64(start))
	mem.Close()
	if err != nil {
		return nil, fmt.Errorf("erase the environment: %w", err)
	}
	os.Clearenv()
	for _, k := range keptEnvironment {
		if v, ok := saved[k]; ok {
			os.Setenv(k, v)
		}
	}
	return func(name string) string { return saved[name] }, nil
}

// environBounds reads where the kernel keeps this process's starting
// environment (fields 50 and 51 of /proc/self/stat).
func environBounds() (start, end uint64, err error) {
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("locate the environment: %w", err)
	}
	// Fields after the command name, which is in parentheses and may
	// hold spaces; the first of them is field 3.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("locate the environment: odd /proc/self/stat")
	}
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 49 {
		return 0, 0, fmt.Errorf("locate the environment: /proc/self/stat has %d fields", len(fields)+2)
	}
	start, err1 := strconv.ParseUint(fields[50-3], 10, 64)
	end, err2 := strconv.ParseUint(fields[51-3], 10, 64)
	if err1 != nil || err2 != nil || end < start || end-start > 64<<20 {
		return 0, 0, fmt.Errorf("locate the environment: bad bounds in /proc/self/stat")
	}
	return start, end, nil
}
