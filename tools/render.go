package tools

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Render returns the readable text of a tool's structured result. The
// guard renders after masking, so text and structured content agree.
func Render(tool string, s map[string]any) string {
	if msg, ok := s["error"].(string); ok {
		return msg
	}
	switch tool {
	case QueryDatabase:
		return renderRows(s)
	case RunShell:
		return renderShell(s)
	case ReadFile:
		text, _ := s["content"].(string)
		if t, _ := s["truncated"].(bool); t {
			text += "\n[truncated: use offset and limit to read further]"
		}
		return text
	case ListTargets:
		return renderTargets(s)
	}
	b, _ := json.Marshal(s)
	return string(b)
}

const maxCellWidth = 60

// rowCount spells a count of rows as psql does: "1 row", "2 rows".
func rowCount(n string) string {
	if n == "1" {
		return "1 row"
	}
	return n + " rows"
}

func renderRows(s map[string]any) string {
	if cmd, ok := s["command"].(string); ok {
		return fmt.Sprintf("%s (%s affected)", cmd, rowCount(fmt.Sprint(s["rows_affected"])))
	}
	cols, _ := s["columns"].([]any)
	rows, _ := s["rows"].([]any)
	header := make([]string, len(cols))
	for i, c := range cols {
		m, _ := c.(map[string]any)
		header[i], _ = m["name"].(string)
	}
	cells := [][]string{header}
	for _, r := range rows {
		vals, _ := r.([]any)
		line := make([]string, len(cols))
		for i := range line {
			if i < len(vals) {
				line[i] = cell(vals[i])
			}
		}
		cells = append(cells, line)
	}
	width := make([]int, len(cols))
	for _, line := range cells {
		for i, c := range line {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for n, line := range cells {
		for i, c := range line {
			if i > 0 {
				b.WriteString(" | ")
			}
			b.WriteString(c)
			if i < len(line)-1 {
				b.WriteString(strings.Repeat(" ", width[i]-utf8.RuneCountInString(c)))
			}
		}
		b.WriteByte('\n')
		if n == 0 {
			for i := range line {
				if i > 0 {
					b.WriteString("-+-")
				}
				b.WriteString(strings.Repeat("-", width[i]))
			}
			b.WriteByte('\n')
		}
	}
	fmt.Fprintf(&b, "(%s", rowCount(strconv.Itoa(len(rows))))
	if t, _ := s["truncated"].(bool); t {
		if s["truncated_at"] == "max_output_bytes" {
			b.WriteString(", truncated at the size limit")
		} else {
			b.WriteString(", truncated at the row limit")
		}
	}
	b.WriteString(")\n")
	return b.String()
}

// cellEscaper shows line breaks and tabs in a cell as escapes. Building a
// Replacer costs far more than using one, so it is built once.
var cellEscaper = strings.NewReplacer("\n", `\n`, "\r", `\r`, "\t", `\t`)

func cell(v any) string {
	var s string
	switch x := v.(type) {
	case nil:
		s = "NULL"
	case string:
		s = x
	default:
		b, err := json.Marshal(x)
		if err != nil {
			s = fmt.Sprint(x)
		} else {
			s = string(b)
		}
	}
	s = cellEscaper.Replace(s)
	if utf8.RuneCountInString(s) > maxCellWidth {
		r := []rune(s)
		s = string(r[:maxCellWidth-1]) + "…"
	}
	return s
}

func renderShell(s map[string]any) string {
	var b strings.Builder
	if code, ok := s["exit_code"]; ok && code != nil {
		fmt.Fprintf(&b, "exit %v", code)
	} else {
		b.WriteString("no exit status")
	}
	if t, _ := s["timed_out"].(bool); t {
		b.WriteString(" (timed out)")
	}
	b.WriteByte('\n')
	for _, stream := range []string{"stdout", "stderr"} {
		out, _ := s[stream].(string)
		if out == "" {
			continue
		}
		fmt.Fprintf(&b, "--- %s ---\n%s", stream, out)
		if !strings.HasSuffix(out, "\n") {
			b.WriteByte('\n')
		}
	}
	if t, _ := s["truncated"].(bool); t {
		b.WriteString("[output truncated]\n")
	}
	return b.String()
}

func renderTargets(s map[string]any) string {
	items, _ := s["targets"].([]any)
	var b strings.Builder
	for _, it := range items {
		m, _ := it.(map[string]any)
		tools, _ := m["tools"].([]any)
		fmt.Fprintf(&b, "%v (%v, use %v)", m["name"], m["kind"], tools[0])
		if d, _ := m["description"].(string); d != "" {
			fmt.Fprintf(&b, ": %s", d)
		}
		if labels, ok := m["labels"].(map[string]any); ok && len(labels) > 0 {
			lb, _ := json.Marshal(labels)
			fmt.Fprintf(&b, " labels=%s", lb)
		}
		b.WriteByte('\n')
	}
	return b.String()
}
