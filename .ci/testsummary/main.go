// Command testsummary reads `go test -json` on stdin and prints what a
// reader of `make test` needs: one line per package as it finishes (as go
// test prints it), the whole output of each failed test or package, then
// every skipped test with its reason, and last a count line:
//
//	skipped: github.com/sessiongate/sessiongate/middleware TestX (storetest: Redis test skipped because SKIP_REDIS is set)
//	412 passed, 0 failed, 40 skipped
//
// Counts include subtests. It exits 1 when a test or a package failed
// (including a build failure) and 2 when stdin is not go test's JSON.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// event is one line of go test -json (cmd/test2json).
type event struct {
	Action      string
	Package     string
	Test        string
	Elapsed     float64
	Output      string
	ImportPath  string
	FailedBuild string
}

type key struct{ pkg, test string }

func main() {
	var (
		output                  = map[key][]string{} // per test; test "" is the package
		skips                   []string
		passed, failed, skipped int
		badPackages             int
	)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	for in.Scan() {
		var e event
		if err := json.Unmarshal(in.Bytes(), &e); err != nil || e.Action == "" {
			// Not an event: go itself talking (a build error before any
			// package ran). Pass it on.
			fmt.Fprintln(out, in.Text())
			continue
		}
		k := key{e.Package, e.Test}
		if e.Action == "build-output" {
			k = key{e.ImportPath, ""}
		}
		switch e.Action {
		case "output", "build-output":
			output[k] = append(output[k], e.Output)
		case "pass", "fail", "skip":
			if e.Test == "" {
				fmt.Fprint(out, packageLine(e))
				if e.Action == "fail" {
					badPackages++
					printOutput(out, output[k])
				}
				out.Flush()
				break
			}
			switch e.Action {
			case "pass":
				passed++
			case "fail":
				failed++
				printOutput(out, output[k])
			case "skip":
				skipped++
				skips = append(skips, fmt.Sprintf("skipped: %s %s (%s)", e.Package, e.Test, skipReason(output[k])))
			}
			delete(output, k)
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(out, "testsummary:", err)
		out.Flush()
		os.Exit(2)
	}
	for _, s := range skips {
		fmt.Fprintln(out, s)
	}
	fmt.Fprintf(out, "%d passed, %d failed, %d skipped\n", passed, failed, skipped)
	out.Flush()
	if failed > 0 || badPackages > 0 {
		os.Exit(1)
	}
}

// packageLine is go test's own line for a finished package.
func packageLine(e event) string {
	switch {
	case e.Action == "skip":
		return fmt.Sprintf("?   \t%s\t[no test files]\n", e.Package)
	case e.Action == "pass":
		return fmt.Sprintf("ok  \t%s\t%.3fs\n", e.Package, e.Elapsed)
	case e.FailedBuild != "":
		return fmt.Sprintf("FAIL\t%s [build failed]\n", e.Package)
	}
	return fmt.Sprintf("FAIL\t%s\t%.3fs\n", e.Package, e.Elapsed)
}

// printOutput prints a failed test's or package's output, without the
// framing lines of -v.
func printOutput(out *bufio.Writer, lines []string) {
	for _, l := range lines {
		if strings.HasPrefix(l, "=== ") {
			continue
		}
		fmt.Fprint(out, l)
	}
}

// logLine is t.Log's "    file_test.go:12: message".
var logLine = regexp.MustCompile(`^\s+[\w.-]+\.go:\d+: (.*)$`)

// skipReason is the message a skipped test logged, usually t.Skip's.
func skipReason(lines []string) string {
	var msgs []string
	for _, l := range lines {
		if m := logLine.FindStringSubmatch(strings.TrimRight(l, "\n")); m != nil {
			msgs = append(msgs, m[1])
		}
	}
	if len(msgs) == 0 {
		return "no reason given"
	}
	return strings.Join(msgs, "; ")
}
