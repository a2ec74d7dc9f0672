package fakeupstream

// ForgetRequests drops the requests recorded so far (Requests). A
// long-running fake, such as the bench's, calls it now and then so that
// recording every request does not grow its memory without bound; the
// counters and the usage ground truth are kept.
func (s *Server) ForgetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = nil
}
