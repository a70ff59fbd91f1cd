// Package config reads the agent configuration file (SPEC section 1): who
// the agent is (id, role, expertise, capabilities, how many tasks it takes
// at once, which models it may call) and how its sandbox is limited.
//
//	agent:
//	  id: agent-a
//	  role: developer
//	  expertise: [go, docker]
//	  max_tasks: 2
//	  models:
//	    - {name: llama3, provider: ollama, endpoint: http://127.0.0.1:11434}
//	execution:
//	  image: chorus-sandbox:1
//	  timeout: 10m
//	  memory: 512MiB
//	  cpus: 1.0
//	  pids: 256
//
// Load and Parse start from Default and overlay what the file sets; a key
// that is absent or null keeps its default, a list replaces the default
// list. Decoding is strict: an unknown or repeated key, a value of the wrong
// kind, or more than one YAML document is rejected with an error that names
// the field by its YAML path and gives the line, for example
//
//	config: agent.models[0].colour: unknown field (line 9)
//
// After decoding, Validate runs; its errors name the field the same way
// ("config: agent.max_tasks: must be between 1 and 64, got 0") and, when
// they come from Parse, add the line. Every problem found is reported, one
// per line, as *FieldError values joined with errors.Join; each wraps
// chorus.ErrInvalid.
//
// Sizes accept B, KiB, MiB, GiB or a plain byte count ("512MiB", "1.5GiB",
// "1048576"); the decimal units MB and GB are refused as ambiguous.
// Durations use Go syntax ("90s", "10m", "1h30m").
//
// The providers section configures the github and gitea task providers
// (url, token_env or token_file, repositories, labels, assignee,
// webhook_secret_env or webhook_secret_file, poll_interval); a section that
// sets nothing is off, and its errors name the field
// ("config: providers.gitea.url: must be an http(s) URL, got \"\"").
//
// Invariants: a File returned without error by Load or Parse has passed
// Validate. API keys, tokens and webhook secrets are never stored in the
// file itself, only the name of an environment variable or a file that
// holds them.
//
// Concurrency: the package has no state; File and its parts are plain
// values. ToAgent copies slices, so the chorus.Agent it returns shares no
// memory with the File.
package config
