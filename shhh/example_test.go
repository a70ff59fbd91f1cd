package shhh_test

import (
	"fmt"
	"log/slog"
	"os"

	"chorus/shhh"
)

func Example() {
	r, err := shhh.New(shhh.DefaultConfig())
	if err != nil {
		fmt.Println(err)
		return
	}
	out, findings := r.Redact("connect postgres://chorus:s3cr3t-pw@db:5432/chorus with password=hunter2")
	fmt.Println(out)
	for _, f := range findings {
		fmt.Println(f.Rule, f.Severity, f.Start, f.End, f.SHA256[:12])
	}
	// Output:
	// connect postgres://chorus:[REDACTED]@db:5432/chorus with password=[REDACTED]
	// url_password high 26 35 91a6844b6735
	// password_assignment high 65 72 f52fbd32b2b3
}

func ExampleRedactor_RedactValue() {
	r, _ := shhh.New(shhh.DefaultConfig())
	v, findings := r.RedactValue(map[string]any{
		"task": "deploy",
		"env":  map[string]any{"API_KEY": "abcd1234efgh5678", "REGION": "eu-west-1"},
	})
	fmt.Println(v)
	fmt.Println(findings[0].Path, findings[0].Rule)
	// Output:
	// map[env:map[API_KEY:[REDACTED] REGION:eu-west-1] task:deploy]
	// env.API_KEY api_key_assignment
}

func ExampleNewHandler() {
	r, _ := shhh.New(shhh.DefaultConfig())
	opts := &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}
	log := slog.New(shhh.NewHandler(slog.NewTextHandler(os.Stdout, opts), r))
	log.Info("calling provider", "header", "Authorization: token ghp_0123456789abcdefghijABCDEFGHIJ012345")
	// Output:
	// level=INFO msg="calling provider" header="Authorization: token [REDACTED]"
}
