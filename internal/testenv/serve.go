package testenv

import (
	"context"
	"net"
	"testing"
)

// Serve runs serve in the background on a new listener at addr ("127.0.0.1:0" for a free
// loopback port) and returns the listener's base URL. stop cancels serve's context, waits
// for serve to return and returns its error; the caller decides when (at cleanup, or to
// serve again at the same address).
func Serve(t testing.TB, addr string, serve func(ctx context.Context, ln net.Listener) error) (base string, stop func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening on %s: %v", addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln) }()
	return "http://" + ln.Addr().String(), func() error {
		cancel()
		return <-done
	}
}
