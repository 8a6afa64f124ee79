// Command mirrord is the mirrord daemon and its operator CLI.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "mirrord:", err)
		}
		os.Exit(exitCode(err))
	}
}

// usageError marks a mistake in the command line (exit code 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

// command is one CLI command.
type command struct {
	name string // "app create"
	args string // positional args for help
	help string
	// setup binds the command's flags to its typed options and returns
	// the function that runs it with them (see withOptions).
	setup func(fs *flag.FlagSet) runFunc
}

// runFunc runs a command once its flags are parsed.
type runFunc func(ctx context.Context, env *cmdEnv) error

// bind adds the command's flags to fs and returns what runs it.
func (c *command) bind(fs *flag.FlagSet) runFunc {
	return c.setup(fs)
}

// cmdEnv is what a command gets: its flag set (already parsed) and
// positional arguments.
type cmdEnv struct {
	fs     *flag.FlagSet
	args   []string
	stdout io.Writer
	stderr io.Writer
}

var commands []command

func register(c command) { commands = append(commands, c) }

// options is a command's typed options: bind adds its flags to fs,
// pointing at its fields.
type options interface{ bind(fs *flag.FlagSet) }

// withOptions is the setup of a command whose flags fill an options
// struct O: run gets it filled.
func withOptions[O any, P interface {
	*O
	options
}](run func(ctx context.Context, env *cmdEnv, o P) error) func(fs *flag.FlagSet) runFunc {
	return func(fs *flag.FlagSet) runFunc {
		o := P(new(O))
		o.bind(fs)
		return func(ctx context.Context, env *cmdEnv) error { return run(ctx, env, o) }
	}
}

// noOptions is the setup of a command without flags.
func noOptions(run runFunc) func(fs *flag.FlagSet) runFunc {
	return func(*flag.FlagSet) runFunc { return run }
}

// given reports whether the flag name was on the command line (for
// flags whose absence differs from their zero value).
func (e *cmdEnv) given(name string) bool {
	found := false
	e.fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printUsage(stdout)
		return nil
	}
	// Longest match of the command name (two words, then one).
	var cmd *command
	var rest []string
	for i := range commands {
		words := strings.Fields(commands[i].name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == commands[i].name {
			if cmd == nil || len(words) > len(strings.Fields(cmd.name)) {
				cmd, rest = &commands[i], args[len(words):]
			}
		}
	}
	if cmd == nil {
		return usagef("unknown command %q: run `mirrord help` for the list", strings.Join(args[:min(2, len(args))], " "))
	}
	fs := flag.NewFlagSet("mirrord "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: mirrord %s [flags] %s\n\n%s\n\nflags:\n", cmd.name, cmd.args, cmd.help)
		fs.PrintDefaults()
	}
	runCmd := cmd.bind(fs)
	pos, err := parseInterleaved(fs, rest)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	return runCmd(ctx, &cmdEnv{fs: fs, args: pos, stdout: stdout, stderr: stderr})
}

// parseInterleaved parses flags that may come before, between or after
// positional arguments ("channel set APP CH --public=true"). "--" ends
// flag parsing.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// flag stops at "--" or the first non-flag.
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "mirrord: an edge mirror for Capgo live updates\n\nusage: mirrord COMMAND [flags] [args]\n\ncommands:")
	sorted := append([]command(nil), commands...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	for _, c := range sorted {
		fmt.Fprintf(w, "  %-16s %s\n", c.name, firstLine(c.help))
	}
	fmt.Fprintln(w, "\nRun `mirrord COMMAND -h` for a command's flags. Admin commands take --server URL and\n--token T or --token-file F (env MIRRORD_SERVER, MIRRORD_TOKEN).")
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// needArgs checks the positional argument count.
func (e *cmdEnv) needArgs(n int, names string) error {
	if len(e.args) != n {
		return usagef("mirrord %s: want %s, got %d argument(s) %q", strings.TrimPrefix(e.fs.Name(), "mirrord "), names, len(e.args), e.args)
	}
	return nil
}
