package configs

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Validate checks the values.
func (c Config) Validate() error {
	if c.Version != 1 {
		return fmt.Errorf("version: %d is not supported (want 1)", c.Version)
	}
	// In this order, so that of several bad values the same one is named.
	for _, check := range []func() error{
		c.validateNode, c.validateLimits, c.validateCluster, c.validateReplication,
		c.validateStats, c.validateRaft, c.validateReports, c.validateTLS,
	} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// validateNode checks the node section.
func (c Config) validateNode() error {
	if m := c.Node.Metrics; m != "open" && m != "token" && m != "off" {
		return fmt.Errorf("node.metrics: %q (want open, token or off)", m)
	}
	if c.Node.Data == "" {
		return errors.New("node.data: must not be empty")
	}
	if _, _, err := net.SplitHostPort(c.Node.HTTP); err != nil {
		return fmt.Errorf("node.http: %q is not host:port: %w", c.Node.HTTP, err)
	}
	if c.Node.PSKFile != "" {
		for _, a := range c.Node.P2P {
			if strings.Contains(a, "/quic") {
				return fmt.Errorf("node.p2p: %q is QUIC, which cannot be used with node.psk_file (libp2p private networks are TCP only)", a)
			}
		}
	}
	if c.Node.PublicURL != "" && !strings.HasPrefix(c.Node.PublicURL, "http://") && !strings.HasPrefix(c.Node.PublicURL, "https://") {
		return fmt.Errorf("node.public_url: %q must start with http:// or https://", c.Node.PublicURL)
	}
	if a := c.Node.InternalHTTP; a != "" {
		_, port, err := net.SplitHostPort(a)
		if err != nil {
			return fmt.Errorf("node.internal_http: %q is not host:port: %w", a, err)
		}
		if a == c.Node.HTTP && port != "0" {
			return fmt.Errorf("node.internal_http: %q is node.http too (want another port, or \"\" for none)", a)
		}
	}
	return nil
}

// validateTLS checks the tls section: a certificate from files or from
// ACME, not both, each complete. Files are read when the node starts,
// not here, so a config can be checked away from its node.
func (c Config) validateTLS() error {
	t := c.TLS
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		return errors.New("tls.cert_file: set without tls.key_file (both PEM files, or neither)")
	case t.CertFile == "" && t.KeyFile != "":
		return errors.New("tls.key_file: set without tls.cert_file (both PEM files, or neither)")
	}
	a := t.ACME
	if len(a.Domains) == 0 {
		if a.Email != "" || a.CA != "" || a.CARoot != "" {
			return errors.New("tls.acme.domains: empty, but other tls.acme keys are set (list the names to get a certificate for)")
		}
	} else if err := validateACME(a); err != nil {
		return err
	}
	if t.CertFile != "" && len(a.Domains) > 0 {
		return errors.New("tls.acme.domains: set together with tls.cert_file (use certificate files or ACME, not both)")
	}
	if t.Enabled() && strings.HasPrefix(c.Node.PublicURL, "http://") {
		return fmt.Errorf("node.public_url: %q is http:// but node.http serves HTTPS (tls is set)", c.Node.PublicURL)
	}
	return nil
}

// validateACME checks a tls.acme section with domains.
func validateACME(a ACME) error {
	seen := map[string]bool{}
	for _, d := range a.Domains {
		if !validDomain(d) {
			return fmt.Errorf("tls.acme.domains: %q is not a DNS name like mirror.example.com (no wildcard, IP, port or scheme)", d)
		}
		if seen[strings.ToLower(d)] {
			return fmt.Errorf("tls.acme.domains: %q is listed twice", d)
		}
		seen[strings.ToLower(d)] = true
	}
	if a.Email != "" && (!strings.Contains(a.Email, "@") || strings.ContainsAny(a.Email, " \t<>")) {
		return fmt.Errorf("tls.acme.email: %q is not an email address", a.Email)
	}
	if a.CA != "" {
		u, err := url.Parse(a.CA)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("tls.acme.ca: %q is not an https:// ACME directory URL", a.CA)
		}
	}
	if a.CARoot != "" && a.CA == "" {
		return errors.New("tls.acme.ca_root: set without tls.acme.ca (a root file is for a private ACME CA)")
	}
	return nil
}

// validDomain reports whether d is a DNS name with at least two labels,
// each of letters, digits and inner hyphens.
func validDomain(d string) bool {
	if len(d) > 253 || net.ParseIP(d) != nil {
		return false
	}
	labels := strings.Split(strings.TrimSuffix(d, "."), ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// validateLimits checks the limits section.
func (c Config) validateLimits() error {
	if c.Limits.MaxRequestBytes < 1024 {
		return errors.New("limits.max_request_bytes: must be at least 1KiB")
	}
	if c.Limits.MaxAdminBodyBytes < 1<<20 {
		return errors.New("limits.max_admin_body_bytes: must be at least 1MiB")
	}
	if c.Limits.MaxUploadBytes < 1<<20 {
		return errors.New("limits.max_upload_bytes: must be at least 1MiB")
	}
	if c.Limits.AdminBodyIdleTimeout < Duration(time.Second) {
		return errors.New("limits.admin_body_idle_timeout: must be at least 1s")
	}
	if c.Limits.DeviceBodyTimeout < Duration(time.Second) {
		return errors.New("limits.device_body_timeout: must be at least 1s (the Capgo plugin allows 20s per request)")
	}
	if n := c.Limits.StatsEventsPerSecond; n < 0 || n > 10_000_000 {
		return fmt.Errorf("limits.stats_events_per_second: %d (want 0 to 10000000; 0 = no limit)", n)
	}
	if n := c.Limits.DownloadFetches; n < 1 || n > 4096 {
		return fmt.Errorf("limits.download_fetches: %d (want 1 to 4096)", n)
	}
	if d := time.Duration(c.Limits.DownloadFetchStall); d < 100*time.Millisecond || d > 10*time.Minute {
		return fmt.Errorf("limits.download_fetch_stall: %s (want 100ms to 10m)", d)
	}
	return nil
}

// validateCluster checks the cluster section.
func (c Config) validateCluster() error {
	if c.Cluster.Voters < 1 || c.Cluster.Voters > 9 {
		return fmt.Errorf("cluster.voters: %d (want 1 to 9; 3 or 5 are usual)", c.Cluster.Voters)
	}
	if (c.Cluster.Join == "") != (c.Cluster.JoinToken == "") {
		return errors.New("cluster.join and cluster.join_token go together (make a token with `mirrord cluster token`)")
	}
	return nil
}

// validateReplication checks the replication section.
func (c Config) validateReplication() error {
	if z := c.Replication.Zips; z != "on-demand" && z != "eager" {
		return fmt.Errorf("replication.zips: %q (want on-demand or eager)", z)
	}
	if c.Replication.Parallel < 1 || c.Replication.Parallel > 256 {
		return fmt.Errorf("replication.parallel: %d (want 1 to 256)", c.Replication.Parallel)
	}
	if c.Replication.DiskBudget < 0 {
		return errors.New("replication.disk_budget: must not be negative")
	}
	if c.Replication.MinFree < 0 {
		return errors.New("replication.min_free: must not be negative")
	}
	return nil
}

// validateStats checks the stats log settings.
func (c Config) validateStats() error {
	if c.Stats.MaxBytes < 1<<20 {
		return errors.New("stats.max_bytes: must be at least 1MiB")
	}
	if c.Stats.Retention < 0 {
		return errors.New("stats.retention: must not be negative")
	}
	return nil
}

// validateRaft checks the raft section.
func (c Config) validateRaft() error {
	if h := time.Duration(c.Raft.HeartbeatTimeout); h != 0 && h < minRaftHeartbeat {
		return fmt.Errorf("raft.heartbeat_timeout: %s (want 0s for %s, or at least %s)", h, defaultRaftTimeout, minRaftHeartbeat)
	}
	if c.Raft.ElectionTimeout < 0 {
		return errors.New("raft.election_timeout: must not be negative")
	}
	hb, el := raftTimeout(c.Raft.HeartbeatTimeout), raftTimeout(c.Raft.ElectionTimeout)
	if el < hb {
		return fmt.Errorf("raft.election_timeout: %s is shorter than raft.heartbeat_timeout %s (0s means %s)", el, hb, defaultRaftTimeout)
	}
	return nil
}

// validateReports checks the stats report and halt check intervals.
func (c Config) validateReports() error {
	if d := time.Duration(c.Stats.ReportInterval); d < 10*time.Millisecond || d > time.Hour {
		return fmt.Errorf("stats.report_interval: %s (want 10ms to 1h)", d)
	}
	if d := time.Duration(c.Stats.HaltCheckInterval); d < 10*time.Millisecond || d > time.Hour {
		return fmt.Errorf("stats.halt_check_interval: %s (want 10ms to 1h)", d)
	}
	return nil
}

// defaultRaftTimeout is the heartbeat and election timeout a node runs
// with when the file leaves them at 0 (consensus.DefaultConfig's).
const defaultRaftTimeout = 500 * time.Millisecond

// minRaftHeartbeat is the shortest heartbeat timeout accepted. The
// leader lease is as long as the heartbeat timeout, and on a loaded node
// heartbeats are late by up to a few hundred ms (docs/BENCHMARKS.md):
// shorter, and leaders step down under ordinary load.
const minRaftHeartbeat = 250 * time.Millisecond

func raftTimeout(d Duration) time.Duration {
	if d == 0 {
		return defaultRaftTimeout
	}
	return time.Duration(d)
}
