package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

// directRules: a package under the key (the key or below it) must not
// import a path that starts with one of the values. This is the
// dependency direction content <- consensus <- {node, resolver} <-
// cmd/mirrord.
var directRules = map[string][]string{
	"mirrord/content":         {"mirrord/consensus", "mirrord/node", "mirrord/resolver", "mirrord/configs", "mirrord/devicesim", "github.com/hashicorp/raft", "github.com/libp2p/"},
	"mirrord/consensus":       {"mirrord/node", "mirrord/resolver", "mirrord/configs", "mirrord/devicesim", "github.com/libp2p/", "github.com/ipfs/boxo", "net/http"},
	"mirrord/resolver":        {"mirrord/node", "mirrord/configs", "mirrord/consensus/consensustest", "github.com/hashicorp/raft", "github.com/libp2p/", "github.com/ipfs/boxo"},
	"mirrord/node":            {"mirrord/resolver", "mirrord/configs", "mirrord/devicesim"},
	"mirrord/configs":         {"mirrord/"},
	"mirrord/devicesim":       {"mirrord/consensus", "mirrord/node", "mirrord/resolver", "mirrord/configs"},
	"mirrord/consensus/state": {"github.com/hashicorp/raft", "github.com/libp2p/", "github.com/ipfs/boxo", "net/http"},
}

// transitiveRules: a package under the key must not depend on a path
// starting with one of the values, even through other packages. The
// update check (resolver, resolver/httpapi) links no peer-to-peer or
// raft code, so it builds and answers without them.
var transitiveRules = map[string][]string{
	"mirrord/resolver": {"github.com/libp2p/", "github.com/ipfs/boxo", "github.com/hashicorp/raft"},
}

// goPackage is what `go list -json` says of one package.
type goPackage struct {
	ImportPath string
	Imports    []string
}

// TestPackageGraph enforces the dependency direction
// content <- consensus <- {node, resolver} <- cmd/mirrord.
func TestPackageGraph(t *testing.T) {
	pkgs := listDeps(t, "mirrord/...")
	for _, v := range checkDirect(pkgs, directRules) {
		t.Error(v)
	}
}

// TestUpdateCheckDeps enforces the transitive rules: the whole import
// graph below the update-check path, not only its direct imports.
func TestUpdateCheckDeps(t *testing.T) {
	pkgs := listDeps(t, "mirrord/...")
	if _, ok := pkgs["mirrord/resolver/httpapi"]; !ok {
		t.Fatal("go list did not list mirrord/resolver/httpapi")
	}
	for _, v := range checkTransitive(pkgs, transitiveRules) {
		t.Error(v)
	}
}

// TestDepsCheckersFail proves that the checkers report a broken rule:
// on a made-up graph where the device API reaches boxo (and, through
// it, libp2p) via content, and content imports libp2p directly.
func TestDepsCheckersFail(t *testing.T) {
	pkgs := graph(map[string][]string{
		"mirrord/resolver":                 {"mirrord/consensus/state", "strings"},
		"mirrord/resolver/httpapi":         {"mirrord/resolver", "mirrord/content", "net/http"},
		"mirrord/content":                  {"github.com/ipfs/boxo/blockstore", "github.com/libp2p/go-buffer-pool"},
		"github.com/ipfs/boxo/blockstore":  {"github.com/libp2p/go-buffer-pool"},
		"github.com/libp2p/go-buffer-pool": nil,
		"mirrord/consensus/state":          {"strings"},
	})
	got := checkTransitive(pkgs, transitiveRules)
	want := []string{
		"mirrord/resolver/httpapi depends on github.com/ipfs/boxo/blockstore: mirrord/resolver/httpapi -> mirrord/content -> github.com/ipfs/boxo/blockstore",
		"mirrord/resolver/httpapi depends on github.com/libp2p/go-buffer-pool: mirrord/resolver/httpapi -> mirrord/content -> github.com/libp2p/go-buffer-pool",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("checkTransitive:\n got %q\nwant %q", got, want)
	}
	got = checkDirect(pkgs, directRules)
	want = []string{"mirrord/content imports github.com/libp2p/go-buffer-pool: not allowed (mirrord/content must not depend on github.com/libp2p/)"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("checkDirect:\n got %q\nwant %q", got, want)
	}

	// Without the offending edge both pass.
	pkgs["mirrord/resolver/httpapi"] = goPackage{ImportPath: "mirrord/resolver/httpapi", Imports: []string{"mirrord/resolver"}}
	pkgs["mirrord/content"] = goPackage{ImportPath: "mirrord/content"}
	if got := append(checkTransitive(pkgs, transitiveRules), checkDirect(pkgs, directRules)...); len(got) != 0 {
		t.Errorf("clean graph reported %q", got)
	}
}

// listDeps runs `go list -deps -json` on pattern: the packages it
// matches and everything they import, by import path.
func listDeps(t *testing.T, pattern string) map[string]goPackage {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Imports", pattern)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string]goPackage{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p goPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs[p.ImportPath] = p
	}
	return pkgs
}

// under reports whether pkg is prefix or a package below it.
func under(pkg, prefix string) bool {
	return pkg == prefix || strings.HasPrefix(pkg, prefix+"/")
}

// sortedKeys returns the import paths of pkgs in order, so that reports
// come out the same on every run.
func sortedKeys(pkgs map[string]goPackage) []string {
	keys := make([]string, 0, len(pkgs))
	for k := range pkgs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// eachRuled calls fn for every package of pkgs under a key of rules,
// with that key and its bans, in a fixed order.
func eachRuled(pkgs map[string]goPackage, rules map[string][]string, fn func(pkg, prefix string, bans []string)) {
	prefixes := make([]string, 0, len(rules))
	for p := range rules {
		prefixes = append(prefixes, p)
	}
	sort.Strings(prefixes)
	for _, pkg := range sortedKeys(pkgs) {
		for _, prefix := range prefixes {
			if under(pkg, prefix) {
				fn(pkg, prefix, rules[prefix])
			}
		}
	}
}

// checkDirect returns one line per direct import that breaks rules.
func checkDirect(pkgs map[string]goPackage, rules map[string][]string) []string {
	var bad []string
	eachRuled(pkgs, rules, func(pkg, prefix string, bans []string) {
		if prefix == "mirrord/consensus" && under(pkg, "mirrord/consensus/state") {
			return // has its own, stricter rule
		}
		for _, imp := range pkgs[pkg].Imports {
			for _, ban := range bans {
				if strings.HasPrefix(imp, ban) && !strings.HasPrefix(imp, prefix) {
					bad = append(bad, fmt.Sprintf("%s imports %s: not allowed (%s must not depend on %s)", pkg, imp, prefix, ban))
				}
			}
		}
	})
	return bad
}

// checkTransitive returns one line per forbidden package that a package
// under a rule's key reaches, with the import chain that reaches it.
func checkTransitive(pkgs map[string]goPackage, rules map[string][]string) []string {
	var bad []string
	eachRuled(pkgs, rules, func(root, _ string, bans []string) {
		from := reach(pkgs, root)
		for _, dep := range sortedReached(from) {
			for _, ban := range bans {
				if strings.HasPrefix(dep, ban) {
					bad = append(bad, fmt.Sprintf("%s depends on %s: %s", root, dep, strings.Join(chain(from, root, dep), " -> ")))
				}
			}
		}
	})
	return bad
}

// reach walks the imports of root breadth first and returns, for every
// package reached, the package it was first imported from (so a chain
// read back from it is a shortest one).
func reach(pkgs map[string]goPackage, root string) map[string]string {
	from := map[string]string{root: ""}
	queue := []string{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, imp := range pkgs[p].Imports {
			if _, seen := from[imp]; !seen {
				from[imp] = p
				queue = append(queue, imp)
			}
		}
	}
	return from
}

func sortedReached(from map[string]string) []string {
	out := make([]string, 0, len(from))
	for p, parent := range from {
		if parent != "" {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// chain is the import path from root to dep that reach recorded.
func chain(from map[string]string, root, dep string) []string {
	c := []string{dep}
	for p := dep; p != root; {
		p = from[p]
		c = append([]string{p}, c...)
	}
	return c
}

// graph builds a package list from import path -> imports (for tests).
func graph(imports map[string][]string) map[string]goPackage {
	pkgs := map[string]goPackage{}
	for p, imps := range imports {
		pkgs[p] = goPackage{ImportPath: p, Imports: imps}
	}
	return pkgs
}
