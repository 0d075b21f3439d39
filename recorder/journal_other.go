//go:build !linux

package recorder

import "os"

// datasync flushes f to the disk; without fdatasync, with fsync.
func datasync(f *os.File) error { return f.Sync() }
