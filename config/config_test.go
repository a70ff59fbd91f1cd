package config_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"chorus"
	"chorus/config"
)

const fullFile = `agent:
  id: agent-a
  role: developer
  expertise: [go, docker]
  capabilities: [shell]
  max_tasks: 2
  specialization: backend
  models:
    - {name: llama3, provider: ollama, endpoint: http://127.0.0.1:11434, roles: [developer]}
    - name: gpt
      provider: openai
      endpoint: https://api.openai.com/v1
      api_key_env: OPENAI_API_KEY
      timeout: 2m
execution:
  image: chorus-sandbox:1
  timeout: 10m
  memory: 512MiB      # sizes accept B, KiB, MiB, GiB or a plain byte count
  cpus: 1.0
  pids: 256
  budget: {task_tokens: 30000, task_steps: 6, task_wall: 5m, daily_tokens: 1000000, daily_calls: 500}
  mock: {enabled: true}
  repositories:
    - {name: acme/api, path: /srv/src/api}
`

func TestParseFullFile(t *testing.T) {
	got, err := config.Parse([]byte(fullFile))
	if err != nil {
		t.Fatal(err)
	}
	want := config.File{
		Agent: config.Agent{
			ID:             "agent-a",
			Role:           "developer",
			Expertise:      []string{"go", "docker"},
			Capabilities:   []string{"shell"},
			MaxTasks:       2,
			Specialization: "backend",
			Models: []config.Model{
				{Name: "llama3", Provider: "ollama", Endpoint: "http://127.0.0.1:11434", Roles: []string{"developer"}},
				{Name: "gpt", Provider: "openai", Endpoint: "https://api.openai.com/v1", APIKeyEnv: "OPENAI_API_KEY", Timeout: config.Duration(2 * time.Minute)},
			},
		},
		Execution: config.Execution{
			Image:   "chorus-sandbox:1",
			Timeout: config.Duration(10 * time.Minute),
			Memory:  512 * config.MiB,
			CPUs:    1,
			Pids:    256,
			Budget: config.Budget{TaskTokens: 30000, TaskSteps: 6, TaskWall: config.Duration(5 * time.Minute),
				DailyTokens: 1000000, DailyCalls: 500},
			Mock:         config.Mock{Enabled: true},
			Repositories: []config.Repository{{Name: "acme/api", Path: "/srv/src/api"}},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Parse =\n%+v\nwant\n%+v", got, want)
	}
}

func TestDefault(t *testing.T) {
	d := config.Default()
	if err := d.Validate(); err != nil {
		t.Fatalf("Default() does not validate: %v", err)
	}
	x := d.Execution
	if d.Agent.ID != "" || d.Agent.Role != "developer" || d.Agent.MaxTasks != 1 ||
		x.Image != "chorus-sandbox:1" || time.Duration(x.Timeout) != 10*time.Minute ||
		x.Memory != 512<<20 || x.CPUs != 1 || x.Pids != 256 {
		t.Fatalf("Default() = %+v", d)
	}
}

func TestParseOverlaysDefaults(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want func(*config.File)
	}{
		{"empty file", "", func(*config.File) {}},
		{"comment only", "# nothing here\n", func(*config.File) {}},
		{"empty document", "---\n", func(*config.File) {}},
		{"null section", "agent:\nexecution: ~\n", func(*config.File) {}},
		{"one field", "agent: {id: node-7}\n", func(f *config.File) { f.Agent.ID = "node-7" }},
		{"execution only", "execution:\n  memory: 1GiB\n  timeout: 90s\n", func(f *config.File) {
			f.Execution.Memory = config.GiB
			f.Execution.Timeout = config.Duration(90 * time.Second)
		}},
		{"plain byte count", "execution: {memory: 10485760}\n", func(f *config.File) { f.Execution.Memory = 10 * config.MiB }},
		{"anchors", "agent:\n  expertise: &langs [go, rust]\n  capabilities: *langs\n", func(f *config.File) {
			f.Agent.Expertise = []string{"go", "rust"}
			f.Agent.Capabilities = []string{"go", "rust"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.Parse([]byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			want := config.Default()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Parse =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestValidateNamesField(t *testing.T) {
	valid := func() config.File {
		f := config.Default()
		f.Agent.ID = "agent-a"
		f.Agent.Expertise = []string{"go"}
		f.Agent.Models = []config.Model{{Name: "llama3", Provider: "ollama", Endpoint: "http://127.0.0.1:11434"}}
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
		{"max_tasks zero", func(f *config.File) { f.Agent.MaxTasks = 0 }, "config: agent.max_tasks: must be between 1 and 64, got 0"},
		{"max_tasks too many", func(f *config.File) { f.Agent.MaxTasks = 65 }, "config: agent.max_tasks: must be between 1 and 64, got 65"},
		{"id charset", func(f *config.File) { f.Agent.ID = "agent a" }, `config: agent.id: must match [A-Za-z0-9_.-]+, got "agent a"`},
		{"role empty", func(f *config.File) { f.Agent.Role = "" }, "config: agent.role: must not be empty"},
		{"role with slash", func(f *config.File) { f.Agent.Role = "dev/ops" }, "config: agent.role: must match"},
		{"empty expertise", func(f *config.File) { f.Agent.Expertise = []string{"go", " "} }, "config: agent.expertise[1]: must not be empty"},
		{"empty capability", func(f *config.File) { f.Agent.Capabilities = []string{""} }, "config: agent.capabilities[0]: must not be empty"},
		{"model name", func(f *config.File) { f.Agent.Models[0].Name = "" }, "config: agent.models[0].name: must not be empty"},
		{"duplicate model", func(f *config.File) { f.Agent.Models = append(f.Agent.Models, f.Agent.Models[0]) }, `config: agent.models[1].name: duplicate model name "llama3" (also agent.models[0])`},
		{"provider", func(f *config.File) { f.Agent.Models[0].Provider = "anthropic" }, `config: agent.models[0].provider: must be ollama or openai, got "anthropic"`},
		{"endpoint scheme", func(f *config.File) { f.Agent.Models[0].Endpoint = "ftp://host" }, `config: agent.models[0].endpoint: must be an http(s) URL, got "ftp://host"`},
		{"endpoint missing", func(f *config.File) { f.Agent.Models[0].Endpoint = "" }, `config: agent.models[0].endpoint: must be an http(s) URL, got ""`},
		{"endpoint no host", func(f *config.File) { f.Agent.Models[0].Endpoint = "http://" }, `config: agent.models[0].endpoint: must be an http(s) URL`},
		{"api key env name", func(f *config.File) { f.Agent.Models[0].APIKeyEnv = "MY KEY" }, `config: agent.models[0].api_key_env: must be an environment variable name`},
		{"two key sources", func(f *config.File) {
			f.Agent.Models[0].APIKeyEnv = "KEY"
			f.Agent.Models[0].APIKeyFile = "/run/secrets/key"
		}, "config: agent.models[0].api_key_file: set only one of api_key_env and api_key_file"},
		{"image", func(f *config.File) { f.Execution.Image = "" }, "config: execution.image: must not be empty"},
		{"timeout", func(f *config.File) { f.Execution.Timeout = 0 }, "config: execution.timeout: must be positive, got 0s"},
		{"memory", func(f *config.File) { f.Execution.Memory = config.MiB }, "config: execution.memory: must be at least 6MiB (Docker's minimum), got 1MiB"},
		{"cpus", func(f *config.File) { f.Execution.CPUs = 0 }, "config: execution.cpus: must be a positive number, got 0"},
		{"pids", func(f *config.File) { f.Execution.Pids = 0 }, "config: execution.pids: must be at least 1, got 0"},
		{"budget", func(f *config.File) { f.Execution.Budget.DailyCalls = -1 }, "config: execution.budget.daily_calls: must not be negative, got -1"},
		{"repository path", func(f *config.File) {
			f.Execution.Repositories = []config.Repository{{Name: "a", Path: "rel"}}
		}, `config: execution.repositories[0].path: must be an absolute directory path, got "rel"`},
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
				t.Errorf("error does not wrap chorus.ErrInvalid")
			}
			var fe *config.FieldError
			if !errors.As(err, &fe) || !strings.HasPrefix(tt.want, "config: "+fe.Path+":") {
				t.Errorf("FieldError = %+v, want its path to match %q", fe, tt.want)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	f := config.Default()
	f.Agent.MaxTasks = 0
	f.Execution.Image = ""
	err := f.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "agent.max_tasks") || !strings.Contains(lines[1], "execution.image") {
		t.Fatalf("error = %q, want one line each for agent.max_tasks and execution.image", err)
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"unknown top-level field", "agent: {}\nexecutor: {}\n", "config: executor: unknown field (line 2)"},
		{"unknown agent field", "agent:\n  id: a\n  colour: blue\n", "config: agent.colour: unknown field (line 3)"},
		{"unknown model field in flow mapping", "agent:\n  models:\n    - {name: m, provider: ollama, endpoint: http://h, temperature: 1}\n",
			"config: agent.models[0].temperature: unknown field (line 3)"},
		{"unknown execution field", "execution:\n  image: x\n  memory_limit: 1GiB\n", "config: execution.memory_limit: unknown field (line 3)"},
		{"misspelt case", "agent:\n  maxTasks: 2\n", "config: agent.maxTasks: unknown field (line 2)"},
		{"duplicate key", "agent:\n  id: a\n  id: b\n", "config: agent.id: set twice (first on line 2) (line 3)"},
		{"int expected", "agent:\n  max_tasks: two\n", `config: agent.max_tasks: must be a whole number, got "two" (line 2)`},
		{"list expected", "agent:\n  expertise: go\n", `config: agent.expertise: must be a list, got "go" (line 2)`},
		{"string expected", "agent:\n  id: [a, b]\n", "config: agent.id: must be a string, got a list (line 2)"},
		{"mapping expected", "agent: developer\n", `config: agent: must be a mapping, got "developer" (line 1)`},
		{"file not a mapping", "- a\n- b\n", "config: the file: must be a mapping, got a list (line 1)"},
		{"bad size unit", "execution:\n  memory: 512MB\n", `config: execution.memory: invalid size "512MB": unknown unit "MB", use B, KiB, MiB or GiB (line 2)`},
		{"size list", "execution:\n  memory: [1]\n", "config: execution.memory: must be a size such as 512MiB, got a list (line 2)"},
		{"bare duration", "execution:\n  timeout: 600\n", `config: execution.timeout: invalid duration "600": use a number with a unit, such as 90s or 10m (line 2)`},
		{"negative duration", "execution:\n  timeout: -1m\n", `config: execution.timeout: invalid duration "-1m": must not be negative (line 2)`},
		{"validation carries line", "agent:\n  id: a\n  max_tasks: 0\n", "config: agent.max_tasks: must be between 1 and 64, got 0 (line 3)"},
		{"validation in list item", "agent:\n  models:\n    - name: m\n      provider: claude\n      endpoint: http://h\n",
			`config: agent.models[0].provider: must be ollama or openai, got "claude" (line 4)`},
		{"two documents", "agent: {id: a}\n---\nagent: {id: b}\n", "only one YAML document is allowed, found another at line 2"},
		{"syntax error", "agent:\n  id: [a\n", "config: invalid: yaml: line "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse error = %v\nwant it to contain %q", err, tt.want)
			}
			if !errors.Is(err, chorus.ErrInvalid) {
				t.Errorf("error does not wrap chorus.ErrInvalid")
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(good, []byte(fullFile), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := config.Load(good)
	if err != nil || f.Agent.ID != "agent-a" {
		t.Fatalf("Load = %+v, %v", f.Agent, err)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("agent:\n  max_tasks: 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = config.Load(bad)
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "agent.max_tasks") {
		t.Fatalf("Load(bad) = %v, want the path and the field", err)
	}

	missing := filepath.Join(dir, "missing.yaml")
	_, err = config.Load(missing)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("Load(missing) = %v", err)
	}
}

func TestToAgent(t *testing.T) {
	f, err := config.Parse([]byte(fullFile))
	if err != nil {
		t.Fatal(err)
	}
	got := f.Agent.ToAgent()
	want := chorus.Agent{
		ID: "agent-a", Role: "developer", Expertise: []string{"go", "docker"},
		Capabilities: []string{"shell"}, MaxTasks: 2, Specialization: "backend",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ToAgent = %+v, want %+v", got, want)
	}
	got.Expertise[0] = "changed"
	if f.Agent.Expertise[0] != "go" {
		t.Fatal("ToAgent shares the expertise slice with the File")
	}
}
