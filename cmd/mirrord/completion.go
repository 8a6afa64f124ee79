package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

func init() {
	register(command{name: "completion", args: "bash|zsh|fish", help: "Print a shell completion script for mirrord's commands and flags.\n" +
		"  bash: mirrord completion bash > /etc/bash_completion.d/mirrord   (or: source <(mirrord completion bash))\n" +
		"  zsh:  mirrord completion zsh > \"${fpath[1]}/_mirrord\"            (then restart zsh)\n" +
		"  fish: mirrord completion fish > ~/.config/fish/completions/mirrord.fish", setup: noOptions(cmdCompletion)})
}

func cmdCompletion(ctx context.Context, env *cmdEnv) error {
	if err := env.needArgs(1, "a shell: bash, zsh or fish"); err != nil {
		return err
	}
	gen, ok := completionScripts[env.args[0]]
	if !ok {
		return usagef("mirrord completion: unknown shell %q (want bash, zsh or fish)", env.args[0])
	}
	return gen(env.stdout, completionModel())
}

var completionScripts = map[string]func(io.Writer, []compCommand) error{
	"bash": bashCompletion,
	"zsh":  zshCompletion,
	"fish": fishCompletion,
}

// compCommand is what completion knows about one command.
type compCommand struct {
	words []string // "rollout", "start"
	help  string   // first line of its help
	flags []compFlag
	// choices are the words its positional arguments take ("bash zsh
	// fish"); files says they are paths.
	choices []string
	files   bool
}

// compFlag is one flag of a command.
type compFlag struct {
	name, help string
	// value is what the flag takes: "" (a boolean), "file", "dir" or
	// "other".
	value string
}

// completionModel describes every registered command, sorted by name,
// with its flags sorted by name.
func completionModel() []compCommand {
	var out []compCommand
	for _, c := range commands {
		cc := compCommand{words: strings.Fields(c.name), help: firstLine(c.help)}
		fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
		c.bind(fs)
		fs.VisitAll(func(f *flag.Flag) {
			kind, usage := flag.UnquoteUsage(f)
			cf := compFlag{name: f.Name, help: usage, value: "other"}
			if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
				cf.value = ""
			} else {
				switch strings.ToLower(kind) {
				case "file", "pem", "path":
					cf.value = "file"
				case "dir":
					cf.value = "dir"
				}
			}
			cc.flags = append(cc.flags, cf)
		})
		cc.choices, cc.files = positionalHint(c.args)
		out = append(out, cc)
	}
	sort.Slice(out, func(i, j int) bool { return strings.Join(out[i].words, " ") < strings.Join(out[j].words, " ") })
	return out
}

// positionalHint reads a command's args text: "bash|zsh|fish" or
// "[check|update|set-channel CH]" give words to offer; FILE or PATH
// anywhere means paths.
func positionalHint(args string) (choices []string, files bool) {
	for _, w := range strings.Fields(strings.NewReplacer("[", " ", "]", " ", "...", " ").Replace(args)) {
		if strings.Contains(w, "FILE") || strings.Contains(w, "PATH") {
			files = true
		}
	}
	if strings.Contains(args, "|") {
		for alt := range strings.SplitSeq(strings.Trim(args, "[]"), "|") {
			if w := strings.Fields(alt); len(w) > 0 && strings.ToLower(w[0]) == w[0] {
				choices = append(choices, w[0])
			}
		}
	}
	return choices, files
}

// compTop is one word after `mirrord`: a command, or a group of
// commands sharing their first word (subs).
type compTop struct {
	word, help string
	subs       []compCommand
}

// topWords groups the commands by first word, sorted, plus "help".
func topWords(cmds []compCommand) []compTop {
	byWord := map[string]*compTop{"help": {word: "help", help: "List the commands."}}
	for _, c := range cmds {
		t := byWord[c.words[0]]
		if t == nil {
			t = &compTop{word: c.words[0]}
			byWord[c.words[0]] = t
		}
		if len(c.words) == 1 {
			t.help = c.help
		} else {
			t.subs = append(t.subs, c)
		}
	}
	var out []compTop
	for _, t := range byWord {
		if t.help == "" && len(t.subs) > 0 {
			var names []string
			for _, s := range t.subs {
				names = append(names, s.words[1])
			}
			t.help = t.word + " commands: " + strings.Join(names, ", ")
		}
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].word < out[j].word })
	return out
}

// flagsOf lists the --names of c's flags whose value is kind (any kind
// for "*").
func flagsOf(c compCommand, kind string) string {
	var names []string
	for _, f := range c.flags {
		if kind == "*" || f.value == kind {
			names = append(names, "--"+f.name)
		}
	}
	return strings.Join(names, " ")
}

// shortHelp is a description for a completion menu: one line, at most
// 70 characters.
func shortHelp(s string) string {
	s = strings.TrimSpace(firstLine(s))
	if len(s) > 70 {
		s = strings.TrimSpace(s[:67]) + "..."
	}
	return s
}

// shQuote makes s one single-quoted word for bash or zsh.
func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func bashCompletion(w io.Writer, cmds []compCommand) error {
	var b strings.Builder
	tops := topWords(cmds)
	var words []string
	for _, t := range tops {
		words = append(words, t.word)
	}
	b.WriteString("# bash completion for mirrord (generated by `mirrord completion bash`).\n")
	b.WriteString("# Install: mirrord completion bash > /etc/bash_completion.d/mirrord, or source <(mirrord completion bash).\n\n")
	b.WriteString("# _mirrord_reply ARGS: add what compgen ARGS prints to COMPREPLY, one line per word.\n")
	b.WriteString("_mirrord_reply() {\n\tlocal line\n\twhile IFS= read -r line; do\n\t\tCOMPREPLY+=(\"$line\")\n\tdone < <(compgen \"$@\")\n}\n\n")
	b.WriteString("_mirrord() {\n")
	b.WriteString("\tlocal cur=\"${COMP_WORDS[COMP_CWORD]}\" prev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n")
	b.WriteString("\tCOMPREPLY=()\n")
	fmt.Fprintf(&b, "\tif ((COMP_CWORD == 1)); then\n\t\t_mirrord_reply -W %s -- \"$cur\"\n\t\treturn\n\tfi\n", shQuote(strings.Join(words, " ")))
	b.WriteString("\tlocal cmd=\"${COMP_WORDS[1]}\" pos=2\n\tcase \"$cmd\" in\n")
	for _, t := range tops {
		if len(t.subs) == 0 {
			continue
		}
		var subs []string
		for _, s := range t.subs {
			subs = append(subs, s.words[1])
		}
		fmt.Fprintf(&b, "\t%s)\n\t\tif ((COMP_CWORD == 2)); then\n\t\t\t_mirrord_reply -W %s -- \"$cur\"\n\t\t\treturn\n\t\tfi\n\t\tcmd=\"$cmd ${COMP_WORDS[2]}\" pos=3\n\t\t;;\n", shQuote(t.word), shQuote(strings.Join(subs, " ")))
	}
	b.WriteString("\tesac\n")
	b.WriteString("\tlocal flags=\"\" fileflags=\"\" dirflags=\"\" valueflags=\"\" choices=\"\" files=\"\"\n\tcase \"$cmd\" in\n")
	for _, c := range cmds {
		fmt.Fprintf(&b, "\t%s)\n\t\tflags=%s\n", shQuote(strings.Join(c.words, " ")), shQuote(flagsOf(c, "*")))
		for _, v := range []struct{ name, kind string }{{"fileflags", "file"}, {"dirflags", "dir"}, {"valueflags", "other"}} {
			if s := flagsOf(c, v.kind); s != "" {
				fmt.Fprintf(&b, "\t\t%s=%s\n", v.name, shQuote(s))
			}
		}
		if len(c.choices) > 0 {
			fmt.Fprintf(&b, "\t\tchoices=%s\n", shQuote(strings.Join(c.choices, " ")))
		}
		if c.files {
			b.WriteString("\t\tfiles=1\n")
		}
		b.WriteString("\t\t;;\n")
	}
	b.WriteString("\t*) return ;;\n\tesac\n")
	b.WriteString(`	case " $fileflags " in *" $prev "*)
		compopt -o filenames 2>/dev/null
		_mirrord_reply -f -- "$cur"
		return
		;;
	esac
	case " $dirflags " in *" $prev "*)
		compopt -o filenames 2>/dev/null
		_mirrord_reply -d -- "$cur"
		return
		;;
	esac
	case " $valueflags " in *" $prev "*) return ;; esac
	if [[ $cur == -* ]]; then
		_mirrord_reply -W "$flags -h" -- "$cur"
		return
	fi
	if [[ -n $choices ]] && ((COMP_CWORD == pos)); then
		_mirrord_reply -W "$choices" -- "$cur"
	fi
	if [[ -n $files ]]; then
		compopt -o filenames 2>/dev/null
		_mirrord_reply -f -- "$cur"
	fi
}

complete -F _mirrord mirrord
`)
	_, err := io.WriteString(w, b.String())
	return err
}

// zshQuote escapes s for a single-quoted zsh word inside an _arguments
// or _describe spec (brackets and colons are spec syntax).
func zshQuote(s string) string {
	s = strings.NewReplacer(`\`, `\\`, "[", `\[`, "]", `\]`, ":", `\:`, "'", `'\''`).Replace(s)
	return s
}

func zshCompletion(w io.Writer, cmds []compCommand) error {
	var b strings.Builder
	tops := topWords(cmds)
	b.WriteString("#compdef mirrord\n# zsh completion for mirrord (generated by `mirrord completion zsh`).\n")
	b.WriteString("# Install: mirrord completion zsh > \"${fpath[1]}/_mirrord\", then start a new shell.\n\n")
	b.WriteString("_mirrord() {\n\tlocal -a cmds\n\tlocal cmd n\n\tif ((CURRENT == 2)); then\n\t\tcmds=(\n")
	for _, t := range tops {
		fmt.Fprintf(&b, "\t\t\t'%s:%s'\n", t.word, zshQuote(shortHelp(t.help)))
	}
	b.WriteString("\t\t)\n\t\t_describe -t commands 'mirrord command' cmds\n\t\treturn\n\tfi\n")
	b.WriteString("\tcmd=${words[2]} n=1\n\tcase $cmd in\n")
	for _, t := range tops {
		if len(t.subs) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\t%s)\n\t\tif ((CURRENT == 3)); then\n\t\t\tcmds=(\n", t.word)
		for _, s := range t.subs {
			fmt.Fprintf(&b, "\t\t\t\t'%s:%s'\n", s.words[1], zshQuote(shortHelp(s.help)))
		}
		fmt.Fprintf(&b, "\t\t\t)\n\t\t\t_describe -t commands 'mirrord %s command' cmds\n\t\t\treturn\n\t\tfi\n\t\tcmd=\"$cmd ${words[3]}\" n=2\n\t\t;;\n", t.word)
	}
	b.WriteString("\tesac\n\t# Let _arguments see the command's own words only.\n\tshift $n words\n\t((CURRENT -= n))\n\tcase $cmd in\n")
	for _, c := range cmds {
		fmt.Fprintf(&b, "\t%s)\n\t\t_arguments \\\n", shQuote(strings.Join(c.words, " ")))
		for _, f := range c.flags {
			spec := fmt.Sprintf("--%s[%s]", f.name, zshQuote(shortHelp(f.help)))
			switch f.value {
			case "file":
				spec += ":" + f.name + ":_files"
			case "dir":
				spec += ":" + f.name + ":_files -/"
			case "other":
				spec += ":" + f.name + ": "
			}
			fmt.Fprintf(&b, "\t\t\t'%s' \\\n", spec)
		}
		switch {
		case len(c.choices) > 0:
			fmt.Fprintf(&b, "\t\t\t'1:argument:(%s)' \\\n", strings.Join(c.choices, " "))
		case c.files:
			b.WriteString("\t\t\t'*:file:_files' \\\n")
		}
		b.WriteString("\t\t\t'-h[show the flags]'\n\t\t;;\n")
	}
	b.WriteString("\tesac\n}\n\n_mirrord \"$@\"\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// fishQuote makes s a single-quoted fish string.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(s) + "'"
}

func fishCompletion(w io.Writer, cmds []compCommand) error {
	var b strings.Builder
	tops := topWords(cmds)
	b.WriteString("# fish completion for mirrord (generated by `mirrord completion fish`).\n")
	b.WriteString("# Install: mirrord completion fish > ~/.config/fish/completions/mirrord.fish\n\n")
	b.WriteString(`# __mirrord_at WORDS: the words typed after mirrord are exactly WORDS.
function __mirrord_at
    set -l t (commandline -opc)
    set -e t[1]
    test "$t" = "$argv[1]"
end

# __mirrord_using CMD: the command being completed is CMD ("rollout start").
function __mirrord_using
    set -l t (commandline -opc)
    set -e t[1]
    set -l want (string split ' ' -- $argv[1])
    test (count $t) -ge (count $want); or return 1
    for i in (seq (count $want))
        test "$t[$i]" = "$want[$i]"; or return 1
    end
end

complete -c mirrord -f
`)
	for _, t := range tops {
		fmt.Fprintf(&b, "complete -c mirrord -n '__mirrord_at \"\"' -a %s -d %s\n", t.word, fishQuote(shortHelp(t.help)))
		for _, s := range t.subs {
			fmt.Fprintf(&b, "complete -c mirrord -n '__mirrord_at %s' -a %s -d %s\n", t.word, s.words[1], fishQuote(shortHelp(s.help)))
		}
	}
	for _, c := range cmds {
		cond := fishQuote("__mirrord_using \"" + strings.Join(c.words, " ") + "\"")
		for _, f := range c.flags {
			opt := ""
			switch f.value {
			case "file":
				opt = " -r -F"
			case "dir":
				opt = " -r -a '(__fish_complete_directories)'"
			case "other":
				opt = " -r"
			}
			fmt.Fprintf(&b, "complete -c mirrord -n %s -l %s%s -d %s\n", cond, f.name, opt, fishQuote(shortHelp(f.help)))
		}
		if len(c.choices) > 0 {
			fmt.Fprintf(&b, "complete -c mirrord -n %s -a %s\n", fishQuote("__mirrord_at \""+strings.Join(c.words, " ")+"\""), fishQuote(strings.Join(c.choices, " ")))
		}
		if c.files {
			fmt.Fprintf(&b, "complete -c mirrord -n %s -F\n", cond)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
