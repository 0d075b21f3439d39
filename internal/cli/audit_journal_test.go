package cli

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcp-guard/mcp-guard/recorder"
)

// journalFrames returns the frames of records, written from the format
// docs/audit.md gives, to follow the frame of seq and hash prev; it
// returns the last frame's seq and hash too.
func journalFrames(recs [][4]string, at time.Time, seq uint64,
	prev [32]byte) ([]byte, uint64, [32]byte) {
	table := crc32.MakeTable(crc32.Castagnoli)
	var out []byte
	for _, r := range recs {
		p := binary.LittleEndian.AppendUint64(nil, uint64(at.UnixNano()))
		for _, s := range r[:3] {
			p = binary.AppendUvarint(p, uint64(len(s)))
			p = append(p, s...)
		}
		p = append(p, r[3]...)
		seq++
		h := sha256.New()
		h.Write(prev[:])
		h.Write(binary.LittleEndian.AppendUint64(nil, seq))
		h.Write(p)
		h.Sum(prev[:0])
		rest := append(binary.LittleEndian.AppendUint64(nil, seq), prev[:]...)
		n := binary.LittleEndian.AppendUint32(nil, uint32(len(p)))
		crc := crc32.Update(crc32.Update(crc32.Update(0, table, n), table, rest), table, p)
		out = append(out, n...)
		out = binary.LittleEndian.AppendUint32(out, crc)
		out = append(append(out, rest...), p...)
	}
	return out, seq, prev
}

// emptyJournalStart returns the hash before the first frame of the empty
// journal at path, from its id.
func emptyJournalStart(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, err)
	if len(b) != 36 || string(b[:8]) != "mcpgjnl2" {
		t.Fatalf("the journal is not an empty one: %d bytes", len(b))
	}
	h := sha256.New()
	h.Write([]byte("mcp-guard journal start\x00"))
	h.Write(b[16:32])
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// TestAuditReadsTheJournal leaves a call's records in the journal, as a
// guard killed before it moved them into the database does: the audit
// commands move them in first and show them, or, where they cannot write
// the files, read the database as it is and say what they left out.
func TestAuditReadsTheJournal(t *testing.T) {
	for _, tc := range []struct {
		name     string
		readOnly bool
	}{
		{"writable", false},
		{"read-only files", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "t.db")
			r, err := recorder.Open(path, recorder.Options{})
			must(t, err)
			ctx := context.Background()
			must(t, r.Append(ctx, recorder.KindSessionStart, "sess-j", "",
				map[string]any{"session_id": "sess-j", "transport": "stdio"}))
			must(t, r.Append(ctx, recorder.KindCallIntent, "sess-j", "call-db",
				map[string]any{"tool": "read_file", "target": "docs",
					"arguments": map[string]any{"path": "in-the-database.md"}}))
			must(t, r.Close())

			at := time.Now().UTC()
			jpath := recorder.JournalPath(path)
			frames, _, _ := journalFrames([][4]string{
				{recorder.KindCallIntent, "sess-j", "call-j", `{"tool":"read_file",` +
					`"target":"docs","arguments":{"path":"only-in-the-journal.md"}}`},
				{recorder.KindCallCompletion, "sess-j", "call-j", `{"outcome":"ok"}`},
			}, at, 0, emptyJournalStart(t, jpath))
			f, err := os.OpenFile(jpath, os.O_WRONLY|os.O_APPEND, 0)
			must(t, err)
			_, err = f.Write(frames)
			must(t, err)
			must(t, f.Close())
			if n, err := recorder.Pending(path); err != nil || n != 2 {
				t.Fatalf("Pending = %d, %v; want the 2 records written", n, err)
			}
			if tc.readOnly {
				immutable(t, path, recorder.JournalPath(path))
			}

			code, out := run(t, "audit", "show", "sess-j", "--db", path)
			if code != 0 || !strings.Contains(out, "in-the-database.md") {
				t.Fatalf("show: exit %d\n%s", code, out)
			}
			t.Logf("audit show:\n%s", out)
			shown := strings.Contains(out, "only-in-the-journal.md")
			warned := strings.Contains(out, "2 records in the journal")
			if shown == tc.readOnly || warned != tc.readOnly {
				t.Errorf("journal call shown %v, warning %v; want shown %v:\n%s",
					shown, warned, !tc.readOnly, out)
			}
			if code, out := run(t, "audit", "verify", "--db", path); code != 0 {
				t.Errorf("verify: exit %d\n%s", code, out)
			}
			want := 0
			if tc.readOnly {
				want = 2
			}
			if n, err := recorder.Pending(path); err != nil || n != want {
				t.Errorf("Pending after the commands = %d, %v; want %d", n, err, want)
			}
		})
	}
}

// immutable makes files unwritable even for root (chattr +i) until the
// test ends; it skips the test where that is not possible.
func immutable(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if out, err := exec.Command("chattr", "+i", p).CombinedOutput(); err != nil {
			t.Skipf("cannot make %s read-only here: %v %s", p, err, out)
		}
		t.Cleanup(func() { exec.Command("chattr", "-i", p).Run() })
	}
}

// TestAuditVerifyFailsOnJournalLoss: verify fails, naming the journal,
// when the journal of a stopped guard is damaged before its end or is
// gone though the database took records through it; show still reads
// the transcript, with a warning.
func TestAuditVerifyFailsOnJournalLoss(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, jpath string)
		want   string
	}{
		{"damaged before its end", func(t *testing.T, jpath string) {
			f, err := os.OpenFile(jpath, os.O_WRONLY|os.O_APPEND, 0)
			must(t, err)
			_, err = f.Write([]byte(strings.Repeat("\xff", 64)))
			must(t, err)
			must(t, f.Close())
		}, "damaged"},
		{"deleted", func(t *testing.T, jpath string) {
			must(t, os.Remove(jpath))
		}, "missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "t.db")
			r, err := recorder.Open(path, recorder.Options{})
			must(t, err)
			must(t, r.Append(context.Background(), recorder.KindSessionStart, "sess-j", "",
				map[string]any{"session_id": "sess-j", "transport": "stdio"}))
			must(t, r.Close())
			jpath := recorder.JournalPath(path)
			tc.change(t, jpath)

			code, out := run(t, "audit", "verify", "--db", path)
			if code == 0 || !strings.Contains(out, jpath) || !strings.Contains(out, tc.want) {
				t.Errorf("verify: exit %d, want a failure naming %s and %q:\n%s",
					code, jpath, tc.want, out)
			}
			code, out = run(t, "audit", "show", "sess-j", "--db", path)
			if code != 0 || !strings.Contains(out, "warning") {
				t.Errorf("show: exit %d, want 0 with a warning:\n%s", code, out)
			}
		})
	}
}
