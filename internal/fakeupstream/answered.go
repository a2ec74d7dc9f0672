package fakeupstream

import "time"

// Answered is one billable answer the fake gave: a complete Messages
// response, or a succeeded batch result (counted once per batch, however
// often its results are downloaded). It is what Anthropic would bill, and
// what a fake Admin API reports.
type Answered struct {
	At    time.Time // when the request was received (a batch: when it was created)
	Key   string    // the x-api-key it was made with
	Model string
	Usage Usage
}

// Answered returns every billable answer so far.
func (s *Server) Answered() []Answered {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Answered(nil), s.answered...)
}

// answer records a billable answer; the caller holds s.mu.
func (s *Server) answer(at time.Time, model string, u Usage) {
	s.answered = append(s.answered, Answered{At: at, Key: s.Key, Model: model, Usage: u})
}
