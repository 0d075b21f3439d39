package approvals

import "sync"

// hub wakes waiters when a request changes in this process. Each request id
// with waiters has one channel, closed and forgotten on the next change.
type hub struct {
	// mu guards waiters.
	mu      sync.Mutex
	waiters map[string]*waiterSet
}

type waiterSet struct {
	ch chan struct{}
	n  int
}

// subscribe returns a channel that is closed at the next change of id, and
// a release function that must be called once the channel is not needed.
func (h *hub) subscribe(id string) (<-chan struct{}, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.waiters == nil {
		h.waiters = map[string]*waiterSet{}
	}
	w := h.waiters[id]
	if w == nil {
		w = &waiterSet{ch: make(chan struct{})}
		h.waiters[id] = w
	}
	w.n++

	var once sync.Once
	return w.ch, func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			w.n--
			if w.n == 0 && h.waiters[id] == w {
				delete(h.waiters, id)
			}
		})
	}
}

// notify wakes everyone waiting on id.
func (h *hub) notify(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if w := h.waiters[id]; w != nil {
		close(w.ch)
		delete(h.waiters, id)
	}
}
