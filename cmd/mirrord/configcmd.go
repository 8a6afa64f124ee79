package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"mirrord/configs"
	"mirrord/node"
)

func init() {
	register(command{name: "config check", args: "FILE...", help: "Check config files as `mirrord serve --config FILE` reads them.\n" +
		"Each file is read strictly (an unknown key is an error naming it, its line and the file),\n" +
		"the MIRRORD_<SECTION>_<KEY> environment variables are applied, and the result is validated.\n" +
		"Prints \"FILE: ok\" and a summary; exits 1 if a file is wrong.", setup: withOptions(cmdConfigCheck)})
	register(command{name: "config print", args: "[FILE]", help: "Print the effective configuration (defaults + FILE + environment) as YAML.\n" +
		"The built-in defaults, then FILE, then the MIRRORD_<SECTION>_<KEY> environment variables;\n" +
		"serve's flags would still win over all of them.", setup: withOptions(cmdConfigPrint)})
}

type configCheckOptions struct{ noEnv bool }

func (o *configCheckOptions) bind(fs *flag.FlagSet) {
	fs.BoolVar(&o.noEnv, "no-env", false, "ignore MIRRORD_* environment variables (check the file alone)")
}

type configPrintOptions struct{ noEnv bool }

func (o *configPrintOptions) bind(fs *flag.FlagSet) {
	fs.BoolVar(&o.noEnv, "no-env", false, "ignore MIRRORD_* environment variables")
}

// loadedConfig is a configuration as serve and the config commands
// read it: defaults, then the file, then the environment; not yet
// validated.
type loadedConfig struct {
	cfg  configs.Config
	path string   // the file, "" for none
	doc  []byte   // its bytes
	vars []string // setting variables applied, sorted
}

// loadConfig reads the file at path (none if "") over the defaults and
// applies the setting variables of environ (none if nil). Errors name
// the file, line and key, or the variable.
func loadConfig(path string, environ []string) (loadedConfig, error) {
	l := loadedConfig{cfg: configs.Default(), path: path}
	if path != "" {
		var err error
		if l.doc, err = os.ReadFile(path); err != nil {
			return l, fmt.Errorf("config: %w", err)
		}
		if l.cfg, err = configs.Decode(path, l.doc); err != nil {
			return l, err
		}
	}
	if err := l.cfg.ApplyEnv(environ); err != nil {
		return l, fmt.Errorf("environment: %w", err)
	}
	l.vars = configs.EnvSettings(environ)
	return l, nil
}

// validate checks the configuration; the error names the variable, or
// the file, line and key, that holds the bad value.
func (l loadedConfig) validate() error {
	if err := l.cfg.Validate(); err != nil {
		return configs.Explain(err, l.path, l.doc, l.vars)
	}
	return nil
}

// invalidServe is the error for serve's configuration cfg (l with the
// flags applied) failing validation with err. It blames the file or the
// environment (exit code 1) when they hold the same problem without the
// flags, and the command line (a usage error, exit code 2) otherwise.
func (l loadedConfig) invalidServe(err error) error {
	if lerr := l.cfg.Validate(); lerr != nil && lerr.Error() == err.Error() {
		return configs.Explain(lerr, l.path, l.doc, l.vars)
	}
	return usagef("%v", err)
}

func cmdConfigCheck(ctx context.Context, env *cmdEnv, o *configCheckOptions) error {
	if len(env.args) == 0 {
		return usagef("mirrord config check: want FILE... (a YAML config file, e.g. configs/cluster-voter.yaml)")
	}
	var environ []string
	if !o.noEnv {
		environ = os.Environ()
	}
	var errs []error
	for _, path := range env.args {
		if err := checkConfig(env.stdout, env.stderr, path, environ); err != nil {
			errs = append(errs, err)
		}
	}
	if len(env.args) == 1 || len(errs) == 0 {
		return errors.Join(errs...)
	}
	for _, err := range errs {
		fmt.Fprintln(env.stderr, err)
	}
	return fmt.Errorf("%d of %d config files are not valid", len(errs), len(env.args))
}

// checkConfig checks one file and prints its summary to w, warnings
// (files it names that cannot be used on this machine) to warn.
func checkConfig(w, warn io.Writer, path string, environ []string) error {
	l, err := loadConfig(path, environ)
	if err != nil {
		return err
	}
	if err := l.validate(); err != nil {
		return err
	}
	fmt.Fprintf(w, "%s: ok\n", path)
	printSummary(w, l.cfg, l.vars)
	if l.cfg.Node.PSKFile != "" {
		if _, err := readPSK(l.cfg.Node.PSKFile); err != nil {
			fmt.Fprintf(warn, "%s: warning: node.psk_file: %v (serve refuses to start without it)\n", path, err)
		}
	}
	return nil
}

// printSummary writes the settings an operator looks for first.
func printSummary(w io.Writer, cfg configs.Config, vars []string) {
	line := func(k, v string) { fmt.Fprintf(w, "  %-8s %s\n", k+":", v) }
	line("data", cfg.Node.Data)
	http := cfg.Node.HTTP
	if cfg.Node.PublicURL != "" {
		http += " (devices use " + cfg.Node.PublicURL + ")"
	}
	line("http", http)
	line("tls", tlsSummary(cfg))
	if cfg.Node.InternalHTTP != "" {
		line("private", cfg.Node.InternalHTTP+" (node.internal_http, plain HTTP: /cluster/v1/peer, /metrics, /healthz, /readyz)")
	}
	p2p := strings.Join(cfg.Node.P2P, ", ")
	if p2p == "" {
		p2p = fmt.Sprintf("TCP and QUIC on all interfaces, port %d", node.DefaultP2PPort)
		if cfg.Node.PSKFile != "" {
			p2p = fmt.Sprintf("TCP on all interfaces, port %d", node.DefaultP2PPort)
		}
	}
	if cfg.Node.PSKFile != "" {
		p2p += "; private network key " + cfg.Node.PSKFile
	}
	line("p2p", p2p)
	inbox := cfg.Node.Inbox
	if inbox == "" {
		inbox = "none"
	}
	line("inbox", inbox)
	cluster := "bootstraps a new cluster on first start (or restarts the one in the data dir)"
	if cfg.Cluster.Join != "" {
		cluster = "joins through " + cfg.Cluster.Join + " on first start (with a join token)"
	}
	line("cluster", cluster)
	line("voters", fmt.Sprintf("%d (the first %d nodes are voters, later ones non-voters)", cfg.Cluster.Voters, cfg.Cluster.Voters))
	if len(vars) > 0 {
		line("env", strings.Join(vars, ", "))
	}
}

func cmdConfigPrint(ctx context.Context, env *cmdEnv, o *configPrintOptions) error {
	if len(env.args) > 1 {
		return usagef("mirrord config print: want at most one FILE, got %q", env.args)
	}
	path := ""
	if len(env.args) == 1 {
		path = env.args[0]
	}
	var environ []string
	if !o.noEnv {
		environ = os.Environ()
	}
	l, err := loadConfig(path, environ)
	if err != nil {
		return err
	}
	b, err := l.cfg.Marshal()
	if err != nil {
		return err
	}
	from := []string{"built-in defaults"}
	if path != "" {
		from = append(from, path)
	}
	if len(l.vars) > 0 {
		from = append(from, "environment ("+strings.Join(l.vars, ", ")+")")
	}
	fmt.Fprintf(env.stdout, "# mirrord effective configuration: %s\n", strings.Join(from, " + "))
	if _, err := env.stdout.Write(b); err != nil {
		return err
	}
	// The values are printed either way, so an operator sees what is wrong.
	return l.validate()
}
