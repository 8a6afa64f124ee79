package httpapi

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"mirrord/node"
)

// TestSlowBodyIsCutOff sends the headers of each device POST and then
// only part of its body, as a slowloris client would: behind the
// server's body deadline (node.BodyTimeouts, as the daemon runs it) the
// node answers 408 and frees the connection, while a whole body sent
// slowly but within the timeout is answered normally.
func TestSlowBodyIsCutOff(t *testing.T) {
	f := newFixture(t, 1024)
	api := New(Config{MaxBodyBytes: 64 << 10}, f.api.state, f.store,
		f.stats, f.ov, slog.New(slog.NewTextHandler(io.Discard, nil)))
	mux := http.NewServeMux()
	api.Register(mux)
	srv := httptest.NewServer(node.BodyTimeouts{Total: 300 * time.Millisecond}.Wrap(mux))
	defer srv.Close()

	for _, path := range []string{"/updates", "/stats", "/channel_self"} {
		t.Run(path, func(t *testing.T) {
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			body := deviceBody
			head := "POST " + path + " HTTP/1.1\r\nHost: edge.test\r\nContent-Type: application/json\r\n" +
				"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
			if _, err := io.WriteString(conn, head+body[:10]); err != nil {
				t.Fatal(err)
			}
			// The test's own bound: far above BodyTimeout; on a server
			// without a body timeout the read below hits it.
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no answer to a stalled body: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestTimeout {
				t.Fatalf("status %d, want 408", resp.StatusCode)
			}
		})
	}

	t.Run("slow but within the timeout", func(t *testing.T) {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		body := deviceBody
		head := "POST /updates HTTP/1.1\r\nHost: edge.test\r\nContent-Type: application/json\r\n" +
			"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
		io.WriteString(conn, head)
		for i := 0; i < len(body); i += len(body) / 4 {
			io.WriteString(conn, body[i:min(i+len(body)/4, len(body))])
			time.Sleep(20 * time.Millisecond) // a slow link, not a wait for a condition
		}
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "1.0.1") {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		// The connection stays usable after the deadline was lifted.
		time.Sleep(400 * time.Millisecond) // past BodyTimeout, on purpose
		io.WriteString(conn, head+body)
		resp, err = http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("kept-alive connection broken after a body deadline: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("second request: status %d", resp.StatusCode)
		}
	})
}
