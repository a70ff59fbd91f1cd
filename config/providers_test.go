package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"chorus"
	"chorus/config"
)

func TestParseProviders(t *testing.T) {
	f, err := config.Parse([]byte(`
providers:
  github:
    token_env: GITHUB_TOKEN
    repositories: [acme/api, acme/web]
    webhook_secret_env: GITHUB_WEBHOOK_SECRET
    poll_interval: 1m
  gitea:
    url: https://gitea.example.com
    token_file: /run/secrets/gitea
    repositories: [ops/infra]
    label: agent-task
`))
	if err != nil {
		t.Fatal(err)
	}
	gh, gt := f.Providers.GitHub, f.Providers.Gitea
	if !gh.Enabled() || gh.TokenEnv != "GITHUB_TOKEN" || len(gh.Repositories) != 2 || gh.WebhookSecretEnv != "GITHUB_WEBHOOK_SECRET" || time.Duration(gh.PollInterval) != time.Minute {
		t.Errorf("github = %+v", gh)
	}
	if !gt.Enabled() || gt.URL != "https://gitea.example.com" || gt.TokenFile != "/run/secrets/gitea" || gt.Label != "agent-task" {
		t.Errorf("gitea = %+v", gt)
	}
	if d := config.Default(); d.Providers.GitHub.Enabled() || d.Providers.Gitea.Enabled() {
		t.Error("providers are on by default")
	}
	if _, err := config.Parse([]byte("providers:\n  github:\n    token: ghp_abc\n")); err == nil || !strings.Contains(err.Error(), "providers.github.token: unknown field (line 3)") {
		t.Errorf("a token in the file: %v", err)
	}
}

func TestValidateProvidersNamesField(t *testing.T) {
	valid := func() config.File {
		f := config.Default()
		f.Providers.GitHub = config.Forge{TokenEnv: "GITHUB_TOKEN", Repositories: []string{"acme/api"}}
		f.Providers.Gitea = config.Forge{URL: "https://gitea.example.com", TokenFile: "/run/secrets/t", Repositories: []string{"ops/infra"}}
		return f
	}
	if err := valid().Validate(); err != nil {
		t.Fatalf("valid file rejected: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(*config.File)
		want   string
	}{
		{"no token", func(f *config.File) { f.Providers.GitHub.TokenEnv = "" }, "config: providers.github.token_env: set token_env or token_file"},
		{"two token sources", func(f *config.File) { f.Providers.GitHub.TokenFile = "/t" }, "config: providers.github.token_file: set only one of token_env and token_file"},
		{"token env name", func(f *config.File) { f.Providers.GitHub.TokenEnv = "GH TOKEN" }, `config: providers.github.token_env: must be an environment variable name, got "GH TOKEN"`},
		{"no repositories", func(f *config.File) { f.Providers.GitHub.Repositories = nil }, "config: providers.github.repositories: must list at least one owner/name repository"},
		{"bad repository", func(f *config.File) { f.Providers.GitHub.Repositories = []string{"api"} }, `config: providers.github.repositories[0]: must be owner/name of [A-Za-z0-9._-], got "api"`},
		{"duplicate repository", func(f *config.File) { f.Providers.GitHub.Repositories = []string{"acme/api", "Acme/API"} }, `config: providers.github.repositories[1]: duplicate repository "Acme/API" (also providers.github.repositories[0])`},
		{"github url", func(f *config.File) { f.Providers.GitHub.URL = "api.github.com" }, `config: providers.github.url: must be an http(s) URL, got "api.github.com"`},
		{"gitea needs url", func(f *config.File) { f.Providers.Gitea.URL = "" }, `config: providers.gitea.url: must be an http(s) URL, got ""`},
		{"label comma", func(f *config.File) { f.Providers.Gitea.Label = "a,b" }, `config: providers.gitea.label: must be a label name without commas, got "a,b"`},
		{"poll interval", func(f *config.File) { f.Providers.Gitea.PollInterval = config.Duration(time.Millisecond) }, "config: providers.gitea.poll_interval: must be at least 1s, got 1ms"},
		{"webhook secret sources", func(f *config.File) {
			f.Providers.Gitea.WebhookSecretEnv = "S"
			f.Providers.Gitea.WebhookSecretFile = "/s"
		}, "config: providers.gitea.webhook_secret_file: set only one of webhook_secret_env and webhook_secret_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := valid()
			tt.mutate(&f)
			err := f.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
			if !errors.Is(err, chorus.ErrInvalid) {
				t.Error("error does not wrap chorus.ErrInvalid")
			}
		})
	}
}
