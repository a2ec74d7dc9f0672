package proxy

import "crypto/sha256"

// TokenUser is told which service token authenticated each request, by its
// sha256 (the form the policy holds). It must return at once: it runs on
// the request path.
type TokenUser interface {
	Used(digest [sha256.Size]byte)
}

func (h *Handler) tokenUsed(digest [sha256.Size]byte) {
	if h.o.TokensUsed != nil {
		h.o.TokensUsed.Used(digest)
	}
}
