package cli

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcp-guard/mcp-guard/recorder"
)

// ExportFormat names the export format version in every manifest.
const ExportFormat = "mcp-guard-export/v1"

// callFlags are the filters shared by export and replay.
type callFlags struct {
	since, until                  string
	caller, target, tool, outcome string
}

func (f *callFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.since, "since", "", "only calls at or after this date or RFC 3339 time")
	fl.StringVar(&f.until, "until", "", "only calls before this date or RFC 3339 time")
	fl.StringVar(&f.caller, "caller", "", "only calls by this caller (subject or email)")
	fl.StringVar(&f.target, "target", "", "only calls on this target")
	fl.StringVar(&f.tool, "tool", "", "only calls of this tool")
	fl.StringVar(&f.outcome, "outcome", "", "only calls with this outcome (ok, denied, invalid, "+
		"approval_denied, approval_expired, approval_pending, error, incomplete)")
}

func (f *callFlags) filter() (recorder.CallFilter, error) {
	cf := recorder.CallFilter{Caller: f.caller, Target: f.target, Tool: f.tool, Outcome: f.outcome}
	var err error
	if f.since != "" {
		if cf.Since, err = parseTime(f.since); err != nil {
			return cf, fmt.Errorf("--since: %w", err)
		}
	}
	if f.until != "" {
		if cf.Until, err = parseTime(f.until); err != nil {
			return cf, fmt.Errorf("--until: %w", err)
		}
	}
	return cf, nil
}

// used reports whether any filter was given.
func (f *callFlags) used() bool {
	return f.since+f.until+f.caller+f.target+f.tool+f.outcome != ""
}

func newAuditExport() *cobra.Command {
	var src auditSource
	var flags callFlags
	var format, outPath string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Export the calls (one line per call) or the whole chain, with what verifies it",
		Long: "export writes one line per call: the intent and the completion merged, with the " +
			"approvals of the call, and the exact records they came from (seq, time, hashes and " +
			"body text), so that anyone can recompute each record's hash. A final manifest gives " +
			"the chain head and the latest checkpoint with its signature and public key. " +
			"--format chain writes every record instead, which lets a third party check the " +
			"links and the signature too; docs/audit.md shows how.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cf, err := flags.filter()
			if err != nil {
				return err
			}
			if format == "chain" && flags.used() {
				return errors.New("--format chain exports the whole chain; filters do not apply")
			}
			db, _, err := src.openRO()
			if err != nil {
				return err
			}
			defer db.Close()
			var w io.Writer = cmd.OutOrStdout()
			var f *os.File
			if outPath != "" {
				f, err = os.OpenFile(outPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
				if err != nil {
					return fmt.Errorf("open --out: %w", err)
				}
				defer f.Close()
				w = f
			}
			bw := bufio.NewWriterSize(w, 64<<10)
			if err := export(cmd.Context(), db, bw, format, cf); err != nil {
				return err
			}
			if err := bw.Flush(); err != nil {
				return fmt.Errorf("write export: %w", err)
			}
			if f != nil {
				return f.Close()
			}
			return nil
		},
	}
	src.flags(cmd)
	flags.add(cmd)
	cmd.Flags().StringVar(&format, "format", "jsonl", "jsonl, csv, or chain (every record, as JSON lines)")
	cmd.Flags().StringVar(&outPath, "out", "", "write to this file (mode 0600) instead of stdout")
	return cmd
}

// exportRecord is a record as exported: every field its hash covers, the
// body as its exact stored text.
type exportRecord struct {
	Type      string `json:"type,omitempty"`
	Seq       int64  `json:"seq"`
	At        string `json:"at"`
	Kind      string `json:"kind"`
	SessionID string `json:"session_id"`
	CallID    string `json:"call_id"`
	PrevHash  string `json:"prev_hash"`
	Hash      string `json:"hash"`
	Body      string `json:"body"`
}

func toExport(r recorder.Record) exportRecord {
	return exportRecord{Seq: r.Seq, At: recorder.FormatTime(r.At), Kind: r.Kind,
		SessionID: r.SessionID, CallID: r.CallID, PrevHash: r.PrevHash, Hash: r.Hash,
		Body: string(r.Body)}
}

// manifest closes an export: what the export covers and what vouches
// for it.
type manifest struct {
	Type        string        `json:"type"`
	Format      string        `json:"format"`
	GeneratedAt string        `json:"generated_at"`
	Filters     any           `json:"filters,omitempty"`
	Calls       int64         `json:"calls,omitempty"`
	Records     int64         `json:"records,omitempty"`
	HeadSeq     int64         `json:"head_seq"`
	HeadHash    string        `json:"head_hash"`
	Checkpoint  *exportRecord `json:"checkpoint"`
	// Unpacked from the checkpoint body, for readers.
	CheckpointUptoSeq int64  `json:"checkpoint_upto_seq,omitempty"`
	CheckpointHead    string `json:"checkpoint_head_hash,omitempty"`
	PublicKey         string `json:"public_key,omitempty"`
	Signature         string `json:"signature,omitempty"`
}

func export(ctx context.Context, db *sql.DB, w io.Writer, format string, cf recorder.CallFilter) error {
	// Everything is read up to the head as it is now, so a guard writing
	// meanwhile does not make the export inconsistent.
	head, headHash, err := recorder.Head(ctx, db)
	if err != nil {
		return err
	}
	cf.UptoSeq = head
	m := manifest{Type: "manifest", Format: ExportFormat,
		GeneratedAt: recorder.FormatTime(time.Now()), HeadSeq: head, HeadHash: headHash}

	switch format {
	case "jsonl":
		m.Filters = filters(cf)
		enc := json.NewEncoder(w)
		err = eachCall(ctx, db, head, cf, func(c recorder.Call) error {
			m.Calls++
			return enc.Encode(mergeCall(c))
		})
	case "csv":
		m.Filters = filters(cf)
		cw := csv.NewWriter(w)
		if err := cw.Write(csvHeader); err != nil {
			return err
		}
		err = eachCall(ctx, db, head, cf, func(c recorder.Call) error {
			m.Calls++
			return cw.Write(csvRow(mergeCall(c)))
		})
		if err == nil {
			err = addManifest(ctx, db, &m)
		}
		if err == nil {
			row := make([]string, len(csvHeader))
			row[0] = "#manifest"
			raw, _ := json.Marshal(m)
			row[1] = string(raw)
			err = cw.Write(row)
		}
		cw.Flush()
		if err == nil {
			err = cw.Error()
		}
		return err
	case "chain":
		enc := json.NewEncoder(w)
		if head > 0 {
			err = recorder.Records(ctx, db, head, func(r recorder.Record) error {
				m.Records++
				e := toExport(r)
				e.Type = "record"
				return enc.Encode(e)
			})
		}
	default:
		return fmt.Errorf("--format %q: use jsonl, csv or chain", format)
	}
	if err != nil {
		return err
	}
	if err := addManifest(ctx, db, &m); err != nil {
		return err
	}
	return json.NewEncoder(w).Encode(m)
}

// filters lists the filters in use, for the manifest.
func filters(cf recorder.CallFilter) map[string]string {
	m := map[string]string{}
	set := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	if !cf.Since.IsZero() {
		set("since", recorder.FormatTime(cf.Since))
	}
	if !cf.Until.IsZero() {
		set("until", recorder.FormatTime(cf.Until))
	}
	set("caller", cf.Caller)
	set("target", cf.Target)
	set("tool", cf.Tool)
	set("outcome", cf.Outcome)
	return m
}

func eachCall(ctx context.Context, db *sql.DB, head int64, cf recorder.CallFilter,
	fn func(recorder.Call) error) error {
	if head == 0 {
		return nil
	}
	return recorder.Calls(ctx, db, cf, fn)
}

// addManifest adds the latest checkpoint at or before the head.
func addManifest(ctx context.Context, db *sql.DB, m *manifest) error {
	if m.HeadSeq == 0 {
		return nil
	}
	rec, c, err := recorder.LatestCheckpoint(ctx, db, m.HeadSeq)
	if err != nil || rec == nil {
		return err
	}
	e := toExport(*rec)
	m.Checkpoint = &e
	m.CheckpointUptoSeq, m.CheckpointHead = c.UptoSeq, c.HeadHash
	m.PublicKey, m.Signature = c.PublicKey, c.Signature
	return nil
}

// intentView and completionView read the guard's bodies, keeping values
// as raw JSON so that nothing is re-encoded (large numbers stay exact).
type intentView struct {
	Caller        callerView        `json:"caller"`
	Tool          string            `json:"tool"`
	Target        string            `json:"target"`
	TargetKind    string            `json:"target_kind,omitempty"`
	TargetLabels  map[string]string `json:"target_labels,omitempty"`
	Arguments     json.RawMessage   `json:"arguments"`
	Facts         json.RawMessage   `json:"facts,omitempty"`
	Decision      decisionView      `json:"decision"`
	PolicyVersion string            `json:"policy_version"`
	StartedAt     string            `json:"started_at"`
}

type decisionView struct {
	Outcome string   `json:"outcome"`
	Reasons []string `json:"reasons"`
}

type completionView struct {
	Outcome    string          `json:"outcome"`
	Reason     string          `json:"reason"`
	RequestID  string          `json:"request_id"`
	IsError    bool            `json:"is_error"`
	Result     json.RawMessage `json:"result"`
	ResultSize int             `json:"result_size"`
	Truncated  bool            `json:"truncated"`
	Masked     json.RawMessage `json:"masked"`
	DurationMS int64           `json:"duration_ms"`
}

// approvalView reads an approval record's body; fields the approval
// workflow does not set stay empty.
type approvalView struct {
	RequestID string          `json:"request_id"`
	Event     string          `json:"event"`
	State     string          `json:"state"`
	Approver  json.RawMessage `json:"approver"`
	Approve   *bool           `json:"approve"`
	Via       string          `json:"via"`
	Reasons   []string        `json:"reasons"`
}

// who renders the approver, a string or an object with an email or a
// subject.
func (a approvalView) who() string {
	var s string
	if json.Unmarshal(a.Approver, &s) == nil {
		return s
	}
	var o struct{ Email, Subject, Name, SlackUser string }
	if json.Unmarshal(a.Approver, &o) == nil {
		for _, v := range []string{o.Email, o.Subject, o.Name, o.SlackUser} {
			if v != "" {
				return v
			}
		}
	}
	return ""
}

// describe is one line about an approval event.
func (a approvalView) describe() string {
	var b strings.Builder
	b.WriteString(strings.TrimPrefix(a.Event, "approval_"))
	if a.RequestID != "" {
		b.WriteString(" request " + a.RequestID)
	}
	if who := a.who(); who != "" {
		b.WriteString(" by " + who)
	}
	if a.Approve != nil {
		if *a.Approve {
			b.WriteString(": approved")
		} else {
			b.WriteString(": denied")
		}
	}
	if a.Via != "" {
		b.WriteString(" via " + a.Via)
	}
	if a.State != "" {
		b.WriteString(" (state " + a.State + ")")
	}
	return b.String()
}

// exportCall is one line of the jsonl export.
type exportCall struct {
	Type          string          `json:"type"`
	CallID        string          `json:"call_id"`
	SessionID     string          `json:"session_id"`
	At            string          `json:"at"`
	Caller        callerView      `json:"caller"`
	Tool          string          `json:"tool"`
	Target        string          `json:"target"`
	Arguments     json.RawMessage `json:"arguments,omitempty"`
	Facts         json.RawMessage `json:"facts,omitempty"`
	Decision      decisionView    `json:"decision"`
	PolicyVersion string          `json:"policy_version"`
	Outcome       string          `json:"outcome"`
	Reason        string          `json:"reason,omitempty"`
	RequestID     string          `json:"request_id,omitempty"`
	IsError       bool            `json:"is_error"`
	Result        json.RawMessage `json:"result,omitempty"`
	ResultSize    int             `json:"result_size"`
	Truncated     bool            `json:"truncated"`
	Masked        json.RawMessage `json:"masked,omitempty"`
	DurationMS    int64           `json:"duration_ms"`
	Approvals     []approvalLine  `json:"approvals"`
	// Records are the records this line was made from: the intent, the
	// completion when there is one, then the approvals.
	Records []exportRecord `json:"records"`
}

type approvalLine struct {
	At string `json:"at"`
	approvalView
}

func mergeCall(c recorder.Call) exportCall {
	var iv intentView
	_ = json.Unmarshal(c.Intent.Body, &iv) // LoadCall already parsed it
	e := exportCall{
		Type: "call", CallID: c.Intent.CallID, SessionID: c.Intent.SessionID,
		At: recorder.FormatTime(c.Intent.At), Caller: iv.Caller, Tool: iv.Tool,
		Target: iv.Target, Arguments: iv.Arguments, Facts: iv.Facts, Decision: iv.Decision,
		PolicyVersion: iv.PolicyVersion, Outcome: c.Outcome, Approvals: []approvalLine{},
		Records: []exportRecord{toExport(c.Intent)},
	}
	if e.Decision.Reasons == nil {
		e.Decision.Reasons = []string{}
	}
	if c.Completion != nil {
		var cv completionView
		_ = json.Unmarshal(c.Completion.Body, &cv)
		e.Reason, e.RequestID, e.IsError = cv.Reason, cv.RequestID, cv.IsError
		e.Result, e.ResultSize, e.Truncated = cv.Result, cv.ResultSize, cv.Truncated
		e.Masked, e.DurationMS = cv.Masked, cv.DurationMS
		e.Records = append(e.Records, toExport(*c.Completion))
	}
	for _, a := range c.Approvals {
		var av approvalView
		_ = json.Unmarshal(a.Body, &av)
		e.Approvals = append(e.Approvals, approvalLine{At: recorder.FormatTime(a.At), approvalView: av})
		e.Records = append(e.Records, toExport(a))
	}
	return e
}

var csvHeader = []string{
	"call_id", "session_id", "at", "caller_subject", "caller_email", "caller_groups",
	"tool", "target", "arguments", "decision", "reasons", "approvals", "outcome", "reason",
	"is_error", "duration_ms", "result_size", "truncated", "result",
	"intent_seq", "intent_at", "intent_prev_hash", "intent_hash", "intent_body",
	"completion_seq", "completion_at", "completion_prev_hash", "completion_hash", "completion_body",
	"approval_records",
}

func csvRow(e exportCall) []string {
	var approvals []string
	for _, a := range e.Approvals {
		approvals = append(approvals, a.describe())
	}
	row := []string{
		e.CallID, e.SessionID, e.At, e.Caller.Subject, e.Caller.Email,
		strings.Join(e.Caller.Groups, " "), e.Tool, e.Target, string(e.Arguments),
		e.Decision.Outcome, strings.Join(e.Decision.Reasons, "; "), strings.Join(approvals, "; "),
		e.Outcome, e.Reason, strconv.FormatBool(e.IsError), strconv.FormatInt(e.DurationMS, 10),
		strconv.Itoa(e.ResultSize), strconv.FormatBool(e.Truncated), string(e.Result),
	}
	recs := e.Records
	for _, kind := range []string{recorder.KindCallIntent, recorder.KindCallCompletion} {
		if len(recs) > 0 && recs[0].Kind == kind {
			r := recs[0]
			recs = recs[1:]
			row = append(row, strconv.FormatInt(r.Seq, 10), r.At, r.PrevHash, r.Hash, r.Body)
		} else {
			row = append(row, "", "", "", "", "")
		}
	}
	approvalRecs := ""
	if len(recs) > 0 {
		raw, _ := json.Marshal(recs)
		approvalRecs = string(raw)
	}
	return append(row, approvalRecs)
}
