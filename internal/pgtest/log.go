package pgtest

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
)

// The server logs every statement (log_statement = all) with the prefix
// "TIME [PID] USER@DATABASE ", before it runs the statement, to a file
// that the methods below read. The log is shared by every test of the
// process: look for text unique to your test, or use LogSince.

// LogContains reports whether the server log holds substr. Tests use it to
// prove that a statement did, or never did, reach the server.
func (s *Server) LogContains(substr string) bool {
	return strings.Contains(s.logFrom(0), substr)
}

// LogSince marks the current end of the server log and returns a function
// that reports whether substr was logged after the mark.
func (s *Server) LogSince() func(substr string) bool {
	mark := s.logSize()
	return func(substr string) bool {
		return strings.Contains(s.logFrom(mark), substr)
	}
}

// LogText returns the server log from the start, for failure messages.
func (s *Server) LogText() string { return s.logFrom(0) }

func (s *Server) logSize() int64 {
	fi, err := os.Stat(s.LogPath())
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logFrom returns the log from byte offset on. It panics if the log
// cannot be read: an unreadable log must never pass for one that lacks a
// statement.
func (s *Server) logFrom(offset int64) string {
	text, err := readFrom(s.LogPath(), offset)
	if err != nil {
		panic(fmt.Sprintf("pgtest: read server log: %v", err))
	}
	return text
}

func readFrom(path string, offset int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		return "", err
	}
	return buf.String(), nil
}
