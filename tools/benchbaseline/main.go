// Command benchbaseline is the baseline server of docs/BENCHMARKS.md: a
// bare net/http handler answering POST /updates with fixed bytes (the
// answer mirrord gave for the same device), POST /stats with
// {"status":"ok"} after reading the body, and http.ServeFile of a file
// for downloads.
//
//	benchbaseline -addr 127.0.0.1:18090 -answer answer.json -file bundle.zip
package main

import (
	"flag"
	"io"
	"log"
	"net/http"
	"os"
	"strconv"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18090", "listen address")
	answerPath := flag.String("answer", "", "file with the /updates answer bytes")
	file := flag.String("file", "", "file served at /file")
	flag.Parse()
	answer, err := os.ReadFile(*answerPath)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /updates", fixed(answer))
	mux.HandleFunc("POST /stats", fixed([]byte(`{"status":"ok"}`+"\n")))
	mux.HandleFunc("GET /file", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, *file) })
	log.Fatal(http.ListenAndServe(*addr, mux))
}

// fixed reads the request body and answers b.
func fixed(b []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		_, _ = w.Write(b)
	}
}
