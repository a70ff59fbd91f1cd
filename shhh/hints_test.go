package shhh_test

import (
	"reflect"
	"strings"
	"testing"

	"chorus/shhh"
)

// plainDefaults applies the default rules as custom rules, which run their
// regular expressions over the whole text without the speed-up hints.
func plainDefaults(t testing.TB) *shhh.Redactor {
	return newRedactor(t, shhh.Config{Rules: shhh.DefaultRules(), DisableDefaults: true})
}

// checkSame fails if the built-in rules (with hints) and the same rules
// without hints disagree on s.
func checkSame(t testing.TB, hinted, plain *shhh.Redactor, s string) {
	t.Helper()
	got, gotFs := hinted.Redact(s)
	want, wantFs := plain.Redact(s)
	if got != want || !reflect.DeepEqual(gotFs, wantFs) {
		t.Fatalf("hints change the result for %q:\nhinted %q %+v\nplain  %q %+v", s, got, gotFs, want, wantFs)
	}
}

// TestHintsDoNotChangeResults runs a mixed multi-line log through both.
func TestHintsDoNotChangeResults(t *testing.T) {
	lines, planted := mixedLog(64 << 10)
	hinted, plain := newRedactor(t, shhh.DefaultConfig()), plainDefaults(t)
	blob := strings.Join(lines, "\n")
	checkSame(t, hinted, plain, blob)
	if _, fs := hinted.Redact(blob); len(fs) < planted {
		t.Fatalf("%d findings for %d planted secrets", len(fs), planted)
	}
	for _, l := range lines[:200] {
		checkSame(t, hinted, plain, l)
	}
}

func FuzzHintsDoNotChangeResults(f *testing.F) {
	for _, s := range []string{
		"password = \"x y\"\ntoken:abcdefgh12345678",
		"https://u:p@h https://u@h http://h:1/ ://:x@",
		"Bearer abcdefghijklmnopqrstuvwxyz\nbearer\tABCDEFGHIJKLMNOPQRSTUVWX",
		"x-sk-0123456789012345678901234567890123 \nsk-0123456789012345678901234567890123",
		"AWS_SECRET_ACCESS_KEY : 'abcdefghijABCDEFGHIJ0123456789/+abcdefgh'",
		"-----BEGIN PRIVATE KEY-----\nabc\n",
		"Proxy-Authorization=Basic Zm9vOmJhcg==",
		"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.",
	} {
		f.Add(s)
	}
	hinted, plain := newRedactor(f, shhh.DefaultConfig()), plainDefaults(f)
	f.Fuzz(func(t *testing.T, s string) {
		checkSame(t, hinted, plain, s)
	})
}
