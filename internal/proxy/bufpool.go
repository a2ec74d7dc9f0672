package proxy

import "sync"

// bufferPool recycles ReverseProxy's copy buffers. Without one, httputil
// allocates a fresh 32 KiB buffer for every response: the largest single
// allocation of a request, and most of the garbage a bare ReverseProxy makes.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }
