package shhh_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"regexp/syntax"
	"strings"
	"sync"
	"testing"

	"chorus"
	"chorus/shhh"
)

// fake generates fake, random-looking secrets from a fixed seed, so the
// tests are reproducible and hold no real credential.
type fake struct{ rng *rand.Rand }

func newFake(seed uint64) *fake {
	return &fake{rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

const (
	alnum   = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	upper   = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	urlsafe = alnum + "-_"
	b64     = alnum + "+/"
)

func (f *fake) str(charset string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = charset[f.rng.IntN(len(charset))]
	}
	return string(b)
}

func (f *fake) jwt() string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." +
		enc([]byte(`{"sub":"agent-`+f.str(alnum, 8)+`","exp":1900000000}`)) + "." + f.str(urlsafe, 43)
}

func (f *fake) pemBody() string {
	lines := make([]string, 5)
	for i := range lines {
		lines[i] = f.str(b64, 64)
	}
	return strings.Join(lines, "\n")
}

func hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func newRedactor(t testing.TB, cfg shhh.Config) *shhh.Redactor {
	t.Helper()
	r, err := shhh.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}

// TestRedactDefaultRules checks each kind of secret: the exact output, and
// the finding's rule, offsets and hash.
func TestRedactDefaultRules(t *testing.T) {
	f := newFake(1)
	ghTokens := map[string]string{}
	for _, p := range []string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_"} {
		ghTokens[p] = p + f.str(alnum, 36)
	}
	cases := []struct {
		name           string
		before, secret string
		after          string
		rule           string
	}{
		{"openai legacy", "calling model with key ", "sk-" + f.str(alnum, 48), " ok", "openai_api_key"},
		{"openai project key beats api_key", "OPENAI_API_KEY=", "sk-proj-" + f.str(urlsafe, 120), "\n", "openai_api_key"},
		{"openai in quotes", `{"key":"`, "sk-svcacct-" + f.str(urlsafe, 64), `"}`, "openai_api_key"},
		{"github ghp", "GH token: ", ghTokens["ghp_"], "", "github_token"},
		{"github gho", "oauth=", ghTokens["gho_"], ";", "github_token"},
		{"github ghu", "user token ", ghTokens["ghu_"], " expired", "github_token"},
		{"github ghs", "installation ", ghTokens["ghs_"], ".", "github_token"},
		{"github ghr", "refresh ", ghTokens["ghr_"], "", "github_token"},
		{"github fine-grained", "export GH=", "github_pat_" + f.str(alnum, 22) + "_" + f.str(alnum, 59), "", "github_token"},
		{"aws access key id", "aws_access_key_id = ", "AKIA" + f.str(upper, 16), "\n", "aws_access_key_id"},
		{"aws session key id", "creds: ", "ASIA" + f.str(upper, 16), ",", "aws_access_key_id"},
		{"aws secret key", "aws_secret_access_key = ", f.str(b64, 40), "\nregion = eu-west-1", "aws_secret_access_key"},
		{"aws secret key env", `AWS_SECRET_ACCESS_KEY="`, f.str(b64, 40), `"`, "aws_secret_access_key"},
		{"api_key json", `{"api_key": "`, f.str(alnum, 32), `", "model": "x"}`, "api_key_assignment"},
		{"x-api-key header", "X-API-Key: ", f.str("0123456789abcdef", 32), "\r\n", "api_key_assignment"},
		{"apikey bare", "apikey=", f.str(alnum, 24), "&q=go", "api_key_assignment"},
		{"api-key yaml", "  api-key: '", f.str(urlsafe, 30), "'", "api_key_assignment"},
		{"bearer header", "Authorization: Bearer ", f.str(urlsafe, 40), "\r\n", "bearer_token"},
		{"bearer jwt names jwt", "Authorization: Bearer ", f.jwt(), "", "jwt"},
		{"basic auth", "Authorization: Basic ", base64.StdEncoding.EncodeToString([]byte("admin:" + f.str(alnum, 12))), "", "authorization_header"},
		{"jwt alone", "session ", f.jwt(), " accepted", "jwt"},
		{"oauth access token in query", "GET /cb?access_token=", f.str(urlsafe, 30), "&state=xyz HTTP/1.1", "token_assignment"},
		{"refresh token json", `"refresh_token":"`, f.str(urlsafe, 40), `"`, "token_assignment"},
		{"pem rsa", "key:\n-----BEGIN RSA PRIVATE KEY-----\n", f.pemBody(), "\n-----END RSA PRIVATE KEY-----\ndone", "private_key"},
		{"pem openssh", "-----BEGIN OPENSSH PRIVATE KEY-----\n", f.pemBody(), "\n-----END OPENSSH PRIVATE KEY-----\n", "private_key"},
		{"pem cut short", "-----BEGIN EC PRIVATE KEY-----\n", f.pemBody(), "\n", "private_key"},
		{"url password", "dsn=postgres://chorus:", f.str(alnum, 16), "@db.internal:5432/chorus?sslmode=disable", "url_password"},
		{"url password redis empty user", "redis://:", f.str(alnum, 20), "@cache:6379/0", "url_password"},
		{"password assignment", "connecting db_password=", f.str(alnum, 14), " host=db", "password_assignment"},
		{"passwd json", `{"user":"bob","passwd": "`, f.str(alnum, 10), `"}`, "password_assignment"},
		{"quoted password with spaces", "password='", "correct horse battery staple", "'", "password_assignment"},
		{"pwd env", "PWD: ", f.str(alnum, 12), "", "password_assignment"},
		{"client secret", "client_secret=", f.str(alnum, 20), "&grant_type=client_credentials", "password_assignment"},
		{"ruby hash", `:secret => "`, f.str(alnum, 18), `"`, "password_assignment"},
	}
	r := newRedactor(t, shhh.DefaultConfig())
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.before + tc.secret + tc.after
			got, fs := r.Redact(in)
			if want := tc.before + "[REDACTED]" + tc.after; got != want {
				t.Fatalf("Redact(%q)\n got %q\nwant %q", in, got, want)
			}
			want := shhh.Finding{Rule: tc.rule, Severity: fs0(fs).Severity, Start: len(tc.before), End: len(tc.before) + len(tc.secret), SHA256: hash(tc.secret)}
			if len(fs) != 1 || fs[0] != want {
				t.Fatalf("findings %+v, want [%+v]", fs, want)
			}
			if fs[0].Severity == "" {
				t.Fatalf("finding has no severity")
			}
		})
	}
}

func fs0(fs []shhh.Finding) shhh.Finding {
	if len(fs) == 0 {
		return shhh.Finding{}
	}
	return fs[0]
}

// TestRedactNearMisses lists text that looks a little like a secret but is
// not one; redacting it would destroy useful log content.
func TestRedactNearMisses(t *testing.T) {
	r := newRedactor(t, shhh.DefaultConfig())
	for _, in := range []string{
		// "sk-" inside an identifier: the OpenAI rule needs a boundary that
		// is not a letter, digit, _ or - before "sk-".
		"task-sk-1 finished",
		"see task-sk-12345678901234567890123456789012345 for details",
		"disk-usage at 80%",
		// Commit SHAs and UUIDs are high-entropy but public.
		"commit 3f786850e387550fdab836ed7e6dc881de23001b merged",
		"request_id=123e4567-e89b-12d3-a456-426614174000",
		// Keys that only start with a secret word are settings, not secrets.
		"password_policy=strict",
		"passwordless=true password_min_length: 12",
		"api_key_rotation_days=30",
		"secretName: my-tls-secret",
		// Token counts in AI transcripts, and short values.
		"max_tokens=4096 prompt_tokens: 1200 token: short",
		// Prose.
		"Use bearer authentication for the API",
		"the token expired; ask for a new secret",
		// URLs without a password: a port, a user alone, a version tag.
		"http://localhost:8080/health",
		"ssh://git@github.com/acme/api.git",
		"go get example.com/mod@v1.2.3",
		// Prefixes too short to be keys.
		"ghp_short AKIA1234 sk-abc",
		// A JWT header alone is not a token.
		"header eyJhbGciOiJIUzI1NiJ9 seen",
		// Public keys are public.
		"-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----",
		// Already redacted.
		"password=[REDACTED] Authorization: Bearer [REDACTED]",
	} {
		got, fs := r.Redact(in)
		if got != in || len(fs) != 0 {
			t.Errorf("Redact(%q) = %q, %+v; want it unchanged", in, got, fs)
		}
	}
}

func TestRedactSeveralAndIdempotent(t *testing.T) {
	f := newFake(2)
	gh, pw, jwt := "ghp_"+f.str(alnum, 36), f.str(alnum, 12), f.jwt()
	in := "push with " + gh + " to https://bot:" + pw + "@git.example.com/x.git; Authorization: Bearer " + jwt
	r := newRedactor(t, shhh.DefaultConfig())
	got, fs := r.Redact(in)
	want := "push with [REDACTED] to https://bot:[REDACTED]@git.example.com/x.git; Authorization: Bearer [REDACTED]"
	if got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	rules := []string{}
	for i, fd := range fs {
		rules = append(rules, fd.Rule)
		if in[fd.Start:fd.End] != []string{gh, pw, jwt}[i] {
			t.Errorf("finding %d covers %q", i, in[fd.Start:fd.End])
		}
	}
	if strings.Join(rules, ",") != "github_token,url_password,jwt" {
		t.Errorf("rules %v", rules)
	}
	again, fs2 := r.Redact(got)
	if again != got || len(fs2) != 0 {
		t.Errorf("second pass changed %q to %q with %+v", got, again, fs2)
	}
}

// TestRedactOverlapMerges checks that when matches of two rules overlap
// without being equal, the union is redacted.
func TestRedactOverlapMerges(t *testing.T) {
	r := newRedactor(t, shhh.Config{Rules: []shhh.Rule{
		{Name: "a", Pattern: `AAA-\d+`, Severity: "low"},
		{Name: "b", Pattern: `\d+-BBB`, Severity: "high"},
	}, DisableDefaults: true})
	got, fs := r.Redact("x AAA-123-BBB y")
	if got != "x [REDACTED] y" || len(fs) != 1 || fs[0].Rule != "a" || fs[0].Start != 2 || fs[0].End != 13 || fs[0].SHA256 != hash("AAA-123-BBB") {
		t.Fatalf("got %q %+v", got, fs)
	}
}

func TestRedactBytesDoesNotModifyInput(t *testing.T) {
	f := newFake(3)
	in := []byte("token=" + f.str(alnum, 30))
	orig := string(in)
	r := newRedactor(t, shhh.DefaultConfig())
	out, fs := r.RedactBytes(in)
	if string(out) != "token=[REDACTED]" || len(fs) != 1 || fs[0].Start != 6 {
		t.Fatalf("got %q %+v", out, fs)
	}
	if string(in) != orig {
		t.Fatalf("input modified: %q", in)
	}
}

func TestCustomRules(t *testing.T) {
	f := newFake(4)
	lic := "LIC-" + f.str(upper, 4) + "-" + f.str(upper, 4)
	rule := shhh.Rule{Name: "chorus_license", Pattern: `\bLIC-[A-Z0-9]{4}-[A-Z0-9]{4}\b`, Severity: "critical", Tags: []string{"licensing"}}

	t.Run("added to defaults", func(t *testing.T) {
		r := newRedactor(t, shhh.Config{Rules: []shhh.Rule{rule}})
		pw := f.str(alnum, 10)
		got, fs := r.Redact("license " + lic + " password=" + pw)
		if got != "license [REDACTED] password=[REDACTED]" || len(fs) != 2 {
			t.Fatalf("got %q %+v", got, fs)
		}
		if want := (shhh.Finding{Rule: "chorus_license", Severity: "critical", Start: 8, End: 8 + len(lic), SHA256: hash(lic)}); fs[0] != want {
			t.Fatalf("finding %+v, want %+v", fs[0], want)
		}
	})
	t.Run("defaults disabled, custom replacement, secret group", func(t *testing.T) {
		r := newRedactor(t, shhh.Config{DisableDefaults: true, Replacement: "***", Rules: []shhh.Rule{
			{Name: "license_body", Pattern: `\bLIC-(?P<secret>[A-Z0-9]{4}-[A-Z0-9]{4})\b`, Severity: "high"},
		}})
		got, fs := r.Redact("license " + lic + " password=hunter2")
		if got != "license LIC-*** password=hunter2" || len(fs) != 1 || fs[0].Start != 12 || fs[0].SHA256 != hash(lic[4:]) {
			t.Fatalf("got %q %+v", got, fs)
		}
	})
}

func TestDefaultRulesIsACopy(t *testing.T) {
	rs := shhh.DefaultRules()
	if len(rs) == 0 {
		t.Fatal("no default rules")
	}
	rs[0].Tags[0] = "changed"
	rs[0].Pattern = "x"
	if again := shhh.DefaultRules(); again[0].Tags[0] == "changed" || again[0].Pattern == "x" {
		t.Fatal("DefaultRules shares state with the package")
	}
	// The defaults must also pass as custom rules (with defaults disabled).
	if _, err := shhh.New(shhh.Config{Rules: shhh.DefaultRules(), DisableDefaults: true}); err != nil {
		t.Fatalf("defaults as custom rules: %v", err)
	}
}

func TestValidateNamesField(t *testing.T) {
	good := shhh.Rule{Name: "ok", Pattern: "x+", Severity: "low"}
	cases := []struct {
		cfg  shhh.Config
		want string
	}{
		{shhh.Config{Rules: []shhh.Rule{good, good, {Name: "bad", Pattern: "(unclosed", Severity: "low"}}},
			"shhh: rules[2].pattern: error parsing regexp: missing closing ): `(unclosed`"},
		{shhh.Config{Rules: []shhh.Rule{{Name: "", Pattern: "x", Severity: "low"}}}, "shhh: rules[0].name: empty"},
		{shhh.Config{Rules: []shhh.Rule{{Name: "jwt", Pattern: "x", Severity: "low"}}}, `shhh: rules[0].name: duplicate rule name "jwt"`},
		{shhh.Config{Rules: []shhh.Rule{{Name: "s", Pattern: "x", Severity: "urgent"}}}, `shhh: rules[0].severity: "urgent" is not one of low, medium, high, critical`},
		{shhh.Config{Rules: []shhh.Rule{{Name: "e", Pattern: "a*", Severity: "low"}}}, "shhh: rules[0].pattern: matches the empty string"},
		{shhh.Config{DisableDefaults: true}, "shhh: rules: no rules: defaults disabled and no custom rules given"},
	}
	for _, tc := range cases {
		err := tc.cfg.Validate()
		if !errors.Is(err, chorus.ErrInvalid) {
			t.Fatalf("Validate() = %v, want ErrInvalid", err)
		}
		// The duplicate "ok" adds a second error in the first case.
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate() = %q, want it to contain %q", err, tc.want)
		}
		if r, nerr := shhh.New(tc.cfg); r != nil || nerr == nil || nerr.Error() != err.Error() {
			t.Errorf("New() = %v, %v; want nil and the Validate error", r, nerr)
		}
	}
	var se *syntax.Error
	if err := cases[0].cfg.Validate(); !errors.As(err, &se) || se.Code != syntax.ErrMissingParen {
		t.Errorf("bad pattern error does not unwrap to *syntax.Error: %v", err)
	}
	if err := shhh.DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig invalid: %v", err)
	}
}

func TestStats(t *testing.T) {
	f := newFake(5)
	r := newRedactor(t, shhh.DefaultConfig())
	inputs := []string{
		"a " + "AKIA" + f.str(upper, 16) + " b",
		"password=" + f.str(alnum, 9),
		"nothing here",
		"-----BEGIN PRIVATE KEY-----\n" + f.pemBody() + "\n-----END PRIVATE KEY-----",
	}
	var scanned int64
	for _, in := range inputs {
		r.Redact(in)
		scanned += int64(len(in))
	}
	r.RedactValue(map[string]any{"password": "x", "n": 1})
	scanned += int64(len("password") + len("x") + len("n")) // keys are scanned too
	got := r.Stats()
	want := shhh.Stats{
		ScannedBytes: scanned,
		Redactions:   4,
		ByRule:       map[string]int64{"aws_access_key_id": 1, "password_assignment": 2, "private_key": 1},
		BySeverity:   map[string]int64{"high": 3, "critical": 1},
	}
	if got.ScannedBytes != want.ScannedBytes || got.Redactions != want.Redactions || !equalMaps(got.ByRule, want.ByRule) || !equalMaps(got.BySeverity, want.BySeverity) {
		t.Fatalf("Stats() = %+v\nwant %+v", got, want)
	}
}

func equalMaps(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestConcurrentUse runs many goroutines on one Redactor (run with -race)
// and checks every result and the final statistics.
func TestConcurrentUse(t *testing.T) {
	f := newFake(6)
	r := newRedactor(t, shhh.DefaultConfig())
	in := "user=bob password=" + f.str(alnum, 12) + " key=sk-" + f.str(alnum, 48) + " ok"
	const want = "user=bob password=[REDACTED] key=[REDACTED] ok"
	const goroutines, rounds = 8, 200
	var wg sync.WaitGroup
	errs := make(chan string, goroutines)
	for range goroutines {
		wg.Go(func() {
			for range rounds {
				got, fs := r.Redact(in)
				if got != want || len(fs) != 2 {
					errs <- got
					return
				}
				r.RedactValue(map[string]any{"msg": in})
				_ = r.Stats()
			}
		})
	}
	wg.Wait()
	close(errs)
	for got := range errs {
		t.Errorf("concurrent Redact = %q, want %q", got, want)
	}
	st := r.Stats()
	if n := int64(goroutines * rounds * 4); st.Redactions != n || st.ScannedBytes != int64(goroutines*rounds*(2*len(in)+len("msg"))) {
		t.Fatalf("Stats() = %+v, want %d redactions", st, n)
	}
}
