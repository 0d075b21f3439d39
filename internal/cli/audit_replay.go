package cli

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mcp-guard/mcp-guard/config"
	"github.com/mcp-guard/mcp-guard/policy"
	"github.com/mcp-guard/mcp-guard/recorder"
	"github.com/mcp-guard/mcp-guard/shellfacts"
	"github.com/mcp-guard/mcp-guard/tools"
)

func newAuditReplay() *cobra.Command {
	var src auditSource
	var flags callFlags
	var dir string
	cmd := &cobra.Command{
		Use:   "replay --policy DIR",
		Short: "Report every recorded call whose decision another policy would change",
		Long: "replay evaluates the policy in DIR on the input recorded with each call (tool, " +
			"target, caller, arguments and the facts the guard parsed) and lists the calls " +
			"whose outcome or reasons would differ, old against new. Arguments and facts were " +
			"recorded with secrets redacted, so a rule that looks at a secret value sees the " +
			"redaction. Target kind and labels are those recorded with the call; for records " +
			"made before they were recorded they come from --config when the target is still " +
			"configured, else the kind follows from the tool and the labels are empty. Calls refused before the policy (invalid arguments, unknown " +
			"target, unparsable SQL or command) are skipped. Exits 0 whether or not decisions change.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cf, err := flags.filter()
			if err != nil {
				return err
			}
			db, cfg, err := src.openRO()
			if err != nil {
				return err
			}
			defer db.Close()
			eng, err := policy.New(cmd.Context(), dir, slog.New(slog.DiscardHandler))
			if err != nil {
				return err
			}
			return replay(cmd.Context(), db, cfg, eng, cf, cmd.OutOrStdout())
		},
	}
	src.flags(cmd)
	flags.add(cmd)
	cmd.Flags().StringVar(&dir, "policy", "", "policy directory to replay the calls against")
	_ = cmd.MarkFlagRequired("policy")
	return cmd
}

// replayTally counts what replay found.
type replayTally struct {
	replayed, changed, skipped int
	shifts                     map[string]int // "allow -> deny" and so on
}

func replay(ctx context.Context, db *sql.DB, cfg *config.Config, eng *policy.Engine,
	cf recorder.CallFilter, w io.Writer) error {
	t := replayTally{shifts: map[string]int{}}
	err := recorder.Calls(ctx, db, cf, func(c recorder.Call) error {
		var iv intentView
		if err := json.Unmarshal(c.Intent.Body, &iv); err != nil {
			return fmt.Errorf("record %d: %w", c.Intent.Seq, err)
		}
		input, ok, err := replayInput(iv, cfg)
		if err != nil {
			return fmt.Errorf("record %d: %w", c.Intent.Seq, err)
		}
		if !ok || c.Outcome == "invalid" {
			t.skipped++
			return nil
		}
		t.replayed++
		d, err := eng.Decide(ctx, input)
		if err != nil {
			d.Reasons = append(d.Reasons, "policy error: "+err.Error())
		}
		if sameDecision(iv.Decision, d) {
			return nil
		}
		t.changed++
		shift := iv.Decision.Outcome + " -> " + d.Outcome
		t.shifts[shift]++
		fmt.Fprintf(w, "seq %d  %s  %s  %s on %s  [call %s]\n", c.Intent.Seq, showTime(c.Intent.At),
			orDash(iv.Caller.name()), iv.Tool, orDash(iv.Target), c.Intent.CallID)
		fmt.Fprintf(w, "  %s\n", shift)
		fmt.Fprintf(w, "  was: %s\n", orDash(strings.Join(iv.Decision.Reasons, "; ")))
		fmt.Fprintf(w, "  now: %s\n", orDash(strings.Join(d.Reasons, "; ")))
		return nil
	})
	if err != nil {
		return err
	}
	var shifts []string
	for k, n := range t.shifts {
		shifts = append(shifts, fmt.Sprintf("%s: %d", k, n))
	}
	slices.Sort(shifts)
	summary := fmt.Sprintf("replayed %d call(s): %d would change, %d unchanged; %d skipped "+
		"(stopped before the policy)", t.replayed, t.changed, t.replayed-t.changed, t.skipped)
	if len(shifts) > 0 {
		summary += " [" + strings.Join(shifts, ", ") + "]"
	}
	fmt.Fprintln(w, summary)
	if cfg == nil {
		fmt.Fprintln(w, "note: without --config, target labels were empty in the replayed input")
	}
	return nil
}

// replayInput rebuilds the policy input the guard built for a call, from
// what the intent recorded. ok is false for a call that never reached the
// policy.
func replayInput(iv intentView, cfg *config.Config) (map[string]any, bool, error) {
	factsKey, known := factsKeys[iv.Tool]
	if !known {
		return nil, false, nil
	}
	var facts any
	if factsKey != "" {
		if len(iv.Facts) == 0 || string(iv.Facts) == "null" {
			return nil, false, nil // refused while gathering facts, or earlier
		}
		var err error
		if facts, err = decodeFacts(factsKey, iv.Facts); err != nil {
			return nil, false, fmt.Errorf("facts: %w", err)
		}
	}
	args := any(map[string]any{})
	if len(iv.Arguments) > 0 && string(iv.Arguments) != "null" {
		var err error
		if args, err = decodeNumbers(iv.Arguments); err != nil {
			return nil, false, fmt.Errorf("arguments: %w", err)
		}
	}
	groups := make([]any, len(iv.Caller.Groups))
	for i, g := range iv.Caller.Groups {
		groups[i] = g
	}
	in := map[string]any{
		"tool": iv.Tool,
		"caller": map[string]any{"subject": iv.Caller.Subject, "issuer": iv.Caller.Issuer,
			"email": iv.Caller.Email, "groups": groups},
		"arguments": args,
		"target":    targetInput(iv, cfg),
	}
	if factsKey != "" {
		in[factsKey] = facts
	}
	return in, true, nil
}

// factsKeys maps each tool to the input key of its facts ("" for none).
var factsKeys = map[string]string{
	tools.ListTargets:   "",
	tools.QueryDatabase: "sql",
	tools.RunShell:      "shell",
	tools.ReadFile:      "file",
}

// toolKinds is the target kind a tool implies when the configuration
// does not say.
var toolKinds = map[string]string{
	tools.QueryDatabase: config.KindPostgres,
	tools.RunShell:      config.KindShell,
	tools.ReadFile:      config.KindFiles,
}

func targetInput(iv intentView, cfg *config.Config) map[string]any {
	labels := map[string]any{}
	if iv.Target == "" {
		return map[string]any{"name": "", "kind": "", "labels": labels}
	}
	kind := toolKinds[iv.Tool]
	if iv.TargetKind != "" {
		// Recorded with the call: replay exactly what was decided.
		for k, v := range iv.TargetLabels {
			labels[k] = v
		}
		return map[string]any{"name": iv.Target, "kind": iv.TargetKind, "labels": labels}
	}
	if cfg != nil {
		if t, ok := cfg.Target(iv.Target); ok {
			kind = t.Kind
			for k, v := range t.Labels {
				labels[k] = v
			}
		}
	}
	return map[string]any{"name": iv.Target, "kind": kind, "labels": labels}
}

// decodeFacts decodes recorded facts. Shell facts recorded before words
// and programs existed lack them, and a policy reading them would see
// nothing, so shell facts are decoded as shellfacts.Facts and the two
// lists derived again from the commands, as the guard derives them.
func decodeFacts(key string, raw json.RawMessage) (any, error) {
	if key != "shell" {
		return decodeNumbers(raw)
	}
	var f shellfacts.Facts
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, err
	}
	f.Index()
	return &f, nil
}

// decodeNumbers decodes JSON keeping numbers as json.Number, as the guard
// does for arguments.
func decodeNumbers(raw json.RawMessage) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

func sameDecision(old decisionView, d policy.Decision) bool {
	if old.Outcome != d.Outcome {
		return false
	}
	a, b := slices.Clone(old.Reasons), slices.Clone(d.Reasons)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
