package consensus

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/hashicorp/raft"
)

// Recover rewrites the raft membership stored under cfg.Dir to the given
// voters (server ids; mirrord's raft addresses are the ids), for a
// cluster that lost a majority of its voters for good. The node must be
// stopped. It is hashicorp/raft's RecoverCluster: the local log and
// snapshots are replayed, a snapshot holding the new configuration is
// written and the log is truncated.
//
// Run it with the same voter list on every surviving node that is to be
// a voter, then start them: they elect a leader among themselves. Every
// entry in the local log counts as committed afterwards, including any
// that had not reached a majority before the loss.
func Recover(cfg Config, voters []string) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if len(voters) == 0 {
		return errors.New("consensus: recover: no voters given")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	hlog := newHCLogger(logger.With("component", "consensus-recover"))
	var st Stores
	closers, err := openDiskStores(cfg, hlog, &st)
	defer func() {
		for _, c := range closers {
			_ = c.Close()
		}
	}()
	if err != nil {
		return err
	}
	conf := raft.Configuration{}
	seen := map[string]bool{}
	for _, id := range voters {
		if id == "" || seen[id] {
			return fmt.Errorf("consensus: recover: empty or repeated voter id %q", id)
		}
		seen[id] = true
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raft.ServerAddress(id)})
	}
	rc := cfg.raftConfig()
	rc.Logger = hlog.Named("raft")
	_, trans := raft.NewInmemTransport(raft.ServerAddress(cfg.NodeID))
	defer trans.Close()
	if err := raft.RecoverCluster(rc, NewFSM(nil), st.Log, st.Stable, st.Snapshots, trans, conf); err != nil {
		return fmt.Errorf("consensus: recover: %w", err)
	}
	return nil
}
