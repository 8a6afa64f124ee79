package adminapi

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
)

const testToken = "test-admin-token"

// newTestAPI serves the admin API of a one-node raft cluster (in memory)
// over a real block store, with app com.example.app created.
func newTestAPI(t *testing.T) *httptest.Server {
	t.Helper()
	srv := newTestServer(t, Config{}).srv
	if status, body := call(t, srv, "POST", "/admin/v1/apps", strings.NewReader(`{"id":"com.example.app"}`)); status != http.StatusCreated {
		t.Fatalf("create app: %d %s", status, body)
	}
	return srv
}

func call(t *testing.T, srv *httptest.Server, method, path string, body io.Reader) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if f, ok := body.(*os.File); ok {
		info, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = info.Size()
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// upload stores body and returns its CID.
func upload(t *testing.T, srv *httptest.Server, body io.Reader) string {
	t.Helper()
	status, b := call(t, srv, "POST", "/admin/v1/objects", body)
	var obj ObjectInfo
	if status != http.StatusCreated || json.Unmarshal(b, &obj) != nil {
		t.Fatalf("upload: %d %s", status, b)
	}
	return obj.CID
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func storedZip(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, data := range files {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestCreateReleaseChecks: the release checks that now stream the stored
// objects accept and refuse what they did when the objects were read
// whole.
func TestCreateReleaseChecks(t *testing.T) {
	srv := newTestAPI(t)
	index := []byte("<html>hello</html>")
	js := bytes.Repeat([]byte("console.log('mirrord');\n"), 1000)
	var br bytes.Buffer
	bw := brotli.NewWriter(&br)
	_, _ = bw.Write(js)
	_ = bw.Close()
	good := storedZip(t, map[string][]byte{"index.html": index, "app.js": js})
	// Under 1 KiB, archive/zip's first read is at offset 0, after the
	// checksum was read to the end.
	tiny := storedZip(t, map[string][]byte{"index.html": index})
	noIndex := storedZip(t, map[string][]byte{"app.js": js})
	zipCID, noIndexCID, tinyCID := upload(t, srv, bytes.NewReader(good)), upload(t, srv, bytes.NewReader(noIndex)), upload(t, srv, bytes.NewReader(tiny))
	indexCID, brCID, jsCID := upload(t, srv, bytes.NewReader(index)), upload(t, srv, bytes.NewReader(br.Bytes())), upload(t, srv, bytes.NewReader(js))

	manifest := []ReleaseFile{{FileName: "index.html", FileHash: hexSum(index), CID: indexCID}, {FileName: "app.js.br", FileHash: hexSum(js), CID: brCID}}
	tests := []struct {
		name   string
		req    CreateReleaseRequest
		status int
		msg    string
	}{
		{"good", CreateReleaseRequest{Version: "1.0.0", ZipCID: zipCID, Checksum: hexSum(good), Manifest: manifest}, http.StatusCreated, ""},
		{"tiny zip", CreateReleaseRequest{Version: "0.0.1", ZipCID: tinyCID, Checksum: hexSum(tiny)}, http.StatusCreated, ""},
		{"checksum", CreateReleaseRequest{Version: "1.0.1", ZipCID: zipCID, Checksum: hexSum(noIndex)}, http.StatusBadRequest, "checksum does not match"},
		{"zip without index.html", CreateReleaseRequest{Version: "1.0.2", ZipCID: noIndexCID, Checksum: hexSum(noIndex)}, http.StatusBadRequest, "zip refused"},
		{"file hash", CreateReleaseRequest{Version: "1.0.3", ZipCID: zipCID, Checksum: hexSum(good),
			Manifest: []ReleaseFile{{FileName: "index.html", FileHash: hexSum(js), CID: indexCID}}}, http.StatusBadRequest, "file_hash does not match"},
		{"not brotli", CreateReleaseRequest{Version: "1.0.4", ZipCID: zipCID, Checksum: hexSum(good),
			Manifest: []ReleaseFile{{FileName: "app.js.br", FileHash: hexSum(js), CID: jsCID}}}, http.StatusBadRequest, "not valid Brotli"},
		{"missing object", CreateReleaseRequest{Version: "1.0.5", ZipCID: "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy", Checksum: hexSum(good)},
			http.StatusBadRequest, "is not on this node"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, _ := json.Marshal(tc.req)
			status, b := call(t, srv, "POST", "/admin/v1/apps/com.example.app/releases", bytes.NewReader(body))
			if status != tc.status || !strings.Contains(string(b), tc.msg) {
				t.Fatalf("HTTP %d %s, want %d with %q", status, b, tc.status, tc.msg)
			}
			if status != http.StatusCreated || len(tc.req.Manifest) == 0 {
				return
			}
			var rel struct {
				ZipSize  int64 `json:"zip_size"`
				Manifest []struct {
					Size int64 `json:"size"`
				} `json:"manifest"`
			}
			if err := json.Unmarshal(b, &rel); err != nil {
				t.Fatal(err)
			}
			if rel.ZipSize != int64(len(good)) || len(rel.Manifest) != 2 || rel.Manifest[0].Size != int64(len(index)) || rel.Manifest[1].Size != int64(br.Len()) {
				t.Errorf("sizes: %s", b)
			}
		})
	}
}

// TestCreateReleaseStreams: validating a large release does not bring
// its objects into memory. Reading a 64 MiB zip and its file whole (and
// copying them) made a leader's Go runtime stall for hundreds of ms and
// lose its raft leadership during publishes (docs/BENCHMARKS.md,
// "Publish and raft"). The test bounds the heap's growth while the
// release is validated, with the GC kept tight so that garbage does not
// count as growth.
func TestCreateReleaseStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("stores 64 MiB")
	}
	const size = 64 << 20
	srv := newTestAPI(t)
	dir := t.TempDir()
	zipPath, assetPath := filepath.Join(dir, "bundle.zip"), filepath.Join(dir, "big.bin")
	zipFile, err := os.Create(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	asset, err := os.Create(assetPath)
	if err != nil {
		t.Fatal(err)
	}
	zh, ah := sha256.New(), sha256.New()
	zw := zip.NewWriter(io.MultiWriter(zipFile, zh))
	index := []byte("<html>big</html>")
	w, _ := zw.CreateHeader(&zip.FileHeader{Name: "index.html", Method: zip.Store})
	_, _ = w.Write(index)
	w, _ = zw.CreateHeader(&zip.FileHeader{Name: "big.bin", Method: zip.Store})
	rng := rand.NewChaCha8([32]byte{1})
	chunk := make([]byte, 1<<20)
	for range size / len(chunk) {
		_, _ = rng.Read(chunk)
		if _, err := io.MultiWriter(w, asset, ah).Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	chunk = nil
	for _, f := range []*os.File{zipFile, asset} {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			t.Fatal(err)
		}
	}
	req := CreateReleaseRequest{Version: "2.0.0", ZipCID: upload(t, srv, zipFile), Checksum: hex.EncodeToString(zh.Sum(nil)),
		Manifest: []ReleaseFile{
			{FileName: "big.bin", FileHash: hex.EncodeToString(ah.Sum(nil)), CID: upload(t, srv, asset)},
			{FileName: "index.html", FileHash: hexSum(index), CID: upload(t, srv, bytes.NewReader(index))},
		}}
	zipFile.Close()
	asset.Close()
	body, _ := json.Marshal(req)

	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	base := heapObjects()
	var peak uint64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			peak = max(peak, heapObjects())
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	status, b := call(t, srv, "POST", "/admin/v1/apps/com.example.app/releases", bytes.NewReader(body))
	close(stop)
	<-done
	if status != http.StatusCreated {
		t.Fatalf("create release: %d %s", status, b)
	}
	growth := int64(peak) - int64(base)
	t.Logf("heap %d MiB before, at most %d MiB while validating a %d MiB release", base>>20, peak>>20, size>>20)
	if growth > size/2 {
		t.Fatalf("the heap grew by %d MiB while validating a %d MiB release: the objects were read into memory", growth>>20, size>>20)
	}
}

// heapObjects is the memory of live and not yet swept heap objects.
func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
