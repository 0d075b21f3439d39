package approvals

import (
	"context"
	"errors"
	"fmt"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// SocketMode receives button clicks over Slack's Socket Mode instead of an
// HTTP callback. The socket is opened with the app-level token, which is
// what authenticates Slack to us there, so no request signature is checked.
// Clicks take the same path to a decision as with CallbackHandler.
type SocketMode struct {
	client *socketmode.Client
	in     *interactions
}

// NewSocketMode returns a Socket Mode receiver. appToken is the app-level
// xapp- token with the connections:write scope.
func NewSocketMode(svc *Service, n *SlackNotifier, appToken string) (*SocketMode, error) {
	if appToken == "" {
		return nil, errors.New("approvals: slack app-level token is required")
	}
	if svc == nil || n == nil {
		return nil, errors.New("approvals: socket mode needs a service and a notifier")
	}
	api := slack.New(n.token, n.clientOptions(slack.OptionAppLevelToken(appToken))...)
	return &SocketMode{
		client: socketmode.New(api),
		in:     &interactions{svc: svc, slack: n, log: svc.log},
	}, nil
}

// Run connects and handles clicks until ctx ends. It returns nil when ctx
// ends and the connection error when Slack cannot be reached for good (an
// invalid token, for instance).
func (m *SocketMode) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- m.client.RunContext(ctx) }()
	defer m.in.wg.Wait()

	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("slack socket mode: %w", err)
		case evt := <-m.client.Events:
			m.handle(ctx, evt)
		}
	}
}

// handle acknowledges an interactive envelope and dispatches its click.
func (m *SocketMode) handle(ctx context.Context, evt socketmode.Event) {
	switch evt.Type {
	case socketmode.EventTypeInteractive:
		if evt.Request != nil {
			if err := m.client.AckCtx(ctx, evt.Request.EnvelopeID, nil); err != nil {
				m.in.log.Error("acknowledge slack envelope", keyError, err)
			}
		}
		cb, ok := evt.Data.(slack.InteractionCallback)
		if !ok {
			m.in.log.Warn("slack interactive event without a callback")
			return
		}
		m.in.dispatch(cb)
	case socketmode.EventTypeConnectionError, socketmode.EventTypeInvalidAuth:
		m.in.log.Warn("slack socket mode connection problem",
			keyType, string(evt.Type))
	case socketmode.EventTypeConnected:
		m.in.log.Info("slack socket mode connected")
	}
}
