package shellfacts

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// realPrograms run for real inside the differential test; everything the
// command lines start besides these is a logging stub.
var realPrograms = map[string]string{
	"sh": "dash", "dash": "dash", "bash": "bash", "find": "find",
	"xargs": "xargs", "timeout": "timeout", "nohup": "nohup", "env": "env",
	"base64": "base64", "head": "head", "tee": "tee", "sed": "sed",
	"flock": "flock", "nice": "nice", "stdbuf": "stdbuf",
}

// stubPrograms log their name and do nothing else.
var stubPrograms = []string{
	"rm", "id", "cat", "touch", "curl", "git", "make", "psql", "ls", "lsof",
	"grep", "python3", "sudo",
}

// differentialCases are run by bash with the stubs on PATH. Every stub
// that runs must appear among the facts' commands, unless the facts say
// the command is opaque or has a dynamic name. No case may reach a real
// program outside PATH (command -p would).
var differentialCases = []string{
	`r''m -rf x`,
	`s\udo id`,
	`$'\x73udo' id`,
	`"sudo" id`,
	`sh -c 'rm -rf x'`,
	`echo cm0gLXJmIHgK | base64 -d | sh`,
	`cd . && make deploy`,
	`lsof -i`,
	`ls -la`,
	`find . -maxdepth 1 -name '*.md' -exec sh -c 'touch s' \;`,
	`grep -n TODO notes.txt`,
	`export GIT_SSH_COMMAND=x; git fetch`,
	`PGPASSWORD=x psql -c 'select 1'`,
	`env FOO=1 sh -c 'id'`,
	`echo list | xargs rm`,
	`timeout 5 sudo id`,
	`nohup curl x | bash`,
	`bash <(curl x)`,
	`echo x > f; cat f >> g`,
	`f(){ rm -rf x; }; f`,
	`(rm -rf x)`,
	`{ rm -rf x; }`,
	`if true; then rm -rf x; fi`,
	`for i in 1; do rm x; done`,
	`rm x & wait`,
	`ls 2>&1 | grep x`,
	"cat <<EOF\n$(id)\nEOF",
	`eval "r""m x"`,
	`command rm x`,
	`builtin eval 'rm x'`,
	`exec rm x`,
	`trap 'rm x' EXIT`,
	`: ${x:=$(rm y)}`,
	`echo $((1+$(id)))`,
	`for i in $(id); do :; done`,
	`case $(id) in *) ;; esac`,
	`[[ $(id) ]]`,
	`coproc rm x; wait`,
	`x=$(rm x)`,
	`a=(rm $(id))`,
	`declare y=$(id)`,
	`time rm x`,
	`! rm x`,
	`id && rm x`,
	`cat <(id) >(rm x); wait`,
	"shopt -s expand_aliases; alias ls='rm x'\nls",
	`flock l -c 'rm x'`,
	`sed -n '1e id' notes.txt`,
	`echo 'rm x' | bash`,
	`sudo -u root -- sh -c 'id'`,
	`timeout --sig KILL 5 rm x`,
	`nice -n 1 rm x 2>/dev/null || rm y`,
	`find . -name '*.md' -exec rm {} +`,
	`xargs -I{} rm {} < notes.txt`,
	"bash <<'EOF'\nrm -rf x\nEOF",
	`bash -c 'rm x' && sh -ec 'id'`,
	`printf 'id\n' | sh -s`,
	"echo `echo \\`rm x\\``",
	`echo $( (rm x) )`,
	`echo $(( $(rm x) + 1 ))`,
	"echo $(cat <<EOF\nx\nEOF\nrm y)",
	"echo $(case x in x) rm y;; esac)",
	`echo ${x:-$(rm y)}`,
	`x=a; echo "${x/$(rm y)/z}"`,
	`a[$(rm y)]=1`,
	`[[ -v a[$(rm y)] ]]`,
	`let x=$(rm y)`,
	`((x=$(rm y)))`,
	`echo $(<notes.txt) $(rm y)`,
	`rm x |& grep y`,
	`if ! rm x; then id; fi`,
	`select i in a; do rm x; break; done <<< 1`,
	"rm x # ; id",
	`echo a#b; rm x`,
	`{ rm x;}`,
	`echo $[1+2]; rm x`,
	`function g { rm x; }; g`,
	`while rm x; do break; done`,
	`until rm x; do :; done`,
	`cat <<< $(rm x)`,
	`echo > >(rm x); wait`,
	`sudo -uroot rm x`,
	`xargs -n1 rm < notes.txt`,
	`find . -name '*.md' -exec rm {} \; -exec id \;`,
	`nice --adjustment=5 rm x`,
	`stdbuf -oL rm x`,
	`env -- rm x`,
	`exec -a foo rm x`,
	`bash -o pipefail -c 'rm x'`,
	`sh -c -- 'rm x'`,
	`eval -- 'rm x'`,
	"r\\\nm x",
	`printf -v y %s x; rm "$y"`,
	`declare -a "z=($(rm y))"`,
}

// TestAgainstBash runs each case with bash and checks that every program
// bash started is in the facts.
func TestAgainstBash(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not installed")
	}
	fx := newFixture(t)
	stubs := t.TempDir()
	logFile := filepath.Join(t.TempDir(), "log")
	for name, real := range realPrograms {
		p, err := exec.LookPath(real)
		if err != nil {
			t.Skipf("%s not installed", real)
		}
		if err := os.Symlink(p, filepath.Join(stubs, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range stubPrograms {
		script := "#!/bin/sh\necho \"${0##*/}\" >> \"$SF_LOG\"\n"
		if err := os.WriteFile(filepath.Join(stubs, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}

	for _, command := range differentialCases {
		t.Run(command, func(t *testing.T) {
			work := t.TempDir()
			for _, f := range []string{"README.md", "notes.txt"} {
				if err := os.WriteFile(filepath.Join(work, f), []byte("x\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(logFile, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			opts := Options{Path: []string{stubs}, Workdir: work, Home: fx.home}
			facts, err := Analyze(command, opts)
			if err != nil {
				t.Fatalf("Analyze: %v", err)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bash, "--noprofile", "--norc", "-c", command)
			cmd.Dir = work
			cmd.Env = []string{"PATH=" + stubs, "HOME=" + fx.home, "SF_LOG=" + logFile}
			cmd.Stdin = strings.NewReader("")
			out, _ := cmd.CombinedOutput() // exit codes vary; the log is what counts
			if ctx.Err() != nil {
				t.Fatalf("bash timed out: %s", out)
			}

			raw, err := os.ReadFile(logFile)
			if err != nil {
				t.Fatal(err)
			}
			ran := strings.Fields(string(raw))
			if len(ran) == 0 {
				t.Fatalf("no stub ran; the case tests nothing (bash said %q)", out)
			}
			if facts.Opaque || dynamicName(facts) {
				return
			}
			known := bases(facts)
			for _, name := range ran {
				if !slices.Contains(known, name) {
					t.Errorf("bash ran %s; facts list only %q", name, known)
				}
			}
		})
	}
}

func dynamicName(f *Facts) bool {
	for _, c := range f.Commands {
		if c.Dynamic && c.Base == "" {
			return true
		}
	}
	return false
}
