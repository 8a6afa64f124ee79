package faults

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"mirrord/content"
)

const (
	appID   = "com.example.faults"
	channel = "production"
)

// object is one file a device downloads: the zip or a manifest file.
type object struct {
	// name is the name it is served under: "VERSION.zip" or the
	// manifest file_name.
	name string
	// path holds the bytes a device must get (for a ".br" file, the
	// bytes before compression).
	path   string
	sha256 string
	size   int64
}

// release is one version the harness published or tried to.
type release struct {
	version string
	dir     string
	zip     object
	// files are the manifest files by name (without ".br").
	files map[string]object

	// Set when the publish was acknowledged (the CLI exited 0) by the
	// node named via.
	acked    bool
	via      string
	scenario string
	zipCID   string
	fileCIDs map[string]string // served file_name -> CID
	lost     bool              // reported lost once
}

// published is the part of `mirrord publish --json`'s answer the
// harness checks.
type published struct {
	Version  string `json:"version"`
	ZipCID   string `json:"zip_cid"`
	Checksum string `json:"checksum"`
	Manifest []struct {
		FileName string `json:"file_name"`
		FileHash string `json:"file_hash"`
		CID      string `json:"cid"`
	} `json:"manifest"`
}

// ledger makes the releases and remembers every one, acknowledged or
// not: a publish whose answer was lost may still have committed, and a
// device may be offered it.
type ledger struct {
	root          string
	shared        []byte // the file every release holds unchanged
	changingBytes int

	mu       sync.Mutex
	rng      *rand.ChaCha8
	next     int
	versions map[string]*release
	order    []*release
}

func newLedger(root string, p plan, seed [32]byte) *ledger {
	rng := rand.NewChaCha8(seed)
	return &ledger{
		root: root, shared: randomBytes(rng, p.sharedBytes), changingBytes: p.changingBytes,
		rng: rng, next: 1, versions: map[string]*release{},
	}
}

// prepare writes the next release's directory: index.html and a script
// that name the version, a file shared with every release and one that
// changes in each. It also zips it as `mirrord publish` will, so that
// the harness knows every byte a device should get.
func (l *ledger) prepare() (*release, error) {
	l.mu.Lock()
	version := fmt.Sprintf("1.0.%d", l.next)
	l.next++
	changing := randomBytes(l.rng, l.changingBytes)
	l.mu.Unlock()

	r := &release{version: version, dir: filepath.Join(l.root, version), files: map[string]object{}}
	files := map[string][]byte{
		"index.html":      fmt.Appendf(nil, "<!doctype html><title>faults</title><p>release %s</p>\n", version),
		"js/app.js":       []byte(strings.Repeat(fmt.Sprintf("console.log(%q);\n", "mirrord "+version), 40)),
		"assets/lib.bin":  l.shared,
		"assets/data.bin": changing,
	}
	for name, b := range files {
		obj, err := writeObject(filepath.Join(r.dir, filepath.FromSlash(name)), name, b)
		if err != nil {
			return nil, err
		}
		r.files[name] = obj
	}
	zip, err := content.ZipDir(r.dir)
	if err != nil {
		return nil, err
	}
	if r.zip, err = writeObject(r.dir+".zip", version+".zip", zip); err != nil {
		return nil, err
	}

	l.mu.Lock()
	l.versions[version] = r
	l.order = append(l.order, r)
	l.mu.Unlock()
	return r, nil
}

// ack records an acknowledged publish, checking that its answer names
// the bytes the harness made.
func (l *ledger) ack(r *release, answer []byte, via, scenario string) error {
	var p published
	if err := json.Unmarshal(answer, &p); err != nil {
		return fmt.Errorf("publish %s: answer is not JSON: %w", r.version, err)
	}
	if p.Version != r.version || p.Checksum != r.zip.sha256 || p.ZipCID == "" || len(p.Manifest) != len(r.files) {
		return fmt.Errorf("publish %s: the answer does not describe the published bundle: %s", r.version, answer)
	}
	cids := map[string]string{}
	for _, f := range p.Manifest {
		want, ok := r.files[strings.TrimSuffix(f.FileName, ".br")]
		if !ok || f.FileHash != want.sha256 || f.CID == "" {
			return fmt.Errorf("publish %s: manifest entry %s does not match the published file", r.version, f.FileName)
		}
		cids[f.FileName] = f.CID
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	r.acked, r.via, r.scenario, r.zipCID, r.fileCIDs = true, via, scenario, p.ZipCID, cids
	return nil
}

// get returns the release of a version the harness made, nil if none.
func (l *ledger) get(version string) *release {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.versions[version]
}

// acked returns the acknowledged releases, oldest first.
func (l *ledger) acked() []*release {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*release
	for _, r := range l.order {
		if r.acked {
			out = append(out, r)
		}
	}
	return out
}

// cidOf returns the zip CID of an acknowledged release, "" otherwise.
func (l *ledger) cidOf(r *release) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return r.zipCID
}

// markLost records that r was found lost and reports whether it was
// the first time.
func (l *ledger) markLost(r *release) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	first := !r.lost
	r.lost = true
	return first
}

// latestAcked returns the newest acknowledged release, nil if none.
func (l *ledger) latestAcked() *release {
	a := l.acked()
	if len(a) == 0 {
		return nil
	}
	return a[len(a)-1]
}

// latestAckedVia returns the newest release node name acknowledged,
// nil if none.
func (l *ledger) latestAckedVia(name string) *release {
	a := l.acked()
	for i := len(a) - 1; i >= 0; i-- {
		if a[i].via == name {
			return a[i]
		}
	}
	return nil
}

// newer reports whether version a is newer than b (both "1.0.N").
func newer(a, b string) bool {
	var na, nb int
	fmt.Sscanf(a, "1.0.%d", &na)
	fmt.Sscanf(b, "1.0.%d", &nb)
	return na > nb
}

// objects lists what a device can download of an acknowledged release,
// with the CID each is served under.
func (r *release) objects() []servedObject {
	out := []servedObject{{cid: r.zipCID, want: r.zip}}
	for name, cid := range r.fileCIDs {
		want := r.files[strings.TrimSuffix(name, ".br")]
		want.name = name
		out = append(out, servedObject{cid: cid, want: want})
	}
	return out
}

// servedObject is an object with its CID.
type servedObject struct {
	cid  string
	want object
}

func (o servedObject) path() string { return "/dl/" + o.cid + "/" + o.want.name }

func writeObject(path, name string, b []byte) (object, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return object{}, err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return object{}, err
	}
	return object{name: name, path: path, sha256: sha256Hex(b), size: int64(len(b))}, nil
}

func randomBytes(rng *rand.ChaCha8, n int) []byte {
	b := make([]byte, n)
	_, _ = rng.Read(b) // never fails
	return b
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
