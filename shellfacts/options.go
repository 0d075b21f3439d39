package shellfacts

import "strings"

// optSpec describes a program's options in getopt terms. Parsing stops at
// the first operand, as getopt does with a leading "+" (coreutils
// wrappers, sudo, env, xargs).
type optSpec struct {
	// withArg lists short options that take a value, attached (-n5) or
	// as the next word (-n 5).
	withArg string
	// optional lists short options whose value, if any, is attached.
	optional string
	// long lists long options that take a value, as --name=v or --name v.
	// getopt accepts any unambiguous prefix, and so does the parser.
	long []string
	// numeric is set when -N is an option (nice -10).
	numeric bool
}

// option is one parsed option.
type option struct {
	name string // "-x" or "--name"
	val  string
	has  bool // a value was given
	dyn  bool // the value is dynamic
}

// parseOptions reads the options in args[i:]. It returns them, the index
// of the first operand, and whether a dynamic word that could expand to
// options was met before it.
func parseOptions(args []arg, i int, spec optSpec) ([]option, int, bool) {
	var opts []option
	for i < len(args) {
		x := args[i]
		if x.dyn {
			return opts, i, x.split
		}
		v := x.val
		switch {
		case v == "--":
			return opts, i + 1, false
		case strings.HasPrefix(v, "--"):
			o := option{name: v}
			if name, val, ok := strings.Cut(v, "="); ok {
				o = option{name: name, val: val, has: true}
			} else if longTakesArg(spec.long, v[2:]) && i+1 < len(args) {
				i++
				o.val, o.has, o.dyn = args[i].val, true, args[i].dyn
			}
			opts = append(opts, o)
			i++
			continue
		case len(v) < 2 || v[0] != '-':
			return opts, i, false
		case spec.numeric && isDigits(v[1:]):
			opts = append(opts, option{name: "-", val: v[1:], has: true})
			i++
			continue
		}
		for j := 1; j < len(v); j++ {
			ch := v[j]
			o := option{name: "-" + string(ch)}
			if strings.IndexByte(spec.withArg, ch) >= 0 {
				if j+1 < len(v) {
					o.val, o.has = v[j+1:], true
				} else if i+1 < len(args) {
					i++
					o.val, o.has, o.dyn = args[i].val, true, args[i].dyn
				}
				opts = append(opts, o)
				break
			}
			if strings.IndexByte(spec.optional, ch) >= 0 {
				o.val, o.has = v[j+1:], j+1 < len(v)
				opts = append(opts, o)
				break
			}
			opts = append(opts, o)
		}
		i++
	}
	return opts, i, false
}

func longTakesArg(long []string, name string) bool {
	if name == "" {
		return false
	}
	for _, l := range long {
		if strings.HasPrefix(l, name) {
			return true
		}
	}
	return false
}

// hasOpt reports whether opts holds any of names; a long name also
// matches an unambiguous abbreviation of it.
func hasOpt(opts []option, names ...string) bool {
	_, ok := optValue(opts, names...)
	return ok
}

// optValue returns the option matching one of names.
func optValue(opts []option, names ...string) (option, bool) {
	for _, o := range opts {
		for _, n := range names {
			if o.name == n {
				return o, true
			}
			if strings.HasPrefix(n, "--") && len(o.name) > 3 &&
				strings.HasPrefix(n, o.name) {
				return o, true
			}
		}
	}
	return option{}, false
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
