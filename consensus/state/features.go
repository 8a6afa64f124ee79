package state

import (
	"maps"
	"slices"
)

// FeatureStatsHistory is announced by nodes whose build applies
// StatsReportAt (the hourly stats history). Fleets propose that command
// only once every node of the cluster has announced it, so that a
// rolling upgrade never sends it to a node that would stop on it.
const FeatureStatsHistory = "stats-history"

// Limits on announced features: nodes are cluster members, but the state
// must stay small whatever they send.
const (
	maxFeatures   = 32
	maxFeatureLen = 64
)

// SetNodeFeatures records the features a node's build supports,
// replacing what it announced before. It is advisory: older builds skip
// the command (it carries IgnoreUnknown), and only proposers read it.
func (s *State) SetNodeFeatures(index uint64, node string, features []string) (*State, error) {
	if node == "" {
		return nil, invalid("node id is empty")
	}
	fs := slices.Compact(slices.Sorted(slices.Values(features)))
	if len(fs) > maxFeatures {
		return nil, invalid("more than %d features", maxFeatures)
	}
	for _, f := range fs {
		if f == "" || len(f) > maxFeatureLen {
			return nil, invalid("feature names are 1 to %d bytes", maxFeatureLen)
		}
	}
	c := s.editCluster()
	c.Features = cloneMap(c.Features)
	c.Features[node] = fs
	return s.withCluster(index, c), nil
}

// dropFeatures forgets a removed node's features; c is owned.
func (c *Cluster) dropFeatures(id string) {
	if _, ok := c.Features[id]; !ok {
		return
	}
	c.Features = maps.Clone(c.Features)
	delete(c.Features, id)
	if len(c.Features) == 0 {
		c.Features = nil
	}
}

// HasFeature reports whether node announced feature.
func (c *Cluster) HasFeature(node, feature string) bool {
	return c != nil && slices.Contains(c.Features[node], feature)
}

// AllHaveFeature reports whether self and every node of the cluster
// announced feature.
func (s *State) AllHaveFeature(self, feature string) bool {
	c := s.ClusterInfo()
	if !c.HasFeature(self, feature) {
		return false
	}
	for id := range c.Nodes {
		if !c.HasFeature(id, feature) {
			return false
		}
	}
	return true
}
