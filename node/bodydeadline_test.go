package node

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBodyTimeouts drives a server through raw connections, as slow or
// hostile clients would: a stalled admin upload and a stalled device
// body lose their connections, a refused request whose body trickles
// in does not hold its connection, and an upload that keeps sending,
// however long it takes in all, is read to the end.
func TestBodyTimeouts(t *testing.T) {
	const d = 300 * time.Millisecond
	mux := http.NewServeMux()
	mux.HandleFunc("POST /admin/v1/objects", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer ok" {
			http.Error(w, "no", http.StatusUnauthorized) // the body is not read
			return
		}
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		io.WriteString(w, strings.Repeat("x", int(n%7)))
	})
	mux.HandleFunc("POST /updates", func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
	})
	srv := httptest.NewServer(BodyTimeouts{Total: d, Idle: d}.Wrap(mux))
	defer srv.Close()

	// send writes the request head and the first part of a body of
	// length n, then each further part after pause, and returns the
	// connection.
	send := func(t *testing.T, path, auth string, n int, parts []string, pause time.Duration) net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		head := "POST " + path + " HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth +
			"\r\nContent-Length: " + strconv.Itoa(n) + "\r\n\r\n"
		io.WriteString(c, head)
		for i, p := range parts {
			if i > 0 {
				time.Sleep(pause) // the client's pace, not a wait for a condition
			}
			io.WriteString(c, p)
		}
		// The test's own bound, far above d: a server without timeouts
		// leaves the reads below waiting until it.
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		return c
	}
	// closedOrAnswered reads until the server answers or closes; it
	// fails only when the test's own deadline passes.
	closedOrAnswered := func(t *testing.T, c net.Conn) {
		t.Helper()
		_, err := io.ReadAll(c)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("the server kept a stalled connection open")
		}
	}

	t.Run("stalled upload", func(t *testing.T) {
		closedOrAnswered(t, send(t, "/admin/v1/objects", "Bearer ok", 1000, []string{"abc"}, 0))
	})
	t.Run("stalled device body", func(t *testing.T) {
		closedOrAnswered(t, send(t, "/updates", "", 1000, []string{"{"}, 0))
	})
	t.Run("trickling device body", func(t *testing.T) {
		// Each byte within d of the last, all of them in 4d: an idle
		// timeout would accept this; a device body has a total one.
		parts := strings.Split(strings.Repeat("a", 12), "")
		c := send(t, "/updates", "", 12, parts, d/3)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err == nil && resp.StatusCode == http.StatusOK {
			t.Fatal("a trickle kept the device connection past its total timeout")
		}
	})
	t.Run("refused request with a trickling body", func(t *testing.T) {
		c := send(t, "/admin/v1/objects", "Bearer wrong", 100, []string{"a"}, 0)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("answer %v %v", resp, err)
		}
		resp.Body.Close()
		closedOrAnswered(t, c)
	})
	t.Run("slow but steady upload", func(t *testing.T) {
		// Ten parts, each within the idle timeout, longer than it in all.
		parts := strings.Split(strings.Repeat("b", 10), "")
		c := send(t, "/admin/v1/objects", "Bearer ok", 10, parts, d/3)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("answer %v %v", resp, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != "xxx" { // 10 % 7
			t.Fatalf("body %q", b)
		}
	})
}
