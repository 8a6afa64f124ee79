// Command dlbench is the Go baseline of tools/dlbench/run.sh: a bare
// net/http handler serving every file under a directory from memory
// (read once at start), with a Content-Type and Content-Length and
// nothing else: the least a Go server does per download.
//
//	go run ./tools/dlbench -addr 127.0.0.1:18291 -dir www
package main

import (
	"flag"
	"io/fs"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18291", "listen address")
	dir := flag.String("dir", ".", "directory whose files are served (URL path = path under it)")
	flag.Parse()
	files := map[string][]byte{}
	err := filepath.WalkDir(*dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(*dir, p)
		files["/"+filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(http.ListenAndServe(*addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header()["Content-Type"] = []string{"application/javascript"}
		w.Header()["Content-Length"] = []string{strconv.Itoa(len(b))}
		_, _ = w.Write(b)
	})))
}
