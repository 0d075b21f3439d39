package cli

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/mcp-guard/mcp-guard/recorder"
)

func newAuditShow() *cobra.Command {
	var src auditSource
	var maxResult int
	cmd := &cobra.Command{
		Use:   "show SESSION",
		Short: "Print the transcript of a session: each call, its decision, approvals and result",
		Long: "show prints a session as a readable transcript: for each call the time, caller, " +
			"tool, target and arguments, the policy decision and its reasons, the approval " +
			"events, the outcome and the result (cut at --max-result bytes for display). " +
			"SESSION may be a unique prefix of the session id (see audit sessions).",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return errors.New("audit show takes one session id; " +
					"mcp-guard audit sessions lists them")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			db, _, err := src.openRO()
			if err != nil {
				return err
			}
			defer db.Close()
			return showSession(cmd.Context(), db, cmd.OutOrStdout(), args[0], maxResult)
		},
	}
	src.flags(cmd)
	cmd.Flags().IntVar(&maxResult, "max-result", 2000, "show at most this many bytes of each result")
	return cmd
}

func showSession(ctx context.Context, db *sql.DB, w io.Writer, id string, maxResult int) error {
	rd, err := recorder.NewReader(ctx, db)
	if err != nil {
		return err
	}
	defer rd.Close()
	s, err := rd.FindSession(ctx, id)
	if err != nil {
		return err
	}
	st := sessionStart(s.Start)
	fmt.Fprintf(w, "session %s\n", s.ID)
	if s.Start != nil {
		line(w, "transport", fmt.Sprintf("%s, client %s, protocol %s",
			orDash(st.Transport), orDash(st.client()), orDash(st.Protocol)))
		line(w, "caller", describeCaller(st.Caller))
	} else {
		line(w, "start", "not in the transcript (pruned)")
	}
	line(w, "from", showTime(s.FirstAt)+" to "+showTime(s.LastAt))
	line(w, "calls", fmt.Sprint(s.Calls))

	return rd.SessionRecords(ctx, s.ID, func(rec recorder.Record) error {
		switch rec.Kind {
		case recorder.KindCallIntent:
			c, err := rd.LoadCall(ctx, rec)
			if err != nil {
				return err
			}
			showCall(w, c, maxResult)
		case recorder.KindCallCompletion:
			ok, err := rd.HasIntent(ctx, rec.CallID)
			if err != nil || ok {
				return err // shown with its intent
			}
			var cv completionView
			_ = json.Unmarshal(rec.Body, &cv)
			fmt.Fprintf(w, "\n%s  completion of call %s, whose intent is not in the transcript\n",
				showTime(rec.At), rec.CallID)
			line(w, "outcome", cv.Outcome)
		case recorder.KindApproval:
			if rec.CallID != "" {
				return nil // shown with its call
			}
			var av approvalView
			_ = json.Unmarshal(rec.Body, &av)
			fmt.Fprintf(w, "\n%s  approval %s\n", showTime(rec.At), av.describe())
		case recorder.KindSessionEnd:
			fmt.Fprintf(w, "\n%s  session ended\n", showTime(rec.At))
		}
		return nil
	})
}

func showCall(w io.Writer, c recorder.Call, maxResult int) {
	e := mergeCall(c)
	on := ""
	if e.Target != "" {
		on = " on " + e.Target
	}
	fmt.Fprintf(w, "\n%s  %s%s  [call %s, seq %d]\n", showTime(c.Intent.At), e.Tool, on,
		e.CallID, c.Intent.Seq)
	line(w, "caller", describeCaller(e.Caller))
	line(w, "arguments", string(e.Arguments))
	line(w, "decision", e.Decision.Outcome+policyNote(e.PolicyVersion))
	line(w, "reasons", orDash(strings.Join(e.Decision.Reasons, "; ")))
	for i, a := range e.Approvals {
		label := ""
		if i == 0 {
			label = "approvals"
		}
		line(w, label, showTime(c.Approvals[i].At)+" "+a.describe())
	}
	if c.Completion == nil {
		line(w, "outcome", "incomplete: no completion was recorded (the guard stopped mid-call)")
		return
	}
	outcome := fmt.Sprintf("%s in %d ms", e.Outcome, e.DurationMS)
	if e.Reason != "" {
		outcome += ": " + e.Reason
	}
	if e.IsError && e.Outcome == "ok" {
		outcome += " (the tool reported an error)"
	}
	line(w, "outcome", outcome)
	// A refused call's result only repeats the reason.
	if e.Outcome == "ok" && len(e.Result) > 0 && string(e.Result) != "null" {
		line(w, "result", clip(resultText(e.Result), maxResult, e))
	}
}

// resultText is the result as recorded: JSON, or the text of a result
// the recorder cut (stored as a JSON string).
func resultText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

func clip(s string, max int, e exportCall) string {
	note := ""
	if e.Truncated {
		note = fmt.Sprintf(" [recorded cut at %d of %d bytes]", len(s), e.ResultSize)
	}
	if max > 0 && len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		note = fmt.Sprintf(" … [%d of %d bytes shown]", cut, e.ResultSize) + note
		s = s[:cut]
	}
	return s + note
}

func policyNote(version string) string {
	if version == "" {
		return ""
	}
	return " (policy " + version + ")"
}

func describeCaller(c callerView) string {
	s := c.name()
	var extra []string
	if c.Email != "" && c.Subject != "" && c.Subject != c.Email {
		extra = append(extra, "subject "+c.Subject)
	}
	if c.Issuer != "" {
		extra = append(extra, "issuer "+c.Issuer)
	}
	if len(c.Groups) > 0 {
		extra = append(extra, "groups "+strings.Join(c.Groups, ", "))
	}
	if len(extra) > 0 {
		s += " (" + strings.Join(extra, "; ") + ")"
	}
	return orDash(s)
}

func line(w io.Writer, label, value string) {
	fmt.Fprintf(w, "  %-10s %s\n", label, value)
}
