package meter

// EstimateInterrupted is the usage to charge for a stream that ended
// without its final usage (see the package doc for the rule). For a
// complete stream it returns the reported usage unchanged.
func EstimateInterrupted(r StreamResult, maxTokens int64) Usage {
	if r.Complete() {
		return r.Usage
	}
	if !r.SawStart {
		return Usage{} // nothing known: the proxy charges the hold's estimate
	}
	u := r.Usage
	streamed := clampCount(r.StreamedOutputBytes)
	if maxTokens > 0 {
		streamed = min(streamed, maxTokens)
	}
	u.OutputTokens = max(u.OutputTokens, streamed)
	return u
}
