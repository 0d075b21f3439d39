package main

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Results is everything a run measured.
type Results struct {
	Machine    Machine         `json:"machine"`
	Settings   Settings        `json:"settings"`
	Latency    []LatencyRow    `json:"latency"`
	Throughput []ThroughputRow `json:"throughput"`
	Decision   []DecisionRow   `json:"decision"`
	Recording  []RecordingRow  `json:"recording"`
	Startup    []StartupRow    `json:"startup"`
	Memory     []MemoryRow     `json:"memory"`
}

// Machine describes where the numbers come from.
type Machine struct {
	Date       string  `json:"date"`
	Commit     string  `json:"commit"`
	CPUs       int     `json:"cpus"`
	CPUModel   string  `json:"cpu_model"`
	MemoryGiB  float64 `json:"memory_gib"`
	Kernel     string  `json:"kernel"`
	GoVersion  string  `json:"go_version"`
	Postgres   string  `json:"postgres"`
	LoadBefore string  `json:"load_before"`
	LoadAfter  string  `json:"load_after"`
}

// Settings are the sizes of the run.
type Settings struct {
	Rounds          int     `json:"latency_rounds"`
	Block           int     `json:"latency_block"`
	Concurrency     []int   `json:"concurrency"`
	WarmupSeconds   float64 `json:"warmup_seconds"`
	DurationSeconds float64 `json:"duration_seconds"`
	Starts          int     `json:"starts"`
}

func describeMachine(pgVersion, commit string) Machine {
	return Machine{
		Date:       time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		Commit:     commit,
		CPUs:       runtime.NumCPU(),
		CPUModel:   cpuModel(),
		MemoryGiB:  memoryGiB(),
		Kernel:     readTrim("/proc/sys/kernel/osrelease"),
		GoVersion:  runtime.Version(),
		Postgres:   pgVersion,
		LoadBefore: loadAverage(),
	}
}

func cpuModel() string {
	return procField("/proc/cpuinfo", "model name")
}

func memoryGiB() float64 {
	total := strings.TrimSuffix(procField("/proc/meminfo", "MemTotal"), " kB")
	kb, err := strconv.ParseFloat(total, 64)
	if err != nil {
		return 0
	}
	return float64(int(kb/(1<<20)*10+0.5)) / 10
}

// loadAverage returns the 1, 5 and 15 minute load averages.
func loadAverage() string {
	f := strings.Fields(readTrim("/proc/loadavg"))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// procField returns the value of the first "name: value" line of path.
func procField(path, name string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
