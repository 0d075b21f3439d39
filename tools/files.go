package tools

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/mcp-guard/mcp-guard/config"
	"github.com/mcp-guard/mcp-guard/policy"
)

// Files implements read_file on targets of kind files.
type Files struct{}

// Spec implements Tool.
func (Files) Spec() Spec {
	return Spec{
		Name:  ReadFile,
		Title: "Read a file",
		Description: "Reads a text file inside a files target's roots. path is absolute or " +
			"relative to the target's first root; offset skips that many lines and limit " +
			"caps the lines returned. Links are followed only while they stay inside the " +
			"roots; secret files and binary files are refused." + notice,
		Input: json.RawMessage(`{"type": "object", "properties": {
			"target": {"type": "string", "description": "Name of a files target (see list_targets)."},
			"path": {"type": "string", "minLength": 1, "description": "File to read: absolute, or relative to the target's first root."},
			"offset": {"type": "integer", "minimum": 0, "description": "Lines to skip from the start (default 0)."},
			"limit": {"type": "integer", "minimum": 1, "description": "Most lines to return (default: all, up to the size cap)."}
		}, "required": ["target", "path"], "additionalProperties": false}`),
		Output: outputSchema(`"path": {"type": "string"}, "content": {"type": "string"},
			"size": {"type": "integer"}, "truncated": {"type": "boolean"}`),
		Kinds:    []string{config.KindFiles},
		ReadOnly: true,
	}
}

// FileFacts is what the policy sees of a read_file call.
type FileFacts struct {
	Requested string `json:"requested"`
	// Root is the root the path was resolved in.
	Root string `json:"root"`
	// Resolved is the absolute path of the file the read would open,
	// after following links; Relative is the same under Root.
	Resolved string `json:"resolved"`
	Relative string `json:"relative"`
	Inside   bool   `json:"inside"`
	Exists   bool   `json:"exists"`
	IsDir    bool   `json:"is_dir"`
	// Symlink says a link was followed; Links lists their targets.
	Symlink bool     `json:"symlink"`
	Links   []string `json:"links"`
	// HardLinks is the file's link count. A file with more than one name
	// may be a secret under an innocent one: its name cannot tell.
	HardLinks int `json:"hard_links"`
	// Error says why the path cannot be resolved, when it cannot.
	Error string `json:"error"`
}

// Facts implements Tool.
func (Files) Facts(_ context.Context, c *Call) (string, any, error) {
	p := c.String("path")
	if err := checkText("path", p); err != nil {
		return "", nil, err
	}
	return "file", Resolve(c.Target.Roots, p), nil
}

// Display implements Tool.
func (Files) Display(c *Call) string { return c.String("path") }

const maxLinks = 40

// Resolve finds path inside one of roots the way the kernel would open it,
// but refusing to leave the root: every component is looked up in turn,
// links are followed by reading them, and ".." that climbs out of the root
// or a link that points out of it marks the result as outside. Nothing is
// decided by string prefixes of the unresolved text.
func Resolve(roots []string, path string) FileFacts {
	f := FileFacts{Requested: path, Links: []string{}}
	root, rest, ok := splitRoot(roots, path)
	if !ok {
		f.Error = "not under any root of the target"
		return f
	}
	f.Root = root

	var stack []string // resolved components below root
	pending := splitPath(rest)
	hops := 0
	for len(pending) > 0 {
		comp := pending[0]
		pending = pending[1:]
		switch comp {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				f.Error = "climbs out of the root"
				return f
			}
			stack = stack[:len(stack)-1]
			continue
		}
		cur := filepath.Join(append([]string{root}, append(stack, comp)...)...)
		st, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			if len(pending) == 0 {
				stack = append(stack, comp)
				f.Inside = true
				f.Relative = filepath.Join(stack...)
				f.Resolved = filepath.Join(root, f.Relative)
				return f
			}
			f.Inside = true
			f.Error = "no such directory: " + comp
			return f
		}
		if err != nil {
			f.Error = "cannot inspect the path"
			return f
		}
		if st.Mode()&fs.ModeSymlink == 0 {
			if len(pending) > 0 && !st.IsDir() {
				f.Inside = true
				f.Error = "not a directory: " + comp
				return f
			}
			stack = append(stack, comp)
			continue
		}
		hops++
		if hops > maxLinks {
			f.Error = "too many links"
			return f
		}
		target, err := os.Readlink(cur)
		if err != nil {
			f.Error = "cannot read a link"
			return f
		}
		f.Symlink = true
		f.Links = append(f.Links, target)
		if filepath.IsAbs(target) {
			r, rest, ok := splitRoot([]string{root}, target)
			if !ok || r != root {
				f.Error = "a link points outside the root"
				return f
			}
			stack = nil
			pending = append(splitPath(rest), pending...)
			continue
		}
		pending = append(splitPath(target), pending...)
	}
	f.Inside = true
	f.Exists = true
	f.Relative = filepath.Join(stack...)
	if f.Relative == "" {
		f.Relative = "."
	}
	f.Resolved = filepath.Join(root, f.Relative)
	if st, err := os.Stat(f.Resolved); err == nil {
		f.IsDir = st.IsDir()
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && !f.IsDir {
			f.HardLinks = int(sys.Nlink)
		}
	}
	return f
}

func splitPath(p string) []string {
	return strings.Split(filepath.ToSlash(p), "/")
}

// splitRoot picks the root a path lives in. A relative path belongs to the
// first root. An absolute path must name a root as whole leading
// components, so a sibling such as "/data_backup" is not in "/data"; the
// rest is returned unresolved.
func splitRoot(roots []string, path string) (root, rest string, ok bool) {
	if len(roots) == 0 {
		return "", "", false
	}
	if !filepath.IsAbs(path) {
		return roots[0], path, true
	}
	for _, r := range roots {
		for _, form := range rootForms(r) {
			if path == form {
				return r, "", true
			}
			if strings.HasPrefix(path, form+"/") {
				return r, path[len(form)+1:], true
			}
		}
	}
	return "", "", false
}

// rootForms returns a root as configured and with its own links resolved,
// so that a caller may name it either way.
func rootForms(r string) []string {
	forms := []string{r}
	if real, err := filepath.EvalSymlinks(r); err == nil && real != r {
		forms = append(forms, real)
	}
	return forms
}

// Run implements Tool.
func (Files) Run(_ context.Context, c *Call, _ policy.Decision, l Limits) (*Result, error) {
	f := Resolve(c.Target.Roots, c.String("path"))
	if !f.Inside || f.Error != "" {
		return failed("read_file: %s cannot be read: %s", f.Requested, f.Error), nil
	}
	if !f.Exists {
		return failed("read_file: no such file: %s", f.Requested), nil
	}
	if f.IsDir {
		return failed("read_file: %s is a directory; use run_shell with ls to list it", f.Requested), nil
	}

	root, err := os.OpenRoot(f.Root)
	if err != nil {
		return nil, fmt.Errorf("open root: %w", err)
	}
	defer root.Close()
	file, err := root.Open(f.Relative)
	if err != nil {
		return failed("read_file: %s cannot be opened inside the root", f.Requested), nil
	}
	defer file.Close()

	// The file opened must be the one the policy judged: a link swapped
	// between the check and the open is refused.
	opened, err := file.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat opened file: %w", err)
	}
	judged, err := os.Stat(f.Resolved)
	if err != nil || !os.SameFile(opened, judged) || !opened.Mode().IsRegular() {
		return failed("read_file: %s changed while it was being read, or is not a regular file", f.Requested), nil
	}
	return readText(file, opened.Size(), c, l, f.Requested)
}

func readText(r io.Reader, size int64, c *Call, l Limits, name string) (*Result, error) {
	max := l.MaxFileBytes
	head := make([]byte, 8192)
	n, _ := io.ReadFull(r, head)
	head = head[:n]
	if bytes.IndexByte(head, 0) >= 0 {
		return failed("read_file: %s is a binary file; only text files can be read", name), nil
	}
	br := bufio.NewReader(io.MultiReader(bytes.NewReader(head), r))
	offset := c.Int("offset", 0)
	limit := c.Int("limit", 0)

	var out strings.Builder
	truncated := false
	line := 0
	for {
		s, err := br.ReadString('\n')
		if s != "" {
			if line >= offset && (limit == 0 || line < offset+limit) {
				if out.Len()+len(s) > max {
					out.WriteString(s[:max-out.Len()])
					truncated = true
					break
				}
				out.WriteString(s)
			} else if limit > 0 && line >= offset+limit {
				truncated = true
				break
			}
			line++
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read file: %w", err)
		}
	}
	content := out.String()
	if !utf8.ValidString(content) {
		content = strings.ToValidUTF8(content, "\uFFFD")
		if !truncated {
			return failed("read_file: %s is not UTF-8 text; only text files can be read", name), nil
		}
	}
	return &Result{Structured: map[string]any{
		"path": name, "content": content, "size": size, "truncated": truncated,
	}}, nil
}

func failed(format string, args ...any) *Result {
	msg := fmt.Sprintf(format, args...)
	return &Result{Structured: map[string]any{"error": msg}, Failed: true}
}

// checkText refuses text the guard, the tool and a reviewer could read
// differently: control characters other than tab and newline, format
// characters such as zero-width spaces and bidi overrides, non-ASCII space
// separators, and invalid UTF-8.
func checkText(arg, s string) error {
	if !utf8.ValidString(s) {
		return Invalid("%s is not valid UTF-8", arg)
	}
	for i, r := range s {
		if bad := suspicious(r, false); bad != "" {
			return Invalid("%s contains %s (U+%04X) at byte %d; such characters are refused because people and programs read them differently", arg, bad, r, i)
		}
	}
	return nil
}
