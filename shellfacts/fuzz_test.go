package shellfacts

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"
)

// FuzzAnalyze checks that Analyze never panics, always ends (the depth
// and size limits hold), and lists every simple command whose name is
// written out literally. Seeds are in testdata/fuzz/FuzzAnalyze.
func FuzzAnalyze(f *testing.F) {
	recoverPanics = false
	f.Cleanup(func() { recoverPanics = true })
	opts := Options{Path: []string{"/usr/bin", "/bin"}, Workdir: "/tmp", Home: "/root"}
	f.Fuzz(func(t *testing.T, command string) {
		// A hang shows up as a failure naming the input, not as a
		// stalled worker.
		watchdog := time.AfterFunc(5*time.Second, func() {
			panic(fmt.Sprintf("Analyze(%q) did not return", command))
		})
		facts, err := Analyze(command, opts)
		watchdog.Stop()
		if errors.Is(err, errInternal) {
			t.Fatalf("internal error for %q", command)
		}
		if err != nil {
			return
		}
		names := make([]string, 0, len(facts.Commands))
		for _, c := range facts.Commands {
			names = append(names, c.Name)
		}
		for _, want := range literalNames(t, command) {
			if !slices.Contains(names, want) {
				t.Fatalf("%q: command %q missing from %q", command, want, names)
			}
		}
	})
}

// literalNames parses src independently of the analyser and returns the
// names of the simple commands written as plain or quoted text.
func literalNames(t *testing.T, src string) []string {
	t.Helper()
	file, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).
		Parse(strings.NewReader(src), "")
	if err != nil {
		t.Fatalf("Analyze accepted text the parser refuses: %v", err)
	}
	var names []string
	syntax.Walk(file, func(n syntax.Node) bool {
		ce, ok := n.(*syntax.CallExpr)
		if !ok || len(ce.Args) == 0 || !literalWord(ce.Args[0]) {
			return true
		}
		fields, err := expand.Fields(&expand.Config{}, ce.Args[0])
		if err == nil && len(fields) == 1 {
			names = append(names, fields[0])
		}
		return true
	})
	return names
}

// literalWord reports whether w is made only of literal text and quotes,
// with no glob, brace or tilde characters left unquoted.
func literalWord(w *syntax.Word) bool {
	for _, p := range w.Parts {
		switch p := p.(type) {
		case *syntax.Lit:
			if strings.ContainsAny(p.Value, "*?[{~") {
				return false
			}
		case *syntax.SglQuoted:
		case *syntax.DblQuoted:
			for _, q := range p.Parts {
				if _, ok := q.(*syntax.Lit); !ok {
					return false
				}
			}
			if p.Dollar {
				return false
			}
		default:
			return false
		}
	}
	return true
}
