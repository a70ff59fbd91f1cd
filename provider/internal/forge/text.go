package forge

import (
	"fmt"
	"strings"
	"time"

	"chorus"
)

// Bounds on the free text of a comment. GitHub refuses bodies over 65536
// characters; these keep a comment readable well below that.
const (
	maxMessage = 2000
	maxOutput  = 6000
)

func claimText(agent string) string {
	return fmt.Sprintf("**chorus**: agent %s claims this task.", code(agent))
}

// resultText is the human part of the result comment.
func (t *Tracker) resultText(agent string, r chorus.Result) string {
	var b strings.Builder
	outcome := "succeeded"
	if !r.Success {
		outcome = "did not succeed"
	}
	fmt.Fprintf(&b, "**chorus**: agent %s completed this task: it %s.\n\n", code(agent), outcome)
	var facts []string
	if r.ExecutionType != "" {
		facts = append(facts, "execution: "+code(r.ExecutionType))
	}
	facts = append(facts, "duration: "+(time.Duration(r.DurationMS)*time.Millisecond).String(),
		fmt.Sprintf("exit code: %d", r.ExitCode))
	if r.Model != "" {
		facts = append(facts, "model: "+code(r.Model))
	}
	if n := len(r.CommandsExecuted); n > 0 {
		facts = append(facts, fmt.Sprintf("commands: %d", n))
	}
	if n := len(r.FilesGenerated); n > 0 {
		facts = append(facts, fmt.Sprintf("files: %d", n))
	}
	b.WriteString(strings.Join(facts, " · "))
	b.WriteString("\n")
	if msg := truncate(t.redact(r.Message), maxMessage); strings.TrimSpace(msg) != "" {
		b.WriteString("\n" + quote(msg) + "\n")
	}
	if tail := truncateHead(t.redact(r.OutputTail), maxOutput); strings.TrimSpace(tail) != "" {
		fence := strings.Repeat("`", max(3, longestRun(tail, '`')+1))
		fmt.Fprintf(&b, "\n<details><summary>Output (last lines)</summary>\n\n%stext\n%s\n%s\n\n</details>\n", fence, strings.TrimRight(tail, "\n"), fence)
	}
	return strings.TrimRight(b.String(), "\n")
}

// code shows s as inline code; backticks in it become quotes.
func code(s string) string {
	return "`" + strings.ReplaceAll(strings.ReplaceAll(s, "`", "'"), "\n", " ") + "`"
}

// quote makes a Markdown block quote of s.
func quote(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "> " + l
	}
	return strings.Join(lines, "\n")
}

// truncate keeps the first n bytes of s (on a rune boundary).
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// truncateHead keeps the last n bytes of s (on a rune boundary).
func truncateHead(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := len(s) - n
	for i < len(s) && !isRuneStart(s[i]) {
		i++
	}
	return "…" + s[i:]
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

func longestRun(s string, c byte) int {
	best, cur := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			cur++
			best = max(best, cur)
		} else {
			cur = 0
		}
	}
	return best
}
