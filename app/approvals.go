package app

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"

	"github.com/mcp-guard/mcp-guard/approvals"
	"github.com/mcp-guard/mcp-guard/guard"
	"github.com/mcp-guard/mcp-guard/recorder"
)

// buildApprovals starts the approval workflow on the recorder's database,
// with Slack when it is configured.
func (a *App) buildApprovals(ctx context.Context) (guard.Approver, error) {
	cfg := a.Config.Approvals
	people := make([]approvals.Person, len(cfg.People))
	for i, p := range cfg.People {
		people[i] = approvals.Person{Email: p.Email, SlackUser: p.SlackUser, Groups: p.Groups}
	}
	var notifier *approvals.SlackNotifier
	if s := cfg.Slack; s != nil {
		token := a.getenv(s.BotTokenEnv)
		if token == "" {
			return nil, fmt.Errorf("approvals.slack.bot_token_env: %s is empty", s.BotTokenEnv)
		}
		var err error
		notifier, err = approvals.NewSlackNotifier(approvals.SlackOptions{
			BotToken: token, APIURL: s.APIURL, Channel: s.Channel,
			Logger: a.Logger.With("component", "slack"),
		})
		if err != nil {
			return nil, fmt.Errorf("approvals.slack: %w", err)
		}
	}
	opts := approvals.Options{
		Expiry: cfg.Expiry.Duration,
		Wait:   cfg.Wait.Duration,
		People: people,
		Logger: a.Logger.With("component", "approvals"),
		OnEvent: func(e approvals.Event) {
			a.recordApprovalEvent(e)
		},
	}
	if notifier != nil {
		opts.Notifier = notifier
	}
	var st approvals.Store = approvals.NewSQLiteStore(a.Recorder.DB())
	if a.store != nil {
		st = approvals.NewPostgresStore(a.store, a.Logger.With("component", "approvals"))
	}
	svc, err := approvals.NewWithStore(ctx, st, opts)
	if err != nil {
		return nil, err
	}
	a.approvals = svc
	go func() { _ = svc.Run(a.bg) }()

	if s := cfg.Slack; s != nil {
		if s.SocketModeAppTokenEnv != "" {
			appToken := a.getenv(s.SocketModeAppTokenEnv)
			sm, err := approvals.NewSocketMode(svc, notifier, appToken)
			if err != nil {
				return nil, fmt.Errorf("approvals.slack.socket_mode_app_token_env: %w", err)
			}
			go func() {
				if err := sm.Run(a.bg); err != nil && a.bg.Err() == nil {
					a.Logger.Error("slack socket mode stopped", "error", err)
				}
			}()
		}
		if s.SigningSecretEnv != "" {
			secret := a.getenv(s.SigningSecretEnv)
			h, err := approvals.NewCallbackHandler(svc, notifier, secret)
			if err != nil {
				return nil, fmt.Errorf("approvals.slack.signing_secret_env: %w", err)
			}
			a.slack = h
			a.closers = append(a.closers, h.Close)
		}
	}
	key, err := loadOrCreateKey(filepath.Join(filepath.Dir(a.Config.Recorder.Path), "approval-binding.key"), 32)
	if err != nil {
		return nil, err
	}
	confirmPath := cfg.ConfirmKeyFile
	if confirmPath == "" {
		confirmPath = filepath.Join(filepath.Dir(a.Config.Recorder.Path), "confirm.key")
	}
	a.confirmKey, err = loadOrCreateKey(confirmPath, 32)
	if err != nil {
		return nil, fmt.Errorf("approvals.confirm_key_file: %w", err)
	}
	channels := map[string]string{}
	for _, t := range a.Config.Targets {
		channels[t.Name] = t.ApprovalChannel
	}
	return &guard.ApprovalFlow{
		Service: svc,
		Channel: func(target string) string { return channels[target] },
		Key:     key,
		Redact:  func(args map[string]any) any { return a.Guard.RedactArgs(args) },
		Logger:  a.Logger.With("component", "approvals"),
	}, nil
}

func (a *App) slackHandler() http.Handler {
	if a.slack == nil {
		return nil
	}
	return a.slack
}

// ApprovalEvent is the body of an approval record in the transcript.
type ApprovalEvent struct {
	RequestID string   `json:"request_id"`
	Event     string   `json:"event"`
	State     string   `json:"state"`
	Approver  string   `json:"approver,omitempty"`
	Approve   *bool    `json:"approve,omitempty"`
	Via       string   `json:"via,omitempty"`
	Caller    any      `json:"caller"`
	Tool      string   `json:"tool"`
	Target    string   `json:"target"`
	Display   string   `json:"display"`
	Reasons   []string `json:"reasons,omitempty"`
	Digest    string   `json:"digest"`
	// Decisions are all decisions so far, so that a decision made in
	// another process (the CLI), which writes no record of its own, is
	// still named by the next record this process writes.
	Decisions []approvals.Decision `json:"decisions,omitempty"`
}

// recordApprovalEvent writes an approval event to the transcript. It runs
// on its own goroutine, since the service must not block on it.
func (a *App) recordApprovalEvent(e approvals.Event) {
	if e.Request == nil {
		return
	}
	body := ApprovalEventBody(e)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := a.Recorder.Append(context.Background(), recorder.KindApproval, "", e.Request.ID, body); err != nil {
			a.Logger.Error("recording an approval event failed", "request_id", e.Request.ID, "error", err)
		}
	}()
}

// ApprovalEventBody is the transcript record of an approval event.
func ApprovalEventBody(e approvals.Event) ApprovalEvent {
	body := ApprovalEvent{
		RequestID: e.Request.ID, Event: string(e.Type), State: string(e.Request.State),
		Caller: e.Request.Caller, Tool: e.Request.Tool, Target: e.Request.Target,
		Display: e.Request.Display, Reasons: e.Request.Reasons, Digest: e.Request.Digest,
		Decisions: e.Request.Decisions,
	}
	if d := e.Decision; d != nil {
		approve := d.Approve
		body.Approver, body.Approve, body.Via = d.Approver, &approve, d.Via
	}
	return body
}
