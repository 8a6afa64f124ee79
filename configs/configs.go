package configs

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Examples holds the example configuration files shipped in this folder.
//
//go:embed *.yaml
var Examples embed.FS

// Config is a whole mirrord configuration.
type Config struct {
	Version     int         `yaml:"version"`
	Node        Node        `yaml:"node"`
	Limits      Limits      `yaml:"limits"`
	Stats       Stats       `yaml:"stats"`
	Raft        Raft        `yaml:"raft"`
	Cluster     Cluster     `yaml:"cluster"`
	Replication Replication `yaml:"replication"`
	TLS         TLS         `yaml:"tls"`
}

// TLS makes node.http serve HTTPS: with a certificate and key from files
// (read again when they change) or with certificates obtained over ACME.
// Neither set: plain HTTP.
type TLS struct {
	// CertFile and KeyFile are PEM files: the certificate chain (leaf
	// first) and its private key.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	ACME     ACME   `yaml:"acme"`
}

// ACME gets certificates from an ACME CA (Let's Encrypt by default),
// answering the TLS-ALPN-01 challenge on node.http; account, keys and
// certificates are kept in DATA/acme.
type ACME struct {
	// Domains are the names to get one certificate for; empty: no ACME.
	Domains []string `yaml:"domains"`
	// Email is the ACME account's contact ("" = none).
	Email string `yaml:"email"`
	// CA is the CA's ACME directory URL; "" = Let's Encrypt.
	CA string `yaml:"ca"`
	// CARoot is a PEM file of roots to trust for the CA's own HTTPS (a
	// private ACME CA such as step-ca); "" = the system's roots.
	CARoot string `yaml:"ca_root"`
}

// Enabled says whether node.http serves HTTPS.
func (t TLS) Enabled() bool { return t.CertFile != "" || len(t.ACME.Domains) > 0 }

// Cluster is how a node joins and grows the cluster.
type Cluster struct {
	// Join is the node to join through on first start: its HTTP URL or
	// its multiaddr ending in /p2p/PEER_ID. Empty: start a new cluster
	// (or rejoin the one in the data dir).
	Join string `yaml:"join"`
	// JoinToken is the token made by `mirrord cluster token`.
	JoinToken string `yaml:"join_token"`
	// Voters is how many voters the cluster grows to before joining
	// nodes become non-voters (read on the leader).
	Voters int `yaml:"voters"`
}

// Replication is how blocks move between nodes and leave the disk.
type Replication struct {
	// Zips is "on-demand" (zips of releases with a manifest are fetched
	// on first download; files always eagerly) or "eager".
	Zips string `yaml:"zips"`
	// Parallel is how many objects a node fetches at once.
	Parallel int `yaml:"parallel"`
	// ScrubInterval is how often stored blocks are re-hashed.
	ScrubInterval Duration `yaml:"scrub_interval"`
	// GCInterval is how often unreferenced blocks are removed; GCGrace
	// keeps blocks younger than that (uploads awaiting their release).
	GCInterval Duration `yaml:"gc_interval"`
	GCGrace    Duration `yaml:"gc_grace"`
	// DiskBudget caps the block store; 0 = no cap. Past it, uploads are
	// refused with 507.
	DiskBudget ByteSize `yaml:"disk_budget"`
	// MinFree is the free space kept on the block store's file system:
	// uploads that would leave less are refused with 507 and objects are
	// not fetched. 0 = 5% of the file system, at least 1GiB (at most a
	// quarter of a small one).
	MinFree ByteSize `yaml:"min_free"`
}

// Node is where the node keeps its data and how it is reached.
type Node struct {
	// Data is the data directory (raft log, blocks, stats, admin token).
	Data string `yaml:"data"`
	// HTTP is the listen address of the device and admin HTTP API.
	HTTP string `yaml:"http"`
	// PublicURL is the base URL devices reach this node at; it prefixes
	// every download URL. Empty: the Host header of each request.
	PublicURL string `yaml:"public_url"`
	// P2P are the libp2p listen multiaddrs (raft and block exchange share
	// them). Empty: TCP and QUIC on all interfaces, port 4001.
	P2P []string `yaml:"p2p"`
	// PSKFile names a file holding a 64-hex-character private network
	// key; peers without the same key cannot connect. Empty: none.
	PSKFile string `yaml:"psk_file"`
	// Inbox is a watch folder: a bundle directory moved into it (with a
	// release.yaml) is published once, then moved to done/ or failed/.
	// Empty: no watch folder.
	Inbox string `yaml:"inbox"`
	// Metrics is who may read /metrics: "open" (anyone who reaches the
	// HTTP port, as most exporters), "token" (the admin or a read-only
	// token, e.g. Prometheus' authorization: credentials) or "off".
	Metrics string `yaml:"metrics"`
	// InternalHTTP is a second, plain HTTP listen address for the other
	// nodes and monitoring: /cluster/v1/peer, /metrics, /healthz and
	// /readyz. When set, /cluster/v1/peer and /metrics leave node.http.
	// Empty: everything is on node.http.
	InternalHTTP string `yaml:"internal_http"`
}

// Limits bound what clients may send.
type Limits struct {
	// MaxRequestBytes bounds device request bodies (updates, stats,
	// channel_self): anyone can send them, so the bound is tight.
	MaxRequestBytes ByteSize `yaml:"max_request_bytes"`
	// MaxAdminBodyBytes bounds admin JSON bodies (only with the admin
	// token). A release's manifest is the largest: about 700 bytes per
	// file encrypted, 250 plain, so the default takes ~90,000 encrypted
	// files. A release is also one raft entry, which cannot pass
	// consensus.MaxCommandBytes (64 MiB) whatever this says.
	MaxAdminBodyBytes ByteSize `yaml:"max_admin_body_bytes"`
	// MaxUploadBytes bounds one uploaded object (a bundle zip or file).
	MaxUploadBytes ByteSize `yaml:"max_upload_bytes"`
	// DeviceBodyTimeout bounds the time a device has to send a request
	// body once its headers arrived (the Capgo plugin's own timeout for
	// a whole request is 20 s).
	DeviceBodyTimeout Duration `yaml:"device_body_timeout"`
	// AdminBodyIdleTimeout is how long an admin request body (an upload)
	// may stall: every read that brings data resets it.
	AdminBodyIdleTimeout Duration `yaml:"admin_body_idle_timeout"`
	// DownloadFetches is how many downloads may fetch missing blocks
	// from other nodes at once; past it a download gets 503 with
	// Retry-After. Only objects a release references are fetched.
	DownloadFetches int `yaml:"download_fetches"`
	// DownloadFetchStall fails (503) a download that fetches from other
	// nodes when no block arrives for this long.
	DownloadFetchStall Duration `yaml:"download_fetch_stall"`
	// StatsEventsPerSecond bounds the /stats events one client address
	// (an IPv6 /64) may send, on average, with bursts of ten seconds'
	// worth (at least one 200-event batch); past it the answer is 429
	// with Retry-After, which the plugin honours, keeping its events
	// queued. 0 turns the limit off (behind a proxy every device shares
	// its address: docs/security.md).
	StatsEventsPerSecond int `yaml:"stats_events_per_second"`
}

// Stats bounds the on-disk device event log.
type Stats struct {
	// MaxBytes bounds the counted events; the events kept but not
	// counted (unverified devices, duplicates, ...) have their own area
	// of a quarter of it, so a flood of them cannot push counted ones
	// out.
	MaxBytes      ByteSize `yaml:"max_bytes"`
	SegmentBytes  ByteSize `yaml:"segment_bytes"`
	FlushInterval Duration `yaml:"flush_interval"`
	// Retention drops event segments older than this; 0 keeps them
	// until MaxBytes pushes them out.
	Retention Duration `yaml:"retention"`
	// ReportInterval is how often a node writes its per-release counters
	// to the cluster state (one raft entry per node when counts changed).
	ReportInterval Duration `yaml:"report_interval"`
	// HaltCheckInterval is how often the leader re-evaluates rollout
	// halt policies besides after every applied entry.
	HaltCheckInterval Duration `yaml:"halt_check_interval"`
}

// Raft tunes the consensus timers (zero keeps raft's defaults).
type Raft struct {
	HeartbeatTimeout  Duration `yaml:"heartbeat_timeout"`
	ElectionTimeout   Duration `yaml:"election_timeout"`
	SnapshotInterval  Duration `yaml:"snapshot_interval"`
	SnapshotThreshold uint64   `yaml:"snapshot_threshold"`
	// TrailingLogs is how many log entries are kept after a snapshot; a
	// node further behind catches up from the snapshot. 0: 10240.
	TrailingLogs uint64 `yaml:"trailing_logs"`
	// WALSegmentSize is the size of one raft log segment file; 0: 64MiB.
	// Compacted log entries are dropped a whole segment at a time.
	WALSegmentSize ByteSize `yaml:"wal_segment_size"`
}

// Default returns the built-in configuration: a single node with data in
// ./mirrord-data and HTTP on 127.0.0.1:8080.
func Default() Config {
	return Config{
		Version: 1,
		Node:    Node{Data: "./mirrord-data", HTTP: "127.0.0.1:8080", P2P: []string{}, Metrics: "open"},
		TLS:     TLS{ACME: ACME{Domains: []string{}}},
		Limits: Limits{MaxRequestBytes: 1 << 20, MaxAdminBodyBytes: 64 << 20, MaxUploadBytes: 2 << 30,
			DeviceBodyTimeout: Duration(30 * time.Second), AdminBodyIdleTimeout: Duration(time.Minute), DownloadFetches: 64, DownloadFetchStall: Duration(30 * time.Second),
			StatsEventsPerSecond: 200},
		Stats: Stats{MaxBytes: 256 << 20, SegmentBytes: 16 << 20, FlushInterval: Duration(time.Second),
			Retention: Duration(30 * 24 * time.Hour), ReportInterval: Duration(2 * time.Second),
			HaltCheckInterval: Duration(time.Second)},
		Raft:    Raft{SnapshotThreshold: 8192, SnapshotInterval: Duration(2 * time.Minute)},
		Cluster: Cluster{Voters: 3},
		Replication: Replication{Zips: "on-demand", Parallel: 8, ScrubInterval: Duration(6 * time.Hour),
			GCInterval: Duration(10 * time.Minute), GCGrace: Duration(time.Hour)},
	}
}

// Load reads a config file over the defaults and validates it.
func Load(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return Parse(path, b)
}

// Parse decodes a config document named name (used in errors) over the
// defaults and validates it.
func Parse(name string, b []byte) (Config, error) {
	c, err := Decode(name, b)
	if err != nil {
		return Config{}, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, Explain(err, name, b, nil)
	}
	return c, nil
}

// Explain turns err, an error of Validate for the document doc named
// name whose values were then overridden by the environment variables
// vars (names, as EnvSettings gives them), into an error that says where
// the bad value came from: the variable that set it, or the file with
// the key's line. Validate's errors start with the key ("node.http:").
// name "" means there was no file.
func Explain(err error, name string, doc []byte, vars []string) error {
	key, _, _ := strings.Cut(err.Error(), ": ")
	for _, v := range vars {
		if EnvKey(v) == key {
			return fmt.Errorf("environment %s: %w", v, err)
		}
	}
	if name == "" {
		return err
	}
	if line := keyLine(doc, key); line > 0 {
		return fmt.Errorf("config %s: line %d: %w", name, line, err)
	}
	return fmt.Errorf("config %s: %w", name, err)
}

// keyLine returns the line of a dotted key ("node.http") in doc, 0 when
// doc does not set it.
func keyLine(doc []byte, key string) int {
	var root yaml.Node
	if yaml.Unmarshal(doc, &root) != nil || len(root.Content) == 0 {
		return 0
	}
	n := root.Content[0]
	line := 0
	for part := range strings.SplitSeq(key, ".") {
		if n.Kind != yaml.MappingNode {
			return 0
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == part {
				line, next = n.Content[i].Line, n.Content[i+1]
			}
		}
		if next == nil {
			return 0
		}
		n = next
	}
	return line
}

// Decode decodes a config document named name (used in errors) over the
// defaults, strictly (an unknown key is an error naming it and its
// line), without validating the values: environment variables and flags
// may still change them, and Validate comes after those.
func Decode(name string, b []byte) (Config, error) {
	c := Default()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("config %s: %s", name, cleanYAMLErr(err))
	}
	return c, nil
}

// Marshal writes c as a config document: the same keys as the files,
// durations and sizes in their units ("2m", "64MiB"), two-space indent.
func (c Config) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// cleanYAMLErr turns yaml.v3's "field x not found in type configs.Node"
// into words an operator understands.
func cleanYAMLErr(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:\n  ")
	if i := strings.Index(msg, "field "); i >= 0 && strings.Contains(msg, " not found in type ") {
		j := strings.Index(msg, " not found in type ")
		key := msg[i+len("field ") : j]
		return msg[:i] + fmt.Sprintf("unknown key %q", key)
	}
	return msg
}

// Duration is a time.Duration written as a string ("30s").
type Duration time.Duration

// UnmarshalYAML parses "1.5s", "200ms".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if err := d.UnmarshalText([]byte(n.Value)); err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	return nil
}

// UnmarshalText parses "1.5s", "200ms"; the YAML decoder and environment
// variables (ApplyEnv) both use it.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("%q is not a duration like \"30s\"", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the string form without trailing zero units
// ("720h", "2m", "1h30m").
func (d Duration) MarshalYAML() (any, error) {
	s := time.Duration(d).String()
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		s = t + "m"
	}
	if t, ok := strings.CutSuffix(s, "h0m"); ok {
		s = t + "h"
	}
	return s, nil
}

// ByteSize is a size in bytes, written as a number or with a unit
// ("64MiB", "1GiB", "500KB").
type ByteSize int64

// UnmarshalYAML parses sizes.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if err := b.UnmarshalText([]byte(n.Value)); err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	return nil
}

// UnmarshalText parses sizes as ParseByteSize does; the YAML decoder and
// environment variables (ApplyEnv) both use it.
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := ParseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = ByteSize(v)
	return nil
}

// MarshalYAML writes the size in the largest binary unit that divides it
// exactly ("64MiB", "2GiB"), or as a plain number.
func (b ByteSize) MarshalYAML() (any, error) {
	for _, u := range []struct {
		suffix string
		mul    int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b != 0 && int64(b)%u.mul == 0 {
			return strconv.FormatInt(int64(b)/u.mul, 10) + u.suffix, nil
		}
	}
	return int64(b), nil
}

// ParseByteSize parses "123", "64KiB", "64MiB", "2GiB", "1KB", "1MB", "1GB".
func ParseByteSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mul    int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	mul := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mul = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mul
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mul {
		return 0, fmt.Errorf("%q is not a size like \"64MiB\"", s)
	}
	return n * mul, nil
}
