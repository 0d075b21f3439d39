package approvals

import (
	"context"
	"strings"
	"testing"
)

// TestUpdateKeepsNewestState: a decision's redraw and the claim's redraw
// run concurrently, and Slack keeps whichever update arrives last. An
// update older than the one already sent must not be drawn, or the
// message ends "not run yet" after the call ran.
func TestUpdateKeepsNewestState(t *testing.T) {
	ctx := context.Background()
	snapshot := func(r *Request, state State, decisions int) *Request {
		c := r.clone()
		c.State = state
		c.Decisions = nil
		for i := 0; i < decisions; i++ {
			c.Decisions = append(c.Decisions, Decision{Approver: "carol@example.com",
				Approve: true, Via: ViaSlack})
		}
		return c
	}
	type step struct {
		state     State
		decisions int
	}
	cases := []struct {
		name  string
		order []step
		drawn []string // a text each drawn update shows, in order
	}{
		{
			name:  "executed, then the approval's late redraw",
			order: []step{{StateExecuted, 1}, {StateApproved, 1}},
			drawn: []string{"Run at"},
		},
		{
			name:  "in order",
			order: []step{{StateApproved, 1}, {StateExecuted, 1}},
			drawn: []string{"Not run yet", "Run at"},
		},
		{
			name:  "second approval, then the first's late redraw",
			order: []step{{StatePending, 2}, {StatePending, 1}},
			drawn: []string{"2 of"},
		},
		{
			name:  "the same state twice is drawn twice",
			order: []step{{StateDenied, 1}, {StateDenied, 1}},
			drawn: []string{"Denied", "Denied"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envConfig{slack: true})
			r := e.open(deleteRequest())
			if r.Message.TS == "" {
				t.Fatal("the request was not posted")
			}
			r.Required = 3
			for _, o := range tc.order {
				s := snapshot(r, o.state, o.decisions)
				if o.state == StateDenied {
					s.Decisions[0].Approve = false
				}
				if err := e.notifier.Update(ctx, s); err != nil {
					t.Fatalf("Update: %v", err)
				}
			}
			updates := e.slack.Calls("chat.update")
			if len(updates) != len(tc.drawn) {
				t.Fatalf("%d updates sent, want %d", len(updates), len(tc.drawn))
			}
			for i, want := range tc.drawn {
				if got := updates[i].Form.Get("blocks"); !strings.Contains(got, want) {
					t.Errorf("update %d does not show %q: %s", i, want, got)
				}
			}
		})
	}
}
