package main

import (
	"math"
	"slices"
	"time"
)

// Summary describes a set of latencies, in microseconds.
type Summary struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50_us"`
	P99  float64 `json:"p99_us"`
	Mean float64 `json:"mean_us"`
	Max  float64 `json:"max_us"`
}

// summarize sorts lat in place and describes it. Percentiles are by
// nearest rank: the smallest value at or above the given share of samples.
func summarize(lat []time.Duration) Summary {
	if len(lat) == 0 {
		return Summary{}
	}
	slices.Sort(lat)
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	return Summary{
		N:    len(lat),
		P50:  micros(percentile(lat, 0.50)),
		P99:  micros(percentile(lat, 0.99)),
		Mean: micros(sum / time.Duration(len(lat))),
		Max:  micros(lat[len(lat)-1]),
	}
}

// percentile returns the nearest-rank q-quantile of sorted, non-empty lat.
func percentile(lat []time.Duration, q float64) time.Duration {
	rank := int(math.Ceil(q * float64(len(lat))))
	rank = min(max(rank, 1), len(lat))
	return lat[rank-1]
}

func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

// median returns the median of vals (the lower middle for an even count),
// or 0 for none. vals is sorted in place.
func median(vals []float64) float64 {
	if len(vals) == 0 {
		return 0
	}
	slices.Sort(vals)
	return vals[(len(vals)-1)/2]
}

// ratio returns a/b, or 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
