// Package shellfacts reads a command line the way bash will and reports
// the facts a policy decides on: every simple command that can run
// (including those inside substitutions, functions, and the inner code of
// wrappers such as sh -c, sudo or find -exec), the redirections, the list
// and pipe structure, the variables set, and which parts cannot be known
// before the command runs.
//
// The text is parsed with mvdan.cc/sh/v3/syntax in bash mode; quotes are
// removed with mvdan.cc/sh/v3/expand under an empty environment, and every
// expansion whose value depends on run time (parameters, command and
// process substitution, arithmetic on variables) is detected on the syntax
// tree and reported as dynamic rather than expanded.
package shellfacts

import (
	"errors"
	"fmt"
	"path/filepath"
)

// Default limits, used when the matching Options field is zero or negative.
const (
	DefaultMaxCommands = 256
	DefaultMaxDepth    = 8
	DefaultMaxBytes    = 64 << 10
)

// maxFields bounds the words produced by brace expansion over the whole
// analysis, so that a short text cannot make the analyser allocate without
// end.
const maxFields = 100_000

// Options describe the target the command will run on.
type Options struct {
	// Path lists the directories of the target's PATH, in order, used to
	// resolve program names. Empty means names are not resolved (set it
	// empty for remote targets: the files here are not the files there).
	Path []string
	// Workdir is the target's working directory, used to resolve relative
	// redirect targets and ./prog. Empty (or not absolute) means relative
	// paths stay unresolved.
	Workdir string
	// Home is the HOME the target's shell runs with, used to resolve ~ in
	// redirect targets and a bare cd. Empty (or not absolute) means ~
	// stays unresolved.
	Home string
	// Remote is set when the command runs on another machine: paths are
	// made absolute and cleaned, but not looked up here (no links
	// followed, no globs expanded, nothing known to exist).
	Remote bool
	// MaxCommands bounds the number of simple commands reported
	// (default DefaultMaxCommands).
	MaxCommands int
	// MaxDepth bounds the nesting of substitutions, wrappers and inner
	// code (default DefaultMaxDepth).
	MaxDepth int
	// MaxBytes bounds the length of the command text (default
	// DefaultMaxBytes).
	MaxBytes int
}

// Facts are what the policy sees of one command line. Its slices are
// never nil, so they encode as JSON arrays; those the default policy
// iterates to find what to deny are tagged schema:"notnull", so that the
// policy input's schema refuses a null one.
type Facts struct {
	// Commands lists every simple command in the order bash starts them:
	// the substitutions in a command's words before the command, a
	// wrapper before the commands it runs.
	Commands []Command `json:"commands" schema:"notnull"`
	// Redirects lists every redirection, in source order.
	Redirects []Redirect `json:"redirects" schema:"notnull"`
	// Pipelines counts | and |& operators.
	Pipelines int `json:"pipelines"`
	// Lists counts statements beyond the first in every list, whether
	// separated by ;, a newline, & , && or ||.
	Lists int `json:"lists"`
	// Background is true when any job runs in the background (&, coproc,
	// sudo -b).
	Background bool `json:"background"`
	// Substitutions is true when the text holds $(..), `..`, <(..) or >(..).
	Substitutions bool `json:"substitutions"`
	// Assignments lists the variable names the text sets or unsets, once
	// each: VAR=x alone or before a command, export, declare and friends,
	// read, for loops, env VAR=x, unset. "*" means names the guard cannot
	// know (source, eval of dynamic text, declare $x).
	Assignments []string `json:"assignments" schema:"notnull"`
	// ChangesEnvironment is true when the text changes the shell's state
	// for the commands after it: variables, exports, aliases, options,
	// traps, the hash table, limits, or file descriptors through exec.
	// Changing directory with cd is not counted: the facts follow it.
	ChangesEnvironment bool `json:"changes_environment"`
	// Dynamic is true when some part can only be known at run time.
	Dynamic bool `json:"dynamic"`
	// DynamicReasons names why Dynamic is true, once each, in the order
	// first seen.
	DynamicReasons []string `json:"dynamic_reasons"`
	// Opaque is true when any command is Opaque.
	Opaque bool `json:"opaque"`
	// Flags collects the commands' flags, once each, and
	// "network_redirect" for a redirection to /dev/tcp or /dev/udp.
	Flags []string `json:"flags" schema:"notnull"`
	// Words lists, once each, every argument of every command, every path
	// found for a command's arguments or a redirection (as typed and as
	// resolved; entries a recursive reader finds below a directory are
	// left out), and every redirection target as written and resolved.
	// It indexes the strings a rule about file names must see, in one
	// list.
	Words []string `json:"words" schema:"notnull"`
	// Programs lists, once each, every command's name as typed, base name
	// and resolved base name.
	Programs []string `json:"programs" schema:"notnull"`
	// FunctionDefs is true when the text defines a shell function.
	FunctionDefs bool `json:"function_defs"`
	// Functions lists the names of the functions defined.
	Functions []string `json:"functions"`
	// Depth is the deepest nesting of substitutions, wrappers and inner
	// code reached (0 for a plain command).
	Depth int `json:"depth"`
}

// Command is one simple command: a program, builtin or function call.
type Command struct {
	// Name is argv[0] after quote removal, or the source text of the word
	// when it is dynamic.
	Name string `json:"name"`
	// Base is the last element of Name ("" when Name is dynamic).
	Base string `json:"base"`
	// Resolved is the file that runs, found on Options.Path (or relative
	// to the working directory when Name holds a slash) with symbolic
	// links followed. It is "" for builtins, functions, dynamic names and
	// names not found.
	Resolved string `json:"resolved"`
	// ResolvedBase is the last element of Resolved, so that a link such as
	// sudoedit -> sudo shows the program that really runs.
	ResolvedBase string `json:"resolved_base"`
	// InPath is true when the program was found in one of the absolute
	// directories of Options.Path (by name, or named by a path into one of
	// them) and the file that runs is not under Options.Workdir. A
	// program run from the working directory (./cat) has it false.
	InPath bool `json:"in_path"`
	// Args are argv[1:] after quote removal and brace expansion; a dynamic
	// word appears as its source text. Tilde and globs are kept literal.
	Args []string `json:"args"`
	// Paths lists the files and directories the arguments name: words
	// that hold a slash, start with "." or "~", or name something in the
	// working directory; values of --opt=PATH and -oPATH; the text after
	// the first @ when it looks like a path (@FILE); and every match of a
	// glob. The pattern operand of grep and rg is left out.
	Paths []PathFact `json:"paths"`
	// Env lists the variables set for this command only (VAR=x cmd,
	// env VAR=x cmd, sudo VAR=x cmd).
	Env []string `json:"env"`
	// Builtin is true when bash runs the name itself (cd, export, eval...).
	Builtin bool `json:"builtin"`
	// Function is true when the name calls a function defined in the text.
	Function bool `json:"function"`
	// Dynamic is true when the name or an argument is only known at run
	// time.
	Dynamic bool `json:"dynamic"`
	// DynamicReasons names why Dynamic is true.
	DynamicReasons []string `json:"dynamic_reasons"`
	// Flags are notes on the command: "tilde", "glob", "ansi_c_quoting",
	// and the wrapper findings listed in docs/shell-facts.md.
	Flags []string `json:"flags"`
	// Wrapper says how this command runs other code ("sh -c", "sudo",
	// "find -exec", ...); empty when it does not.
	Wrapper string `json:"wrapper,omitempty"`
	// InnerParsed is true when the code this wrapper runs was analysed and
	// its commands follow in Facts.Commands with Via set.
	InnerParsed bool `json:"inner_parsed"`
	// Opaque is true when the command runs code the guard cannot read: a
	// script from a pipe or a file, inline code for another language,
	// remote commands, dynamic code.
	Opaque bool `json:"opaque"`
	// Privileged is true for commands that run others as another user or
	// in another root (sudo, doas, su, pkexec, runuser, chroot).
	Privileged bool `json:"privileged"`
	// Via is the chain of wrappers that starts this command, outermost
	// first, joined by " -> " (e.g. "find -exec -> sh -c").
	Via string `json:"via,omitempty"`
	// StdinFromPipe is true when the command reads the output of an
	// earlier pipeline stage or of a >(..) process substitution.
	StdinFromPipe bool `json:"stdin_from_pipe"`
}

// Redirect is one redirection.
type Redirect struct {
	// Op is the operator: ">", ">>", "<", "<>", ">&", "<&", ">|", "<<",
	// "<<-", "<<<", "&>", "&>>".
	Op string `json:"op"`
	// Target is the file after quote removal. It is the descriptor for a
	// duplication (2>&1 gives "1"), and "" for here-documents,
	// here-strings and dynamic targets.
	Target string `json:"target"`
	// Fd is the descriptor written before the operator, if any.
	Fd string `json:"fd,omitempty"`
	// Writes is true when a file is opened for writing; false for reads,
	// duplications, and /dev/null, /dev/stdout and /dev/stderr.
	Writes bool `json:"writes"`
	// ResolvedTarget is Target made absolute and cleaned against the
	// working directory at that point (and Options.Home for ~); "" when
	// unknown.
	ResolvedTarget string `json:"resolved_target"`
	// Dynamic is true when the target is only known at run time.
	Dynamic bool `json:"dynamic"`
	// Paths holds the file the redirection opens, with links followed,
	// and every match when the target is a glob; empty for descriptors,
	// here-documents and dynamic targets.
	Paths []PathFact `json:"paths"`
}

// InvalidError reports text the guard refuses before parsing: invalid
// UTF-8, control characters other than newline and tab, invisible format
// characters (zero-width, bidirectional controls, BOM) and spaces other
// than the ASCII space.
type InvalidError struct {
	// Offset is the byte offset of the character in the command.
	Offset int
	// Rune is the character; utf8.RuneError for invalid UTF-8.
	Rune rune
	// Reason says what class of character it is.
	Reason string
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("%s (U+%04X) at byte %d", e.Reason, e.Rune, e.Offset)
}

// ParseError reports text that bash would not parse.
type ParseError struct {
	// Line and Col locate the problem (1-based; 0 when unknown).
	Line, Col int
	// Msg is the parser's message.
	Msg string
	err error
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("line %d column %d: %s", e.Line, e.Col, e.Msg)
}

// Unwrap returns the parser's error.
func (e *ParseError) Unwrap() error { return e.err }

// LimitError reports that the command exceeds one of the limits.
type LimitError struct {
	// Limit names the limit: "bytes", "commands", "depth" or "fields".
	Limit string
	// Max is the limit's value.
	Max int
}

func (e *LimitError) Error() string {
	switch e.Limit {
	case "bytes":
		return fmt.Sprintf("command is longer than %d bytes", e.Max)
	case "depth":
		return fmt.Sprintf("command nests more than %d levels deep", e.Max)
	case "fields":
		return fmt.Sprintf("command expands to more than %d words", e.Max)
	default:
		return fmt.Sprintf("command holds more than %d simple commands", e.Max)
	}
}

// errInternal is returned when the analyser panics; the guard denies.
var errInternal = errors.New("shellfacts: internal error while analysing the command")

// recoverPanics is switched off by the fuzz test, so that a panic shows
// its stack there instead of becoming errInternal.
var recoverPanics = true

// Analyze parses command as bash and returns its facts. The error is an
// *InvalidError for refused characters, a *ParseError for text bash would
// not parse, and a *LimitError when a limit is exceeded.
func Analyze(command string, opts Options) (facts *Facts, err error) {
	opts = withDefaults(opts)
	if len(command) > opts.MaxBytes {
		return nil, &LimitError{Limit: "bytes", Max: opts.MaxBytes}
	}
	if ierr := validate(command); ierr != nil {
		return nil, ierr
	}
	if recoverPanics {
		defer func() {
			if r := recover(); r != nil {
				facts, err = nil, errInternal
			}
		}()
	}

	file, err := parse(command)
	if err != nil {
		return nil, err
	}
	a := newAnalyzer(opts)
	if err := a.file(file, ctx{src: command, direct: true}); err != nil {
		return nil, err
	}
	return a.finish(), nil
}

func withDefaults(o Options) Options {
	if o.MaxCommands <= 0 {
		o.MaxCommands = DefaultMaxCommands
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.Workdir != "" && !filepath.IsAbs(o.Workdir) {
		o.Workdir = ""
	}
	if o.Home != "" && !filepath.IsAbs(o.Home) {
		o.Home = ""
	}
	return o
}
