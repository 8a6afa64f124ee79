package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"strings"

	"mirrord/configs"
	"mirrord/consensus"
	"mirrord/node"
)

func init() {
	register(command{name: "recover", help: "Last resort after losing a majority of the voters for good: with every node stopped, rewrite this\n" +
		"node's raft membership to --voters (default: this node alone). Run it with the same list on each\n" +
		"surviving voter, start them, then `cluster remove` the lost nodes and join new ones. Entries this\n" +
		"node logged but the old majority never committed become committed. See docs/operations.md.", setup: withOptions(cmdRecover)})
}

// recoverOptions are recover's flags.
type recoverOptions struct{ config, data, voters string }

func (o *recoverOptions) bind(fs *flag.FlagSet) {
	fs.StringVar(&o.config, "config", "", "the node's config `file` (for its data dir and raft settings)")
	fs.StringVar(&o.data, "data", "", "the node's data `dir` (overrides the config)")
	fs.StringVar(&o.voters, "voters", "", "comma-separated node `ids` that form the new cluster (default: this node)")
}

func cmdRecover(ctx context.Context, env *cmdEnv, o *recoverOptions) error {
	if err := env.needArgs(0, "no arguments"); err != nil {
		return err
	}
	cfg := configs.Default()
	if p := o.config; p != "" {
		var err error
		if cfg, err = configs.Load(p); err != nil {
			return err
		}
	}
	if v := o.data; v != "" {
		cfg.Node.Data = v
	}
	data := cfg.Node.Data
	self, err := node.PeerIDOf(data)
	if err != nil {
		return err
	}
	unlock, err := node.LockDataDir(data)
	if err != nil {
		return fmt.Errorf("%w (stop the node first: recover works on a stopped node)", err)
	}
	defer unlock()
	voters := []string{self}
	if v := strings.TrimSpace(o.voters); v != "" {
		voters = nil
		for _, id := range strings.Split(v, ",") {
			voters = append(voters, strings.TrimSpace(id))
		}
	}
	ccfg := consensus.DefaultConfig()
	ccfg.NodeID, ccfg.Dir = self, filepath.Join(data, "raft")
	ccfg.WALSegmentSize = int(cfg.Raft.WALSegmentSize)
	if err := consensus.Recover(ccfg, voters); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "raft membership of %s rewritten: voters %s\n", self, strings.Join(voters, ", "))
	fmt.Fprintln(env.stdout, "next: start the voters; once one is leader, `mirrord cluster remove ID` each lost node and join new ones")
	return nil
}
