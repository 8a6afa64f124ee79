package httpapi

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// recObserver records what the API reports.
type recObserver struct {
	mu      sync.Mutex
	checks  []string
	d       []time.Duration
	actions []string
}

func (o *recObserver) ObserveCheck(outcome string, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.checks = append(o.checks, outcome)
	o.d = append(o.d, d)
}

func (o *recObserver) ObserveStat(action string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.actions = append(o.actions, action)
}

var _ Observer = (*recObserver)(nil)

func TestObserver(t *testing.T) {
	f := newFixture(t, 10)
	obs := &recObserver{}
	f.api.cfg.Observer = obs

	f.do("POST", "/updates", deviceBody) // builtin -> 1.0.1
	f.do("POST", "/updates", strings.Replace(deviceBody, `"version_name":"builtin"`, `"version_name":"1.0.1"`, 1))
	f.do("POST", "/updates", strings.Replace(deviceBody, `"com.example.app"`, `"com.example.none"`, 1))
	f.do("POST", "/updates", `{"app_id":`)
	f.do("POST", "/updates", strings.Replace(deviceBody, `"device_id":"8f0c1d2e-3b4a-4c5d-9e6f-0a1b2c3d4e5f"`, `"device_id":""`, 1))
	want := []string{OutcomeOK, "no_new_version_available", "app_not_found", OutcomeBadRequest, OutcomeBadRequest}
	if !slices.Equal(obs.checks, want) {
		t.Errorf("check outcomes %q, want %q", obs.checks, want)
	}
	for i, d := range obs.d {
		if d <= 0 {
			t.Errorf("check %d: duration %v", i, d)
		}
	}

	f.do("POST", "/stats", fmt.Sprintf(statEv, "set"))
	f.do("POST", "/stats", "["+fmt.Sprintf(statEv, "download_complete")+`,{"action":"x"},`+fmt.Sprintf(statEv, "my_own_action")+"]")
	f.do("POST", "/stats", `{"action":"set"}`) // no app_id: refused, not observed
	if want := []string{"set", "download_complete", "my_own_action"}; !slices.Equal(obs.actions, want) {
		t.Errorf("stat actions %q, want %q", obs.actions, want)
	}
}

// TestCheckOutcomesComplete keeps CheckOutcomes in step with the codes
// resolver.Resolve can answer: every resolver.Code* constant used in
// resolve.go must be an outcome.
func TestCheckOutcomesComplete(t *testing.T) {
	fset := token.NewFileSet()
	values := map[string]string{}
	codes, err := parser.ParseFile(fset, "../codes.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	ast.Inspect(codes, func(n ast.Node) bool {
		if vs, ok := n.(*ast.ValueSpec); ok && len(vs.Names) == 1 && len(vs.Values) == 1 {
			if lit, ok := vs.Values[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				values[vs.Names[0].Name], _ = strconv.Unquote(lit.Value)
			}
		}
		return true
	})
	resolve, err := parser.ParseFile(fset, "../resolve.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	outcomes := CheckOutcomes()
	used := 0
	ast.Inspect(resolve, func(n ast.Node) bool {
		id, ok := n.(*ast.Ident)
		if !ok || !strings.HasPrefix(id.Name, "Code") {
			return true
		}
		v, ok := values[id.Name]
		if !ok {
			return true
		}
		used++
		if !slices.Contains(outcomes, v) {
			t.Errorf("resolve.go answers %s (%q), which CheckOutcomes lacks", id.Name, v)
		}
		return true
	})
	if used < 10 {
		t.Fatalf("found only %d codes in resolve.go: has the code moved?", used)
	}
	for _, list := range [][]string{outcomes, StatActions()} {
		seen := map[string]bool{}
		for _, o := range list {
			if seen[o] {
				t.Errorf("%q listed twice", o)
			}
			seen[o] = true
		}
	}
}
