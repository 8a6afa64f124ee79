package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPackageGraph enforces the dependency direction
// content <- consensus <- {node, resolver} <- cmd/mirrord.
func TestPackageGraph(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}:{{join .Imports " "}}`, "mirrord/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := map[string][]string{
		"mirrord/content":         {"mirrord/consensus", "mirrord/node", "mirrord/resolver", "mirrord/configs", "mirrord/devicesim", "github.com/hashicorp/raft", "github.com/libp2p/"},
		"mirrord/consensus":       {"mirrord/node", "mirrord/resolver", "mirrord/configs", "mirrord/devicesim", "github.com/libp2p/", "github.com/ipfs/boxo", "net/http"},
		"mirrord/resolver":        {"mirrord/node", "mirrord/configs", "mirrord/consensus/consensustest", "github.com/hashicorp/raft", "github.com/libp2p/", "github.com/ipfs/boxo"},
		"mirrord/node":            {"mirrord/resolver", "mirrord/configs", "mirrord/devicesim"},
		"mirrord/configs":         {"mirrord/"},
		"mirrord/devicesim":       {"mirrord/consensus", "mirrord/node", "mirrord/resolver", "mirrord/configs"},
		"mirrord/consensus/state": {"github.com/hashicorp/raft", "github.com/libp2p/", "github.com/ipfs/boxo", "net/http"},
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, ":")
		for prefix, bans := range forbidden {
			if pkg != prefix && !strings.HasPrefix(pkg, prefix+"/") {
				continue
			}
			if prefix == "mirrord/consensus" && strings.HasPrefix(pkg, "mirrord/consensus/state") {
				continue // has its own, stricter rule
			}
			for _, imp := range strings.Fields(imports) {
				for _, ban := range bans {
					if (imp == ban || strings.HasPrefix(imp, ban)) && !strings.HasPrefix(imp, prefix) {
						t.Errorf("%s imports %s: not allowed (%s must not depend on %s)", pkg, imp, prefix, ban)
					}
				}
			}
		}
	}
}
