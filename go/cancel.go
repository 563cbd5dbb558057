package ckpt

/*
#include <ckpt.h>
*/
import "C"

import (
	"context"
	"sync"
	"time"
)

// watch makes ctx reach the library for one call on h: its deadline becomes the call's
// timeout (the earlier of it and o.Timeout), and its end triggers a ckpt_cancel token attached
// to the handle, from a goroutine of its own. A context already ended triggers the token
// before the call, which then fails at once with ErrCancelled. The returned stop ends the
// goroutine and frees the token; call it once the call returned. The returned channel closes
// once the token has been triggered (nil when ctx cannot end). The returned ended reports
// whether ctx has ended, and if so triggers the token itself, at once: a callback calls it
// before answering the library, which looks at the token right after the answer, so a
// context that ended while a method ran has CRIU told to abort even when the goroutine has
// not run yet. A context that can never end (context.Background) costs nothing.
func (h *handle) watch(ctx context.Context, o *Options) (stop func(), triggered <-chan struct{}, ended func() bool, err error) {
	done := ctx.Done()
	if done == nil {
		return func() {}, nil, nil, nil
	}
	if d, ok := ctx.Deadline(); ok {
		left := time.Until(d)
		if left < time.Millisecond {
			// A deadline already past: the token below stops the call.
			left = time.Millisecond
		}
		if o == nil || o.Timeout == 0 || left < o.Timeout {
			ms, err := durationUnits(left, time.Millisecond, "context deadline")
			if err != nil {
				// Further away than the library can count (49 days): the token alone.
				ms = 0
			}
			if ms > 0 {
				if err := h.check(C.ckpt_opts_set_timeout_ms(h.p, C.uint32_t(ms))); err != nil {
					return nil, nil, nil, err
				}
			}
		}
	}
	c := C.ckpt_cancel_new()
	if c == nil {
		return nil, nil, nil, newError(ErrIO, "ckpt_cancel_new: out of descriptors or memory")
	}
	if err := h.check(C.ckpt_opts_set_cancel(h.p, c)); err != nil {
		C.ckpt_cancel_free(c)
		return nil, nil, nil, err
	}
	// Triggering twice is harmless: the token stays triggered.
	ended = func() bool {
		if ctx.Err() == nil {
			return false
		}
		C.ckpt_cancel_trigger(c)
		return true
	}
	fired := make(chan struct{})
	if ctx.Err() != nil {
		C.ckpt_cancel_trigger(c)
		close(fired)
		return func() { C.ckpt_cancel_free(c) }, fired, ended, nil
	}
	finished := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-done:
			C.ckpt_cancel_trigger(c)
			close(fired)
		case <-finished:
		}
	}()
	return func() {
		close(finished)
		wg.Wait()
		C.ckpt_cancel_free(c)
	}, fired, ended, nil
}
