package shhh_test

import (
	"fmt"
	"strings"
	"testing"

	"chorus/shhh"
)

// mixedLog builds about size bytes of realistic agent logs: mostly ordinary
// text and JSON lines (some with words like token, password, api, bearer
// that are not secrets), and about one line in thirty holding a fake secret.
// It returns the lines and the number of secrets planted.
func mixedLog(size int) ([]string, int) {
	f := newFake(99)
	plain := []func(i int) string{
		func(i int) string {
			return fmt.Sprintf(`time=2026-05-01T12:%02d:%02d.%03dZ level=INFO msg="task claimed" task=task/github/acme/api/%d agent=agent-%d fencing=%d`, i%60, i%60, i%1000, i, i%7, i)
		},
		func(i int) string {
			return fmt.Sprintf(`{"time":"2026-05-01T12:00:%02dZ","level":"INFO","msg":"llm call done","model":"gpt-4o","prompt_tokens":%d,"max_tokens":4096,"latency_ms":%d}`, i%60, 800+i%400, 300+i%900)
		},
		func(i int) string {
			return fmt.Sprintf(`time=2026-05-01T12:00:00Z level=DEBUG msg="http request" method=GET url=https://api.github.com/repos/acme/api/issues/%d status=200 request_id=123e4567-e89b-12d3-a456-%012d`, i, i)
		},
		func(i int) string {
			return fmt.Sprintf(`sandbox[%d]: go test ./... ok  	chorus/workflows	%d.%03ds coverage: %d.%d%% of statements`, i, i%9, i%1000, i%100, i%10)
		},
		func(i int) string {
			return fmt.Sprintf(`commit 3f786850e387550fdab836ed7e6dc881de2%05d merged by agent-%d; password_policy=strict; see https://docs.example.com/auth#bearer`, i%100000, i%5)
		},
		func(i int) string {
			return fmt.Sprintf(`{"level":"WARN","msg":"token bucket low","peer":"12D3KooWQ%08dxyz","topic":"chorus/tasks/v1","queue_len":%d}`, i, i%50)
		},
	}
	secret := []func() string{
		func() string {
			return "level=ERROR msg=\"auth failed\" header=\"Authorization: Bearer " + f.jwt() + "\""
		},
		func() string { return "export OPENAI_API_KEY=sk-proj-" + f.str(urlsafe, 120) },
		func() string {
			return `{"msg":"clone","url":"https://x-access-token:` + "ghs_" + f.str(alnum, 36) + `@github.com/acme/api.git"}`
		},
		func() string {
			return "db connect dsn=postgres://chorus:" + f.str(alnum, 16) + "@db:5432/chorus password=" + f.str(alnum, 12)
		},
		func() string {
			return "aws_access_key_id=AKIA" + f.str(upper, 16) + " aws_secret_access_key=" + f.str(b64, 40)
		},
	}
	var lines []string
	n, planted := 0, 0
	for i := 0; n < size; i++ {
		var l string
		if i%30 == 29 {
			l = secret[planted%len(secret)]()
			planted++
		} else {
			l = plain[i%len(plain)](i)
		}
		lines = append(lines, l)
		n += len(l) + 1
	}
	return lines, planted
}

func BenchmarkRedact(b *testing.B) {
	lines, planted := mixedLog(1 << 20)
	blob := strings.Join(lines, "\n") + "\n"
	r, err := shhh.New(shhh.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	if out, _ := r.Redact(blob); strings.Count(out, "[REDACTED]") < planted {
		b.Fatalf("only %d redactions for %d planted secrets", strings.Count(out, "[REDACTED]"), planted)
	}
	// One call per log line, as the slog handler and a gossip publish do.
	b.Run("lines", func(b *testing.B) {
		b.SetBytes(int64(len(blob)))
		for b.Loop() {
			for _, l := range lines {
				r.Redact(l)
			}
		}
	})
	// The whole log in one call, as for an AI transcript or an artifact.
	b.Run("blob", func(b *testing.B) {
		b.SetBytes(int64(len(blob)))
		for b.Loop() {
			r.Redact(blob)
		}
	})
}
